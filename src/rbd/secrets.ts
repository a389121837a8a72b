// Reads cephx keys from Kubernetes Secrets named by a StorageClass (never by anything a claim controls).
import type { KubeFacade } from '../kube/client.js';
import { KubeApiError } from '../kube/client.js';
import type { SecretRef } from './parameters.js';
import { SecretError, type SecretReader } from './provisioner.js';

/** The data key the retired external-storage rbd-provisioner and ceph's docs use; also what type kubernetes.io/rbd holds. */
const KEY_FIELD = 'key';

/** Through the controller's API facade: rate limited, bounded by its request timeout, aborted with the work. */
export function kubeSecretReader(kube: Pick<KubeFacade, 'readSecretData'>): SecretReader {
  return async (ref: SecretRef, signal: AbortSignal) => {
    const where = `secret ${ref.namespace}/${ref.name}`;
    let data: Record<string, string> | undefined;
    try {
      data = await kube.readSecretData(ref.namespace, ref.name, signal);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 403) throw new SecretError(`${where}: access denied to the provisioner's service account (RBAC)`);
      throw err;
    }
    if (data === undefined) throw new SecretError(`${where} not found`);
    const encoded = data[KEY_FIELD];
    if (!encoded) throw new SecretError(`${where} has no data key "${KEY_FIELD}"`);
    const key = Buffer.from(encoded, 'base64').toString('utf8').trim();
    if (key === '') throw new SecretError(`${where}: data key "${KEY_FIELD}" is empty`);
    return key;
  };
}

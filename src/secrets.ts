// Reads cephx keys from Kubernetes Secrets named by a StorageClass (never by anything a claim controls).
import { ApiException, type CoreV1Api } from '@kubernetes/client-node';
import type { SecretRef } from './provisioner/parameters.js';
import { SecretError, type SecretReader } from './provisioner/rbd.js';

/** The data key the retired external-storage rbd-provisioner and ceph's docs use; also what type kubernetes.io/rbd holds. */
const KEY_FIELD = 'key';

export function kubeSecretReader(core: CoreV1Api): SecretReader {
  return async (ref: SecretRef) => {
    const where = `secret ${ref.namespace}/${ref.name}`;
    let data: Record<string, string> | undefined;
    try {
      data = (await core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace })).data;
    } catch (err) {
      const status = err instanceof ApiException ? err.code : undefined;
      if (status === 404) throw new SecretError(`${where} not found`);
      if (status === 403) throw new SecretError(`${where}: access denied to the provisioner's service account (RBAC)`);
      throw err;
    }
    const encoded = data?.[KEY_FIELD];
    if (!encoded) throw new SecretError(`${where} has no data key "${KEY_FIELD}"`);
    const key = Buffer.from(encoded, 'base64').toString('utf8').trim();
    if (key === '') throw new SecretError(`${where}: data key "${KEY_FIELD}" is empty`);
    return key;
  };
}

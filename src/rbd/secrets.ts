// Reads cephx keys from Kubernetes Secrets named by a StorageClass (never by anything a claim controls).
import type { KubeFacade } from '../kube/client.js';
import { KubeApiError } from '../kube/client.js';
import { onAbort } from '../kube/abort.js';
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

export interface CachedSecretReader {
  read: SecretReader;
  /** Forget a Secret's key: the next read goes to the API (Ceph refused the key, say). */
  invalidate(ref: SecretRef): void;
}

/**
 * The admin key of a class read once and kept for ttlMs, instead of one Secret read per provision and per delete.
 * Only keys that were read are kept (a missing or unusable Secret is read again at every retry, so fixing it takes
 * effect at once); the provisioner invalidates a key Ceph refuses, so a rotated Secret is picked up at the first
 * failure, and any other change within ttlMs. Concurrent reads of one Secret share one request. The keys stay in
 * memory, as the connection pool's do.
 */
export function cachingSecretReader(read: SecretReader, options: { ttlMs: number; now?: () => number }): CachedSecretReader {
  const now = options.now ?? Date.now;
  const entries = new Map<string, { at: number; key: Promise<string> }>();
  const id = (ref: SecretRef) => `${ref.namespace}/${ref.name}`;
  return {
    read: async (ref, signal) => {
      const key = id(ref);
      const cached = entries.get(key);
      let entry = entries.get(key);
      if (entry === undefined || now() - entry.at >= options.ttlMs) {
        // Not bound to this caller's signal, since others may share the read: the facade's request timeout bounds it.
        const created = { at: now(), key: read(ref, new AbortController().signal) };
        entries.set(key, created);
        created.key.catch(() => {
          if (entries.get(key) === created) entries.delete(key);
        });
        entry = created;
      }
      return abortable(entry.key, signal);
    },
    invalidate: (ref) => {
      entries.delete(id(ref));
    },
  };
}

/** The promise, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const stop = onAbort(signal, () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')));
    promise.then(
      (value) => {
        stop();
        resolve(value);
      },
      (error: unknown) => {
        stop();
        reject(error);
      },
    );
  });
}

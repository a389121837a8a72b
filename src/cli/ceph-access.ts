// Ceph access for the admin subcommands (`migrate`, `audit`): a pool opened as the admin user whose key is read from
// its Kubernetes Secret by reference, never from the command line or the environment. One connection per cluster,
// user and Secret, closed at the end of the command.
import { Cluster, type Pool } from '../ceph/index.js';
import type { SecretReader } from '../rbd/provisioner.js';
import type { DeleteTarget } from '../rbd/volume.js';

export interface CephAccess {
  withPool<T>(target: Omit<DeleteTarget, 'image'>, fn: (pool: Pool) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function cephAccess(readSecret: SecretReader, timeouts: { mount: number; monOp: number; osdOp: number }): CephAccess {
  const clusters = new Map<string, Promise<Cluster>>();
  const signal = new AbortController().signal;
  return {
    async withPool(target, fn) {
      const id = JSON.stringify([target.monitors, target.adminId, target.adminSecret.namespace, target.adminSecret.name]);
      let cluster = clusters.get(id);
      if (cluster === undefined) {
        cluster = readSecret(target.adminSecret, signal).then((key) => Cluster.connect({ monitors: target.monitors, user: target.adminId, key, timeouts }));
        clusters.set(id, cluster);
        // A failed connection is tried again by the next caller, not remembered.
        cluster.catch(() => clusters.delete(id));
      }
      const pool = await (await cluster).openPool(target.pool, target.radosNamespace);
      try {
        return await fn(pool);
      } finally {
        await pool.close();
      }
    },
    async close() {
      const open = [...clusters.values()];
      clusters.clear();
      await Promise.all(open.map(async (cluster) => (await cluster.catch(() => undefined))?.close()));
    },
  };
}

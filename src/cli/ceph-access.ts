// Ceph access for the admin subcommands (`migrate`, `audit`): a pool opened as the admin user whose key is read from
// its Kubernetes Secret by reference, never from the command line or the environment. The controller's own
// ConnectionPool keeps one connection per cluster, user and key; the command closes it at its end.
import { ConnectionPool, type Pool } from '../ceph/index.js';
import type { SecretReader } from '../rbd/provisioner.js';
import type { DeleteTarget } from '../rbd/volume.js';

/** librados timeouts (seconds) for the subcommands: the controller's defaults. */
export const COMMAND_CEPH_TIMEOUTS = { mount: 10, monOp: 30, osdOp: 30 };
/** A subcommand reads each admin Secret once: it runs for minutes at most. */
export const COMMAND_SECRET_TTL_MS = 60 * 60_000;

export interface CephAccess {
  withPool<T>(target: Omit<DeleteTarget, 'image'>, fn: (pool: Pool) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function cephAccess(readSecret: SecretReader, connections: ConnectionPool): CephAccess {
  const signal = new AbortController().signal;
  return {
    async withPool(target, fn) {
      const key = await readSecret(target.adminSecret, signal);
      return connections.use({ monitors: target.monitors, user: target.adminId, key }, async (cluster) => {
        const pool = await cluster.openPool(target.pool, target.radosNamespace);
        try {
          return await fn(pool);
        } finally {
          await pool.close();
        }
      });
    },
    close: () => connections.close(),
  };
}

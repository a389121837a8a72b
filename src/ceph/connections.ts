import { createHash } from 'node:crypto';
import type { CallObserver } from './calls.js';
import { Cluster, type CephTimeouts, type ConnectOptions } from './cluster.js';

/** Who to connect to and as whom. The key stays in memory. */
export interface ClusterTarget {
  monitors: string;
  user: string;
  key: string;
  /**
   * Opaque to the pool and not part of the connection's identity: handed to onConnected with the target, e.g. to
   * say where the key came from. Never put a key here.
   */
  origin?: Readonly<Record<string, string>>;
}

/** A target as onConnected sees it: everything but the key. */
export type PublicTarget = Omit<ClusterTarget, 'key'>;

export interface ClusterLease {
  readonly cluster: Cluster;
  /** Give the connection back. Idempotent. */
  release(): void;
}

export interface ConnectionPoolOptions {
  /** Close a connection nobody has used for this long. Default 60 s. */
  idleMs?: number;
  timeouts?: Partial<CephTimeouts>;
  observer?: CallObserver;
  /** For tests: how to open a connection. */
  connect?: (options: ConnectOptions) => Promise<Cluster>;
  /**
   * Runs once per new connection, after it is open and before anyone uses it, with the connection's own address
   * (Cluster.clientAddress()), e.g. to publish that address where a successor can blocklist it. If it rejects,
   * the connection is closed and the acquire that opened it fails (as do those waiting on it).
   */
  onConnected?: (target: PublicTarget, address: string) => Promise<void>;
}

interface Entry {
  connecting: Promise<Cluster>;
  cluster?: Cluster;
  refs: number;
  idleTimer?: NodeJS.Timeout;
}

/**
 * Shared librados connections, keyed by monitors + user + a hash of the key: many StorageClasses that point at
 * the same cluster share one connection, and a rotated key gets a new one. Reference counted; a connection is
 * closed once it has been idle for idleMs.
 */
export class ConnectionPool {
  private readonly entries = new Map<string, Entry>();
  private readonly idleMs: number;
  private closed = false;

  constructor(private readonly options: ConnectionPoolOptions = {}) {
    this.idleMs = options.idleMs ?? 60_000;
  }

  get size(): number {
    return this.entries.size;
  }

  async acquire(target: ClusterTarget): Promise<ClusterLease> {
    if (this.closed) throw new Error('connection pool is closed');
    const id = connectionId(target);
    let entry = this.entries.get(id);
    if (!entry) {
      const created: Entry = { refs: 0, connecting: this.open(target) };
      entry = created;
      this.entries.set(id, created);
      // A failed connect must not be cached: the next acquire tries again.
      created.connecting.then(
        (cluster) => { created.cluster = cluster; },
        () => { if (this.entries.get(id) === created) this.entries.delete(id); },
      );
    }
    entry.refs++;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    const current = entry;
    let cluster: Cluster;
    try {
      cluster = await current.connecting;
    } catch (err) {
      current.refs--;
      throw err;
    }
    let released = false;
    return {
      cluster,
      release: () => {
        if (released) return;
        released = true;
        this.release(id, current);
      },
    };
  }

  /** Acquire, run fn, release. */
  async use<T>(target: ClusterTarget, fn: (cluster: Cluster) => Promise<T>): Promise<T> {
    const lease = await this.acquire(target);
    try {
      return await fn(lease.cluster);
    } finally {
      lease.release();
    }
  }

  /**
   * Drops a connection that turned out broken (e.g. blocklisted), so the next acquire reconnects. Only that very
   * connection: a late error from an already replaced one must not close its healthy successor.
   */
  evict(target: ClusterTarget, broken: Cluster): void {
    const id = connectionId(target);
    const entry = this.entries.get(id);
    if (!entry || entry.cluster !== broken) return;
    this.entries.delete(id);
    clearTimeout(entry.idleTimer);
    void entry.connecting.then((c) => c.close()).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(entries.map(async (entry) => {
      clearTimeout(entry.idleTimer);
      await (await entry.connecting).close();
    }));
  }

  /** Connects, then lets onConnected see the connection's address before anything else may use it. */
  private async open(target: ClusterTarget): Promise<Cluster> {
    const connect = this.options.connect ?? ((o: ConnectOptions) => Cluster.connect(o));
    const { origin: _origin, ...connectTarget } = target;
    const cluster = await connect({
      ...connectTarget,
      ...(this.options.timeouts ? { timeouts: this.options.timeouts } : {}),
      ...(this.options.observer ? { observer: this.options.observer } : {}),
    });
    const onConnected = this.options.onConnected;
    if (onConnected === undefined) return cluster;
    try {
      const { key: _key, ...visible } = target;
      await onConnected(visible, await cluster.clientAddress());
      return cluster;
    } catch (err) {
      await cluster.close().catch(() => {});
      throw err;
    }
  }

  /**
   * Forgets every connection (each closes once its users are done with it): the next acquire opens a new client,
   * with a new address. For a replica that stopped leading, whose clients a successor may have blocklisted.
   */
  reset(): void {
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) {
      clearTimeout(entry.idleTimer);
      void entry.connecting.then((c) => c.close()).catch(() => {});
    }
  }

  private release(id: string, entry: Entry): void {
    entry.refs--;
    if (entry.refs > 0 || this.entries.get(id) !== entry) return;
    entry.idleTimer = setTimeout(() => {
      if (entry.refs > 0 || this.entries.get(id) !== entry) return;
      this.entries.delete(id);
      void entry.cluster?.close().catch(() => {});
    }, this.idleMs);
    entry.idleTimer.unref();
  }
}

function connectionId(target: ClusterTarget): string {
  const keyHash = createHash('sha256').update(target.key).digest('hex');
  return `${target.monitors}\n${target.user}\n${keyHash}`;
}

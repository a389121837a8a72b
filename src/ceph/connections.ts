import { createHash } from 'node:crypto';
import type { CallObserver } from './calls.js';
import { Cluster, type CephTimeouts, type ConnectOptions } from './cluster.js';
import { Timeout } from './errors.js';

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
  /**
   * How long a caller waits for a connect another caller started before it gives up with a Timeout (retried later
   * by its own backoff). A cluster that never answers then holds one caller (one worker) for the mount timeout, not
   * every worker that wants it: the others go back to their queues and serve other clusters. Default 2 s.
   */
  joinWaitMs?: number;
  /** After a connect fails, acquires of that target fail at once with the same error for this long. Default 5 s. */
  failureHoldMs?: number;
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
  private readonly recentFailures = new Map<string, { error: unknown; until: number }>();
  private readonly idleMs: number;
  private readonly joinWaitMs: number;
  private readonly failureHoldMs: number;
  private closed = false;

  constructor(private readonly options: ConnectionPoolOptions = {}) {
    this.idleMs = options.idleMs ?? 60_000;
    this.joinWaitMs = options.joinWaitMs ?? 2_000;
    this.failureHoldMs = options.failureHoldMs ?? 5_000;
  }

  get size(): number {
    return this.entries.size;
  }

  async acquire(target: ClusterTarget): Promise<ClusterLease> {
    if (this.closed) throw new Error('connection pool is closed');
    const id = connectionId(target);
    let entry = this.entries.get(id);
    const joining = entry !== undefined && entry.cluster === undefined;
    if (!entry) {
      const failure = this.recentFailures.get(id);
      if (failure !== undefined && failure.until > Date.now()) throw failure.error;
      this.recentFailures.delete(id);
      const created: Entry = { refs: 0, connecting: this.open(target) };
      entry = created;
      this.entries.set(id, created);
      // A failed connect is not cached as a connection: after a short hold the next acquire tries again.
      created.connecting.then(
        (cluster) => { created.cluster = cluster; },
        (error: unknown) => {
          if (this.entries.get(id) === created) this.entries.delete(id);
          this.recentFailures.set(id, { error, until: Date.now() + this.failureHoldMs });
        },
      );
    }
    entry.refs++;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    const current = entry;
    let cluster: Cluster;
    try {
      cluster = joining ? await this.join(current.connecting, target) : await current.connecting;
    } catch (err) {
      // The caller that started the connect holds its own reference until it ends, so a joiner that gives up never
      // leaves a connection without users and without an idle timer.
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

  /** Waits for a connect another caller started, for joinWaitMs at most. */
  private async join(connecting: Promise<Cluster>, target: ClusterTarget): Promise<Cluster> {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout(
        `rados_connect (client.${target.user}): timed out after ${this.joinWaitMs} ms waiting for another request's connect to "monitors" (${target.monitors}); retried later`,
        { code: 'ETIMEDOUT', errno: 110, op: 'rados_connect', object: `client.${target.user}` },
      )), this.joinWaitMs);
    });
    try {
      return await Promise.race([connecting, gaveUp]);
    } finally {
      clearTimeout(timer);
    }
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

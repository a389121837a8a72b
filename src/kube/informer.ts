// A supervised informer: list, then watch from the list's resourceVersion, keeping a cache readable by key.
//
// Written over the facade instead of client-node 1.4.0's ListWatch/makeInformer because that one, on any watch
// error other than 410, emits "error" and stops for good; on 410 or on a clean close it relists/rewatches at once
// with no backoff (a server that keeps closing the watch makes it loop tightly); it has no hasSynced and no resync;
// and its watch has no client-side timeout (the AbortSignal.timeout it builds is overwritten). Here every error leads
// to a restart after exponential backoff with jitter, 410 Gone forces a relist, and a watch that outlives its
// server-side timeout is cut off by a watchdog.
import type { KubernetesObject, V1Status } from '@kubernetes/client-node';
import { type Clock, type TimerHandle, backoffDelay, sleep } from './clock.js';
import { KubeApiError, type ListResult, type WatchEventType, isGone } from './client.js';
import type { Logger } from '../logger.js';
import { describeError } from '../logger.js';

export interface ListWatchSource<T> {
  list(signal: AbortSignal): Promise<ListResult<T>>;
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: T | V1Status) => void,
    options: { signal: AbortSignal; timeoutSeconds: number },
  ): Promise<void>;
}

export interface InformerHandlers<T> {
  onAdd?(object: T): void;
  onUpdate?(object: T, old: T): void;
  onDelete?(object: T): void;
  /** Periodic resync: every cached object again, so missed or failed work is retried. */
  onResync?(object: T): void;
}

export type RestartReason = 'error' | 'gone' | 'closed-early';

export interface InformerOptions<T> {
  /** For logs and metrics: "claims", "volumes", "storageClasses". */
  name: string;
  source: ListWatchSource<T>;
  clock: Clock;
  logger: Logger;
  resyncPeriodMs: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Fraction added at random to each backoff delay. */
  jitter?: number;
  /** A watch that lived this long was healthy: the backoff starts over. */
  healthyAfterMs?: number;
  /** Server-side watch timeout is picked in [min, 2*min) so replicas do not reconnect in step (as client-go). */
  minWatchTimeoutSeconds?: number;
  random?: () => number;
  onRestart?: (reason: RestartReason) => void;
  /**
   * What the cache keeps of an object, applied once to each listed or watched object before it is stored or handed
   * to the handlers (client-go's SetTransform). It may change the object in place: the informer owns it.
   */
  trim?: (object: T) => T;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops what no decision reads and what dominates a cached object's size: managedFields (kube-controller-manager's
 * informers drop them too) and kubectl's copy of the whole applied manifest. Safe because the controller never sends
 * a cached object back whole (PVs and claims are changed by JSON patches naming their paths).
 */
export function dropBookkeeping<T extends KubernetesObject>(object: T): T {
  const metadata = object.metadata;
  if (metadata === undefined) return object;
  delete metadata.managedFields;
  if (metadata.annotations !== undefined && LAST_APPLIED in metadata.annotations) {
    delete metadata.annotations[LAST_APPLIED];
  }
  return object;
}

export function objectKey(object: KubernetesObject): string {
  const namespace = object.metadata?.namespace;
  const name = object.metadata?.name ?? '';
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

const WATCHDOG_GRACE_MS = 30_000;

export class Informer<T extends KubernetesObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly syncWaiters: (() => void)[] = [];
  private resourceVersion = '';
  private synced = false;
  private running: Promise<void> | undefined;

  private readonly trim: (object: T) => T;

  constructor(private readonly options: InformerOptions<T>) {
    this.trim = options.trim ?? ((object) => object);
  }

  get name(): string {
    return this.options.name;
  }

  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  /** True once the first list has been loaded; stays true across relists (like client-go). */
  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves when synced, or when the signal aborts (check hasSynced()). */
  waitForSync(signal: AbortSignal): Promise<void> {
    if (this.synced || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.syncWaiters.push(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Starts the list/watch loop and the resync timer; the returned promise settles when the signal aborts. */
  run(signal: AbortSignal): Promise<void> {
    if (this.running === undefined) {
      this.running = Promise.all([this.loop(signal), this.resyncLoop(signal)]).then(() => undefined);
    }
    return this.running;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const { clock, logger, name } = this.options;
    let failures = 0;
    let needList = true;
    while (!signal.aborted) {
      const started = clock.now();
      let reason: RestartReason | undefined;
      try {
        if (needList) {
          await this.relist(signal);
          needList = false;
        }
        await this.watchOnce(signal);
        if (clock.now() - started < (this.options.healthyAfterMs ?? 30_000)) reason = 'closed-early';
      } catch (error) {
        if (signal.aborted) break;
        reason = isGone(error) ? 'gone' : 'error';
        needList = true;
        logger.warn(`${name} informer: ${reason === 'gone' ? 'resource version expired (410 Gone)' : 'list/watch failed'}; will relist`, {
          informer: name,
          error: describeError(error),
        });
      }
      if (signal.aborted) break;
      if (clock.now() - started >= (this.options.healthyAfterMs ?? 30_000)) failures = 0;
      if (reason === undefined) continue; // a healthy watch ended at its timeout: watch again from where it stopped
      failures += 1;
      this.options.onRestart?.(reason);
      const delayMs = backoffDelay(failures, this.options.backoffBaseMs ?? 1000, this.options.backoffMaxMs ?? 60_000, this.options.jitter ?? 0.5, this.options.random);
      logger.info(`${name} informer: restarting the watch in ${Math.round(delayMs)} ms`, { informer: name, reason, attempt: failures });
      try {
        await sleep(clock, delayMs, signal);
      } catch {
        break;
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const { items, resourceVersion } = await this.options.source.list(signal);
    const fresh = new Map<string, T>();
    for (const item of items) fresh.set(objectKey(item), this.trim(item));
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.store.delete(key);
        this.emit((h) => h.onDelete?.(old));
      }
    }
    for (const [key, object] of fresh) this.upsert(key, object);
    this.resourceVersion = resourceVersion;
    if (!this.synced) {
      this.synced = true;
      this.options.logger.info(`${this.options.name} informer synced`, { informer: this.options.name, objects: this.store.size });
      for (const waiter of this.syncWaiters.splice(0)) waiter();
    }
  }

  private async watchOnce(outer: AbortSignal): Promise<void> {
    const { clock, source } = this.options;
    const minTimeout = this.options.minWatchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(minTimeout * (1 + (this.options.random ?? Math.random)()));
    const watch = new AbortController();
    const onOuterAbort = (): void => watch.abort(outer.reason);
    outer.addEventListener('abort', onOuterAbort, { once: true });
    // The server should close the watch after timeoutSeconds; a connection that silently died never would.
    const watchdog: TimerHandle = clock.setTimeout(() => watch.abort(new Error('watch outlived its timeout')), timeoutSeconds * 1000 + WATCHDOG_GRACE_MS);
    let failure: Error | undefined;
    try {
      await source.watch(
        this.resourceVersion,
        (type, object) => {
          if (failure !== undefined) return;
          if (type === 'ERROR') {
            const status = object as V1Status;
            const code = typeof status.code === 'number' ? status.code : 500;
            failure = new KubeApiError(code, status.reason ?? '', `watch ${this.options.name}: ${status.message ?? 'error event'}`, `watch ${this.options.name}`);
            watch.abort(failure);
            return;
          }
          this.apply(type, object as T);
        },
        { signal: watch.signal, timeoutSeconds },
      );
    } finally {
      clock.clearTimeout(watchdog);
      outer.removeEventListener('abort', onOuterAbort);
    }
    if (failure !== undefined) throw failure;
  }

  private apply(type: WatchEventType, watched: T): void {
    const object = this.trim(watched);
    const version = object.metadata?.resourceVersion;
    switch (type) {
      case 'ADDED':
      case 'MODIFIED':
        this.upsert(objectKey(object), object);
        break;
      case 'DELETED': {
        this.store.delete(objectKey(object));
        this.emit((h) => h.onDelete?.(object));
        break;
      }
      default:
        break;
    }
    if (version !== undefined && version !== '') this.resourceVersion = version;
  }

  private upsert(key: string, object: T): void {
    const old = this.store.get(key);
    this.store.set(key, object);
    if (old === undefined) this.emit((h) => h.onAdd?.(object));
    else if (old.metadata?.resourceVersion !== object.metadata?.resourceVersion) this.emit((h) => h.onUpdate?.(object, old));
  }

  private emit(call: (handlers: InformerHandlers<T>) => void): void {
    for (const handlers of this.handlers) {
      try {
        call(handlers);
      } catch (error) {
        this.options.logger.error(`${this.options.name} informer: event handler failed`, { informer: this.options.name, error: describeError(error) });
      }
    }
  }

  private async resyncLoop(signal: AbortSignal): Promise<void> {
    const { clock, resyncPeriodMs } = this.options;
    if (!(resyncPeriodMs > 0)) return;
    while (!signal.aborted) {
      try {
        await sleep(clock, resyncPeriodMs, signal);
      } catch {
        return;
      }
      if (!this.synced) continue;
      for (const object of this.store.values()) this.emit((h) => h.onResync?.(object));
    }
  }
}

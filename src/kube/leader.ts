// Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection: acquire when the lease is
// free or its holder has not renewed for leaseDuration (measured on our own clock from when we last saw the record
// change, so clock skew between nodes does not matter), renew every retryPeriod, and give up the moment renewals have
// failed for renewDeadline (< leaseDuration, so we stop before anyone else may start).
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import { onAbort } from './abort.js';
import { type Clock, type TimerHandle, sleep } from './clock.js';
import { type KubeFacade, isAlreadyExists, isConflict } from './client.js';
import { type Logger, describeError } from '../logger.js';

/** Raised into the work signal when the Lease is lost: nothing may touch storage after that. */
export class LeaderLostError extends Error {
  override readonly name = 'LeaderLostError';
}

export type LeaseClient = Pick<KubeFacade, 'readLease' | 'createLease' | 'replaceLease'>;

export interface LeaderElectionOptions {
  client: LeaseClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /**
   * The Lease annotation that carries the holder's opaque data (setHolderData), e.g. what a successor must do before
   * it may act. A new holder inherits what the previous one left there until it sets its own, so a successor that
   * dies before acting on it leaves it for the next.
   */
  holderDataAnnotation?: string;
}

/** What a new holder learns about the lease it took over. */
export interface Handover {
  /** Who held the lease before ('' when it was free or released; our own identity after a restart). */
  previousHolder: string;
  /** The holder data the lease carried when we took it; undefined when none. */
  previousData: string | undefined;
}

/** How a leading session ended: 'let-expire' when its work may still be running, so no one may lead before the lease expires. */
export type SessionEnd = 'release' | 'let-expire';

export interface LeaderCallbacks {
  /**
   * Runs while we lead; the lease is renewed until the returned promise settles (then it is released, unless the
   * session says 'let-expire') or until renewal fails (then signal aborts with LeaderLostError and the session must
   * stop at once).
   */
  onStartedLeading(signal: AbortSignal, handover: Handover): Promise<SessionEnd | void>;
  onStoppedLeading?(reason: 'lost' | 'released' | 'expiring'): void;
  onNewLeader?(identity: string): void;
}

export type LeaderElectionOutcome = 'lost' | 'stopped';

const JITTER_FACTOR = 1.2;

export class LeaderElector {
  private observedKey = '';
  private observedAt = 0;
  private observedLease: V1Lease | undefined;
  private lastRenewAt = Number.NEGATIVE_INFINITY;
  private leading = false;
  private reportedLeader = '';
  private handover: Handover = { previousHolder: '', previousData: undefined };
  /** undefined: not set in this term, the annotation keeps what the previous holder left. '' removes it. */
  private holderData: string | undefined;
  private dataVersion = 0;
  private writtenVersion = 0;
  /** Lease writes one at a time, so a holder-data write and a renewal do not conflict with each other. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: LeaderElectionOptions) {}

  /**
   * Synchronous check for the work path: false once renewDeadline has passed since the last successful renewal,
   * even if the timer that aborts the session has not fired yet (after SIGSTOP, I/O callbacks can run before it).
   */
  isLeaseCurrent(): boolean {
    return this.leading && this.options.clock.now() - this.lastRenewAt < this.options.renewDeadlineMs;
  }

  /**
   * Sets the data this holder publishes on the Lease (holderDataAnnotation) and writes it at once; resolves when a
   * write carrying it (or newer data) has succeeded. Rejects with LeaderLostError when not leading, or when the lease
   * is lost before the write lands: the caller must then not rely on the data being published.
   */
  async setHolderData(data: string): Promise<void> {
    if (this.options.holderDataAnnotation === undefined) throw new Error('leader election: no holder data annotation configured');
    const { clock, renewDeadlineMs, retryPeriodMs } = this.options;
    this.holderData = data;
    const version = ++this.dataVersion;
    while (this.writtenVersion < version) {
      if (!this.isLeaseCurrent()) throw new LeaderLostError('not leading: the holder data could not be published');
      const remaining = this.lastRenewAt + renewDeadlineMs - clock.now();
      const written = await this.serialized(() =>
        this.writtenVersion >= version ? Promise.resolve(true) : this.tryAcquireOrRenew(new AbortController().signal, remaining, true));
      if (!written) await sleep(clock, retryPeriodMs / 4);
    }
  }

  private serialized<T>(write: () => Promise<T>): Promise<T> {
    const result = this.writes.then(write);
    this.writes = result.catch(() => undefined);
    return result;
  }

  async run(callbacks: LeaderCallbacks, stop: AbortSignal): Promise<LeaderElectionOutcome> {
    const { clock, logger, retryPeriodMs } = this.options;
    const random = this.options.random ?? Math.random;

    logger.info('leader election: trying to acquire the lease', { lease: this.leaseName(), identity: this.options.identity });
    while (!stop.aborted) {
      // As long as a renewal may take: an API server slow under load must not keep every standby from acquiring.
      if (await this.tryAcquireOrRenew(stop, this.options.renewDeadlineMs)) break;
      try {
        await sleep(clock, retryPeriodMs * (1 + JITTER_FACTOR * random()), stop);
      } catch {
        break;
      }
    }
    if (stop.aborted) return 'stopped';

    this.leading = true;
    logger.info('leader election: acquired the lease; starting work', { lease: this.leaseName(), identity: this.options.identity });
    const session = new AbortController();
    let expiry: TimerHandle | undefined;
    const armExpiry = (): void => {
      if (expiry !== undefined) clock.clearTimeout(expiry);
      expiry = clock.setTimeout(() => lose('the lease could not be renewed within the renew deadline'), this.options.renewDeadlineMs);
    };
    const stopRenewing = new AbortController();
    let lost = false;
    const lose = (why: string): void => {
      if (lost) return;
      lost = true;
      this.leading = false;
      stopRenewing.abort();
      logger.error(`leader election: lost the lease (${why}); stopping all work`, { lease: this.leaseName(), identity: this.options.identity });
      session.abort(new LeaderLostError(`leadership lost: ${why}`));
    };
    armExpiry();

    let sessionDone = false;
    let release = true;
    const sessionEnded = callbacks
      .onStartedLeading(session.signal, this.handover)
      .then((end) => {
        release = end !== 'let-expire';
      })
      .catch((error: unknown) => logger.error('leader election: the leading session failed', { error: describeError(error) }))
      .finally(() => {
        sessionDone = true;
      });

    void sessionEnded.then(() => stopRenewing.abort());
    while (!sessionDone && !lost) {
      try {
        await sleep(clock, retryPeriodMs, stopRenewing.signal);
      } catch {
        break;
      }
      if (lost) break;
      const remaining = this.lastRenewAt + this.options.renewDeadlineMs - clock.now();
      if (remaining <= 0) {
        lose('the renew deadline passed (was the process paused?)');
        break;
      }
      if (await this.serialized(() => this.tryAcquireOrRenew(session.signal, remaining))) armExpiry();
    }
    if (expiry !== undefined) clock.clearTimeout(expiry);

    if (lost) {
      await sessionEnded;
      callbacks.onStoppedLeading?.('lost');
      return 'lost';
    }
    this.leading = false;
    if (!release) {
      logger.warn('leader election: work may still be running; not releasing the lease, it expires', { lease: this.leaseName() });
      callbacks.onStoppedLeading?.('expiring');
      return 'stopped';
    }
    await this.release();
    callbacks.onStoppedLeading?.('released');
    return 'stopped';
  }

  private leaseName(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private leaseSeconds(): number {
    return Math.max(1, Math.ceil(this.options.leaseDurationMs / 1000));
  }

  /** The annotations to write: the holder data when set in this term, else what the lease has. */
  private annotationsFor(current: Record<string, string> | undefined): Record<string, string> | undefined {
    const key = this.options.holderDataAnnotation;
    if (key === undefined || this.holderData === undefined) return current;
    const annotations = { ...current };
    if (this.holderData === '') delete annotations[key];
    else annotations[key] = this.holderData;
    return annotations;
  }

  /** One attempt, bounded by timeoutMs; errors count as "not acquired" and are logged. renewOnly: never acquire. */
  private async tryAcquireOrRenew(outer: AbortSignal, timeoutMs: number, renewOnly = false): Promise<boolean> {
    const { clock, client, namespace, name, identity, logger } = this.options;
    const attempt = new AbortController();
    const stopFollowing = onAbort(outer, () => attempt.abort(outer.reason));
    const timer = clock.setTimeout(() => attempt.abort(new Error('lease request timed out')), timeoutMs);
    try {
      const now = clock.now();
      const lease = await client.readLease(namespace, name, attempt.signal);
      const version = this.dataVersion;
      if (lease === undefined) {
        if (renewOnly) return false;
        this.handover = { previousHolder: '', previousData: undefined };
        this.holderData = undefined;
        const created = await client.createLease(
          namespace,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: this.leaseSeconds(), acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 },
          },
          attempt.signal,
        );
        this.observe(created, clock.now());
        this.lastRenewAt = now;
        this.reportLeader(identity);
        return true;
      }
      this.observe(lease, now);
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      const durationMs = (spec.leaseDurationSeconds ?? this.leaseSeconds()) * 1000;
      if (holder !== '' && holder !== identity && this.observedAt + durationMs > now) {
        this.reportLeader(holder);
        return false;
      }
      if (renewOnly && holder !== identity) return false;
      const renewing = holder === identity;
      if (!this.leading) {
        // Taking the lease (perhaps our own, left by a previous process): hand what the lease carries to the session.
        const key = this.options.holderDataAnnotation;
        this.handover = { previousHolder: holder, previousData: key === undefined ? undefined : lease.metadata?.annotations?.[key] };
        this.holderData = undefined;
      }
      const annotations = this.annotationsFor(lease.metadata?.annotations);
      const updated: V1Lease = {
        ...lease,
        metadata: { ...lease.metadata, ...(annotations === undefined ? {} : { annotations }) },
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: this.leaseSeconds(),
          acquireTime: renewing && spec.acquireTime !== undefined ? spec.acquireTime : micro(now),
          renewTime: micro(now),
          leaseTransitions: renewing ? spec.leaseTransitions ?? 0 : (spec.leaseTransitions ?? 0) + 1,
        },
      };
      const replaced = await client.replaceLease(namespace, name, updated, attempt.signal);
      this.observe(replaced, clock.now());
      this.lastRenewAt = now;
      this.writtenVersion = Math.max(this.writtenVersion, version);
      this.reportLeader(identity);
      return true;
    } catch (error) {
      if (!outer.aborted) {
        const expected = isConflict(error) || isAlreadyExists(error);
        logger[expected ? 'debug' : 'warn']('leader election: could not acquire or renew the lease', {
          lease: this.leaseName(),
          error: describeError(error),
        });
      }
      return false;
    } finally {
      clock.clearTimeout(timer);
      stopFollowing();
    }
  }

  private observe(lease: V1Lease, now: number): void {
    const spec = lease.spec ?? {};
    const key = `${spec.holderIdentity ?? ''}|${timeText(spec.renewTime)}|${spec.leaseTransitions ?? 0}`;
    if (key !== this.observedKey) {
      this.observedKey = key;
      this.observedAt = now;
    }
    this.observedLease = lease;
  }

  private reportLeader(identity: string): void {
    if (identity === this.reportedLeader) return;
    this.reportedLeader = identity;
    this.options.logger.info('leader election: current leader', { leader: identity });
  }

  /** Hands the lease over at once instead of making the next leader wait for it to expire. */
  private async release(): Promise<void> {
    const { clock, client, namespace, name, identity, logger } = this.options;
    const lease = this.observedLease;
    if (lease?.spec?.holderIdentity !== identity) return;
    const attempt = new AbortController();
    const timer = clock.setTimeout(() => attempt.abort(new Error('lease release timed out')), this.options.retryPeriodMs);
    try {
      const now = clock.now();
      await client.replaceLease(
        namespace,
        name,
        { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: micro(now), acquireTime: micro(now) } },
        attempt.signal,
      );
      logger.info('leader election: released the lease', { lease: this.leaseName() });
    } catch (error) {
      logger.warn('leader election: could not release the lease; it will expire', { lease: this.leaseName(), error: describeError(error) });
    } finally {
      clock.clearTimeout(timer);
    }
  }
}

/** The API wants MicroTime (six fractional digits); V1MicroTime serializes that way. */
function micro(ms: number): V1MicroTime {
  return new V1MicroTime(ms);
}

function timeText(value: unknown): string {
  if (value instanceof Date) return String(value.getTime());
  return value === undefined || value === null ? '' : String(value);
}

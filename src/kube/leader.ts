// Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection: acquire when the lease is
// free or its holder has not renewed for leaseDuration (measured on our own clock from when we last saw the record
// change, so clock skew between nodes does not matter), renew every retryPeriod, and give up the moment renewals have
// failed for renewDeadline (< leaseDuration, so we stop before anyone else may start).
import { V1MicroTime, type V1Lease } from '@kubernetes/client-node';
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
}

/** How a leading session ended: 'let-expire' when its work may still be running, so no one may lead before the lease expires. */
export type SessionEnd = 'release' | 'let-expire';

export interface LeaderCallbacks {
  /**
   * Runs while we lead; the lease is renewed until the returned promise settles (then it is released, unless the
   * session says 'let-expire') or until renewal fails (then signal aborts with LeaderLostError and the session must
   * stop at once).
   */
  onStartedLeading(signal: AbortSignal): Promise<SessionEnd | void>;
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

  constructor(private readonly options: LeaderElectionOptions) {}

  /**
   * Synchronous check for the work path: false once renewDeadline has passed since the last successful renewal,
   * even if the timer that aborts the session has not fired yet (after SIGSTOP, I/O callbacks can run before it).
   */
  isLeaseCurrent(): boolean {
    return this.leading && this.options.clock.now() - this.lastRenewAt < this.options.renewDeadlineMs;
  }

  async run(callbacks: LeaderCallbacks, stop: AbortSignal): Promise<LeaderElectionOutcome> {
    const { clock, logger, retryPeriodMs } = this.options;
    const random = this.options.random ?? Math.random;

    logger.info('leader election: trying to acquire the lease', { lease: this.leaseName(), identity: this.options.identity });
    while (!stop.aborted) {
      if (await this.tryAcquireOrRenew(stop, retryPeriodMs)) break;
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
      .onStartedLeading(session.signal)
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
      if (await this.tryAcquireOrRenew(session.signal, remaining)) armExpiry();
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

  /** One attempt, bounded by timeoutMs; errors count as "not acquired" and are logged. */
  private async tryAcquireOrRenew(outer: AbortSignal, timeoutMs: number): Promise<boolean> {
    const { clock, client, namespace, name, identity, logger } = this.options;
    const attempt = new AbortController();
    const onOuterAbort = (): void => attempt.abort(outer.reason);
    outer.addEventListener('abort', onOuterAbort, { once: true });
    const timer = clock.setTimeout(() => attempt.abort(new Error('lease request timed out')), timeoutMs);
    try {
      const now = clock.now();
      const lease = await client.readLease(namespace, name, attempt.signal);
      if (lease === undefined) {
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
      const renewing = holder === identity;
      const updated: V1Lease = {
        ...lease,
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
      outer.removeEventListener('abort', onOuterAbort);
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

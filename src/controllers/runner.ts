// Runs every enabled loop under one leader lease. Informers run on every replica (so a standby takes over with a
// warm cache); the loops act only while leading and only after every informer has synced. Losing the lease aborts
// the signal given to all work at once; run() then resolves so main can decide what comes next.
import type { Config } from '../config.js';
import { type Logger, describeError } from '../logger.js';
import { type Clock, realClock, settlesWithin, sleep, whenAborted } from '../kube/clock.js';
import type { EventRecorder } from '../kube/events.js';
import type { KubeFacade } from '../kube/client.js';
import { type Handover, type LeaseClient, LeaderElector, LeaderLostError, type SessionEnd } from '../kube/leader.js';
import { WorkQueue } from '../kube/workqueue.js';
import type { Fencing } from './fencing.js';
import type { ControlLoop } from './loop.js';
import type { Metrics } from './metrics.js';

export type RunnerConfig = Pick<
  Config,
  | 'leaderElect'
  | 'leaderElectionNamespace'
  | 'leaderElectionLeaseName'
  | 'leaderElectionLeaseDurationMs'
  | 'leaderElectionRenewDeadlineMs'
  | 'leaderElectionRetryPeriodMs'
  | 'identity'
>;

export interface RunnerTuning {
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Retry delay after a final error. */
  slowRetryDelayMs: number;
  /** On SIGTERM, how long work in flight may finish before it is aborted. */
  shutdownGraceMs: number;
  /** First and largest delay between fencing attempts that failed. */
  fenceRetryBaseMs: number;
  fenceRetryMaxMs: number;
}

/** What the runner needs of an informer: run it, and know when it has its first list. */
export interface SyncingInformer {
  readonly name: string;
  run(signal: AbortSignal): Promise<void>;
  waitForSync(signal: AbortSignal): Promise<void>;
  hasSynced(): boolean;
}

export interface RunnerDeps {
  config: RunnerConfig;
  kube: KubeFacade;
  /**
   * Where the Lease is read and renewed; defaults to kube. Give it its own connections and rate limit, so a renewal
   * never waits behind claim work queued on kube's.
   */
  leaseClient?: LeaseClient;
  informers: SyncingInformer[];
  loops: ControlLoop[];
  events: EventRecorder;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  tuning?: Partial<RunnerTuning>;
  /** Called when leading starts and stops, before any loop acts and after every loop has stopped. */
  onLeading?: (leading: boolean) => void;
  /** Fence the previous holder's storage clients before any loop acts, and let this holder publish its own. */
  fencing?: Fencing;
}

export type RunOutcome = 'shutdown';

/** After aborting work on shutdown, how long it may take to stop before the lease is left to expire instead. */
const ABORTED_WORK_WAIT_MS = 10_000;
/**
 * After losing the lease, how long aborted work may take to stop before this replica campaigns again (Ceph calls
 * already running finish within the librados timeouts; a new leader fences them in any case).
 */
const LOST_WORK_WAIT_MS = 120_000;

export interface Controller {
  /**
   * Leader election, informers, loops; resolves on shutdown (signal aborted). Losing the lease stops all work at once
   * and returns this replica to standby: it campaigns again in the same process, with its caches warm.
   */
  run(signal: AbortSignal): Promise<RunOutcome>;
  /** Every informer has synced (for /readyz, on the leader and on standbys). */
  isReady(): boolean;
  isLeader(): boolean;
  /** False once the lease may have expired: no storage call may start then. */
  mayAct(): boolean;
  /**
   * Throws LeaderLostError when this replica may no longer act. Cheap and synchronous: call it before each storage
   * call (e.g. in the Ceph call wrapper), because after a pause (SIGSTOP) I/O callbacks can run before the timer
   * that aborts the work signal.
   */
  assertLeading(): void;
  /**
   * Publishes data in the Lease for whoever leads next (see Fencing); resolves once written. Rejects when this
   * replica is not leading. Without leader election there is no successor: resolves at once.
   */
  setHolderData(data: string): Promise<void>;
}

export function createRunner(deps: RunnerDeps): Controller {
  const { config, events, informers, kube, logger, loops, metrics } = deps;
  const clock = deps.clock ?? realClock;
  const tuning = deps.tuning ?? {};
  const synced = (): boolean => informers.every((informer) => informer.hasSynced());

  let elector: LeaderElector | undefined;
  let leading = false;
  /** Settles once the work of the last leading session has stopped. */
  let lastSessionStopped: Promise<unknown> = Promise.resolve();
  const mayAct = (): boolean => leading && (elector === undefined || elector.isLeaseCurrent());

  function queueFor(loop: ControlLoop, signal: AbortSignal): WorkQueue {
    const queue: WorkQueue = new WorkQueue({
      concurrency: loop.workers,
      clock,
      signal,
      process: (key, keySignal) => loop.process(key, keySignal),
      ...(tuning.retryBaseDelayMs === undefined ? {} : { baseDelayMs: tuning.retryBaseDelayMs }),
      ...(tuning.retryMaxDelayMs === undefined ? {} : { maxDelayMs: tuning.retryMaxDelayMs }),
      ...(tuning.slowRetryDelayMs === undefined ? {} : { slowDelayMs: tuning.slowRetryDelayMs }),
      onDepth: (depth) => metrics.queueDepth.set({ loop: loop.name }, depth),
      onInFlight: (inFlight) => metrics.queueInFlight.set({ loop: loop.name }, inFlight),
      onRetry: (key, kind, delayMs, failures) => {
        metrics.queueRetries.inc({ loop: loop.name, kind });
        logger.debug('scheduled a retry', { loop: loop.name, item: key, kind, delayMs: Math.round(delayMs), failures });
      },
      onError: (key, error) => logger.error('reconcile failed unexpectedly; retrying with backoff', { loop: loop.name, item: key, error: describeError(error) }),
      onAdd: () => metrics.queueAdds.inc({ loop: loop.name }),
      onStart: (_key, waitedMs) => metrics.queueDuration.observe({ loop: loop.name }, waitedMs / 1000),
      onDone: (_key, workedMs) => metrics.workDuration.observe({ loop: loop.name }, workedMs / 1000),
    });
    // Read at scrape time. The next session's queue replaces this one; until then it reports the runs it still has
    // (work aborted on a lost lease that has not stopped yet is unfinished work too).
    metrics.queueProgress.set(loop.name, () => {
      const { unfinishedMs, longestMs } = queue.progress();
      return { unfinishedSeconds: unfinishedMs / 1000, longestSeconds: longestMs / 1000 };
    });
    return queue;
  }

  /**
   * Before any loop acts: fence the clients the previous holder published (retrying with backoff until it works or
   * the session ends), then replace its data with ours (nothing yet: no storage client was used in this term).
   * True when the loops may start.
   */
  async function fenceThePreviousHolder(handover: Handover, ended: AbortSignal): Promise<boolean> {
    const fencing = deps.fencing;
    if (fencing === undefined || elector === undefined) return true;
    const base = tuning.fenceRetryBaseMs ?? 1000;
    const max = tuning.fenceRetryMaxMs ?? 30_000;
    const data = handover.previousData ?? '';
    for (let attempt = 1; !ended.aborted; attempt++) {
      try {
        if (data !== '') {
          logger.info('fencing the previous leader\'s storage clients before acting', { previousHolder: handover.previousHolder, attempt });
          await fencing.fencer.fence(data, ended);
          metrics.fencings.inc({ result: 'ok' });
          logger.info('previous leader fenced; it can no longer reach storage', { previousHolder: handover.previousHolder });
        }
        await elector.setHolderData('');
        return !ended.aborted;
      } catch (error) {
        if (ended.aborted) break;
        const delayMs = Math.min(max, base * 2 ** (attempt - 1));
        metrics.fencings.inc({ result: 'error' });
        logger.error('could not fence the previous leader; not acting, trying again', { previousHolder: handover.previousHolder, attempt, delayMs, error: describeError(error) });
        try {
          await sleep(clock, delayMs, ended);
        } catch {
          break;
        }
      }
    }
    return false;
  }

  /** One leading session: runs until the lease is lost (leadingSignal) or shutdown (stopSignal). */
  async function lead(leadingSignal: AbortSignal, stopSignal: AbortSignal, handover?: Handover): Promise<SessionEnd | void> {
    const work = new AbortController();
    const abortWork = (): void => work.abort(leadingSignal.reason ?? new LeaderLostError('leadership lost'));
    leadingSignal.addEventListener('abort', abortWork, { once: true });
    const ended = AbortSignal.any([leadingSignal, stopSignal]);
    leading = true;
    metrics.leader.set(1);
    deps.onLeading?.(true);
    const queues: WorkQueue[] = [];
    try {
      if (!synced()) logger.info('leading; waiting for every informer to sync before acting');
      await Promise.all(informers.map((informer) => informer.waitForSync(ended)));
      if (ended.aborted) return;
      if (handover !== undefined && !(await fenceThePreviousHolder(handover, ended))) return;

      for (const loop of loops) {
        const queue = queueFor(loop, work.signal);
        queues.push(queue);
        loop.start(queue);
      }
      const background = new AbortController();
      const backgroundSignal = AbortSignal.any([work.signal, background.signal]);
      const backgroundDone = Promise.all(loops.map((loop) => loop.background?.(backgroundSignal)));
      logger.info('caches synced; loops started', { loops: loops.map((loop) => `${loop.name} (${loop.workers} workers)`) });

      await whenAborted(ended);
      for (const loop of loops) loop.stop();
      background.abort();
      if (leadingSignal.aborted) {
        // Do not wait for anything: the next leader may already be acting. Campaigning again waits, though.
        lastSessionStopped = Promise.all([...queues.map((queue) => queue.shutDown(LOST_WORK_WAIT_MS)), settlesWithin(clock, LOST_WORK_WAIT_MS, backgroundDone)]);
        return;
      }
      const grace = tuning.shutdownGraceMs ?? 20_000;
      const inFlight = queues.reduce((sum, queue) => sum + queue.inFlight, 0);
      logger.info('shutting down: letting work in flight finish', { inFlight, graceMs: grace });
      const drained = await Promise.all(queues.map((queue) => queue.shutDown(grace)));
      if (!drained.every(Boolean)) logger.warn('work still in flight after the grace period; aborting it');
      work.abort(new Error('shutting down'));
      // Releasing the lease lets a new leader start at once: not while an aborted storage call may still run.
      const stopped = await Promise.all([
        ...queues.map((queue) => queue.shutDown(ABORTED_WORK_WAIT_MS)),
        settlesWithin(clock, ABORTED_WORK_WAIT_MS, backgroundDone),
      ]);
      if (!stopped.every(Boolean)) {
        logger.warn('aborted work has not stopped; leaving the lease to expire', {
          inFlight: queues.reduce((sum, queue) => sum + queue.inFlight, 0),
          waitedMs: ABORTED_WORK_WAIT_MS,
        });
        return 'let-expire';
      }
    } finally {
      leadingSignal.removeEventListener('abort', abortWork);
      for (const loop of loops) loop.stop();
      leading = false;
      metrics.leader.set(0);
      deps.onLeading?.(false);
    }
  }

  return {
    async run(signal) {
      const informersStop = new AbortController();
      const informersDone = Promise.all(informers.map((informer) => informer.run(informersStop.signal)));
      for (const informer of informers) {
        void informer.waitForSync(informersStop.signal).then(() => {
          if (informer.hasSynced()) metrics.informerSynced.set({ informer: informer.name }, 1);
        });
      }
      try {
        if (config.leaderElect) {
          elector = new LeaderElector({
            client: deps.leaseClient ?? kube,
            namespace: config.leaderElectionNamespace,
            name: config.leaderElectionLeaseName,
            identity: config.identity,
            leaseDurationMs: config.leaderElectionLeaseDurationMs,
            renewDeadlineMs: config.leaderElectionRenewDeadlineMs,
            retryPeriodMs: config.leaderElectionRetryPeriodMs,
            clock,
            logger,
            ...(deps.fencing === undefined ? {} : { holderDataAnnotation: deps.fencing.holderDataAnnotation }),
          });
          while ((await elector.run({ onStartedLeading: (leadingSignal, handover) => lead(leadingSignal, signal, handover) }, signal)) === 'lost') {
            metrics.leaderLost.inc();
            logger.warn('lost the lease: all work stopped; standing by, and campaigning again once it has stopped');
            await lastSessionStopped;
            if (signal.aborted) break;
          }
        } else {
          await lead(new AbortController().signal, signal);
        }
      } finally {
        informersStop.abort();
        await informersDone;
        const flushDeadline = new AbortController();
        await Promise.race([events.flush(), sleep(clock, 2000, flushDeadline.signal).catch(() => undefined)]);
        flushDeadline.abort();
      }
      logger.info('controller stopped');
      return 'shutdown';
    },
    isReady: synced,
    isLeader: () => leading,
    mayAct,
    assertLeading() {
      if (!mayAct()) throw new LeaderLostError('this replica is not the leader (or its lease may have expired)');
    },
    async setHolderData(data) {
      if (!config.leaderElect) return;
      if (elector === undefined || !mayAct()) throw new LeaderLostError('this replica is not the leader; nothing published');
      await elector.setHolderData(data);
    },
  };
}

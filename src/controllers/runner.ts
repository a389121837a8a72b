// The composition of the generic controller: informers on every replica (so a standby is ready and takes over with a
// warm cache), and, only while leading and only after every informer has synced, the work queue and orphan
// collection. Losing the lease aborts the signal given to all work at once; run() then resolves so main can exit.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import { type Logger, describeError } from '../logger.js';
import { type Clock, realClock, settlesWithin, sleep, whenAborted } from '../kube/clock.js';
import { ANN_BETA_STORAGE_PROVISIONER, ANN_PROVISIONED_BY, ANN_STORAGE_PROVISIONER, claimClassName } from './provision/decisions.js';
import { LeaderElector, LeaderLostError, type SessionEnd } from '../kube/leader.js';
import { type EventRecorder, createEventRecorder } from '../kube/events.js';
import { Informer, objectKey, type ListWatchSource, type RestartReason } from '../kube/informer.js';
import type { KubeFacade, ResourceKind, ResourceTypes } from '../kube/client.js';
import type { Metrics } from './metrics.js';
import type { Provisioner } from './provision/provisioner.js';
import { type CacheView, Reconciler, type ReconcilerTuning, claimQueueKey, volumeQueueKey } from './provision/reconciler.js';
import { WorkQueue } from '../kube/workqueue.js';

export type ControllerConfig = Pick<
  Config,
  | 'provisionerName'
  | 'workers'
  | 'resyncPeriodMs'
  | 'leaderElect'
  | 'leaderElectionNamespace'
  | 'leaderElectionLeaseName'
  | 'leaderElectionLeaseDurationMs'
  | 'leaderElectionRenewDeadlineMs'
  | 'leaderElectionRetryPeriodMs'
  | 'identity'
>;

export interface ControllerTuning extends ReconcilerTuning {
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Retry delay after a final error. */
  slowRetryDelayMs: number;
  /** On SIGTERM, how long work in flight may finish before it is aborted. */
  shutdownGraceMs: number;
  orphanScanPeriodMs: number;
  informerBackoffBaseMs: number;
  informerBackoffMaxMs: number;
}

export interface ControllerDeps {
  config: ControllerConfig;
  kube: KubeFacade;
  provisioner: Provisioner;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** Defaults to a recorder over kube. */
  events?: EventRecorder;
  tuning?: Partial<ControllerTuning>;
}

export type RunOutcome = 'shutdown' | 'lost-leadership';

/** After aborting work on shutdown, how long it may take to stop before the lease is left to expire instead. */
const ABORTED_WORK_WAIT_MS = 10_000;

export interface Controller {
  /** Leader election, informers, workers; resolves on shutdown (signal aborted) or when leadership is lost. */
  run(signal: AbortSignal): Promise<RunOutcome>;
  /** Every informer has synced (for /readyz, on the leader and on standbys). */
  isReady(): boolean;
  isLeader(): boolean;
  /**
   * Throws LeaderLostError when this replica may no longer act. Cheap and synchronous: call it before each storage
   * call (e.g. in the Ceph call wrapper), because after a pause (SIGSTOP) I/O callbacks can run before the timer
   * that aborts the work signal.
   */
  assertLeading(): void;
}

function sourceFor<K extends ResourceKind>(kube: KubeFacade, kind: K): ListWatchSource<ResourceTypes[K]> {
  return {
    list: (signal) => kube.list(kind, signal),
    watch: (resourceVersion, onEvent, options) => kube.watch(kind, resourceVersion, onEvent, options),
  };
}

export function createController(deps: ControllerDeps): Controller {
  const { config, kube, logger, metrics, provisioner } = deps;
  const clock = deps.clock ?? realClock;
  const tuning: Partial<ControllerTuning> = deps.tuning ?? {};
  const events =
    deps.events ?? createEventRecorder({ kube, component: config.provisionerName, instance: config.identity, clock, logger });

  const informerOptions = <T>(name: string, source: ListWatchSource<T>) => ({
    name,
    source,
    clock,
    logger,
    resyncPeriodMs: config.resyncPeriodMs,
    ...(tuning.informerBackoffBaseMs === undefined ? {} : { backoffBaseMs: tuning.informerBackoffBaseMs }),
    ...(tuning.informerBackoffMaxMs === undefined ? {} : { backoffMaxMs: tuning.informerBackoffMaxMs }),
    onRestart: (reason: RestartReason) => metrics.informerRestarts.inc({ informer: name, reason }),
  });
  const claims = new Informer<V1PersistentVolumeClaim>(informerOptions('claims', sourceFor(kube, 'claims')));
  const volumes = new Informer<V1PersistentVolume>(informerOptions('volumes', sourceFor(kube, 'volumes')));
  const classes = new Informer<V1StorageClass>(informerOptions('storageClasses', sourceFor(kube, 'storageClasses')));
  const informers = [claims, volumes, classes];
  const synced = (): boolean => informers.every((informer) => informer.hasSynced());

  let elector: LeaderElector | undefined;
  let leading = false;
  const mayAct = (): boolean => leading && (elector === undefined || elector.isLeaseCurrent());

  const cache: CacheView = {
    claim: (key) => claims.get(key),
    volume: (name) => volumes.get(name),
    storageClass: (name) => classes.get(name),
    claims: () => claims.list(),
    volumes: () => volumes.list(),
    storageClasses: () => classes.list(),
    synced,
  };
  const reconciler = new Reconciler({
    provisionerName: config.provisionerName,
    kube,
    provisioner,
    cache,
    events,
    metrics,
    logger,
    clock,
    mayAct,
    tuning,
  });

  let queue: WorkQueue | undefined;
  const enqueue = (key: string): void => queue?.add(key);
  const forget = (key: string): void => queue?.forget(key);

  const isOurClaim = (claim: V1PersistentVolumeClaim): boolean => {
    const annotations = claim.metadata?.annotations ?? {};
    return (annotations[ANN_STORAGE_PROVISIONER] ?? annotations[ANN_BETA_STORAGE_PROVISIONER]) === config.provisionerName;
  };
  const onClaim = (claim: V1PersistentVolumeClaim): void => {
    if (isOurClaim(claim) && (claim.spec?.volumeName ?? '') === '') enqueue(claimQueueKey(objectKey(claim)));
  };
  claims.addHandlers({
    onAdd: onClaim,
    onUpdate: onClaim,
    onResync: onClaim,
    onDelete: (claim) => forget(claimQueueKey(objectKey(claim))),
  });
  // Other provisioners' PVs never need us; leaving them out keeps resyncs cheap in big clusters.
  const onVolume = (volume: V1PersistentVolume): void => {
    if (volume.metadata?.annotations?.[ANN_PROVISIONED_BY] === config.provisionerName) enqueue(volumeQueueKey(objectKey(volume)));
  };
  volumes.addHandlers({
    onAdd: onVolume,
    onUpdate: onVolume,
    onResync: onVolume,
    onDelete: (volume) => {
      forget(volumeQueueKey(objectKey(volume)));
      reconciler.forgetVolume(volume.metadata?.uid);
      // A claim whose PV vanished before binding needs a new one.
      const ref = volume.spec?.claimRef;
      if (ref?.name !== undefined && ref.namespace !== undefined) {
        const claim = claims.get(`${ref.namespace}/${ref.name}`);
        if (claim !== undefined) onClaim(claim);
      }
    },
  });
  // Claims that waited for their class (or its recreation) go again when it appears or changes.
  const onClass = (storageClass: V1StorageClass): void => {
    const name = storageClass.metadata?.name;
    for (const claim of claims.list()) if (claimClassName(claim) === name) onClaim(claim);
  };
  classes.addHandlers({ onAdd: onClass, onUpdate: onClass });

  async function orphanLoop(signal: AbortSignal): Promise<void> {
    const period = tuning.orphanScanPeriodMs ?? config.resyncPeriodMs;
    while (!signal.aborted) {
      try {
        const collected = await reconciler.collectOrphans(signal);
        if (collected > 0) logger.info('orphan collection finished', { op: 'collect-orphans', collected });
        else logger.debug('orphan collection pass found nothing to collect', { op: 'collect-orphans' });
      } catch (error) {
        logger.warn('orphan collection failed', { op: 'collect-orphans', error: describeError(error) });
      }
      try {
        await sleep(clock, period, signal);
      } catch {
        return;
      }
    }
  }

  /** One leading session: runs until the lease is lost (leadingSignal) or shutdown (stopSignal). */
  async function lead(leadingSignal: AbortSignal, stopSignal: AbortSignal): Promise<SessionEnd | void> {
    const work = new AbortController();
    const abortWork = (): void => work.abort(leadingSignal.reason ?? new LeaderLostError('leadership lost'));
    leadingSignal.addEventListener('abort', abortWork, { once: true });
    const ended = AbortSignal.any([leadingSignal, stopSignal]);
    leading = true;
    metrics.leader.set(1);
    try {
      if (!synced()) logger.info('leading; waiting for every informer to sync before acting');
      await Promise.all(informers.map((informer) => informer.waitForSync(ended)));
      if (ended.aborted) return;

      const workQueue = new WorkQueue({
        concurrency: config.workers,
        clock,
        signal: work.signal,
        process: (key, signal) => reconciler.process(key, signal),
        ...(tuning.retryBaseDelayMs === undefined ? {} : { baseDelayMs: tuning.retryBaseDelayMs }),
        ...(tuning.retryMaxDelayMs === undefined ? {} : { maxDelayMs: tuning.retryMaxDelayMs }),
        ...(tuning.slowRetryDelayMs === undefined ? {} : { slowDelayMs: tuning.slowRetryDelayMs }),
        onDepth: (depth) => metrics.queueDepth.set(depth),
        onInFlight: (inFlight) => metrics.queueInFlight.set(inFlight),
        onRetry: (key, kind, delayMs, failures) => {
          metrics.queueRetries.inc({ kind });
          logger.debug('scheduled a retry', { item: key, kind, delayMs: Math.round(delayMs), failures });
        },
        onError: (key, error) => logger.error('reconcile failed unexpectedly; retrying with backoff', { item: key, error: describeError(error) }),
      });
      queue = workQueue;
      for (const claim of claims.list()) onClaim(claim);
      for (const volume of volumes.list()) onVolume(volume);
      logger.info('caches synced; workers started', { workers: config.workers, claims: claims.size, volumes: volumes.size, storageClasses: classes.size });

      const orphans = new AbortController();
      const orphansStopped = orphanLoop(AbortSignal.any([work.signal, orphans.signal]));

      await whenAborted(ended);
      queue = undefined;
      orphans.abort();
      if (leadingSignal.aborted) {
        // Do not wait for anything: the next leader may already be acting.
        void workQueue.shutDown(0);
      } else {
        const grace = tuning.shutdownGraceMs ?? 20_000;
        logger.info('shutting down: letting work in flight finish', { inFlight: workQueue.inFlight, graceMs: grace });
        const drained = await workQueue.shutDown(grace);
        if (!drained) logger.warn('work still in flight after the grace period; aborting it');
        work.abort(new Error('shutting down'));
        // Releasing the lease lets a new leader start at once: not while an aborted storage call may still run.
        const stopped = await Promise.all([workQueue.shutDown(ABORTED_WORK_WAIT_MS), settlesWithin(clock, ABORTED_WORK_WAIT_MS, orphansStopped)]);
        if (!stopped.every(Boolean)) {
          logger.warn('aborted work has not stopped; leaving the lease to expire', { inFlight: workQueue.inFlight, waitedMs: ABORTED_WORK_WAIT_MS });
          return 'let-expire';
        }
      }
    } finally {
      leadingSignal.removeEventListener('abort', abortWork);
      leading = false;
      queue = undefined;
      metrics.leader.set(0);
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
      let outcome: RunOutcome = 'shutdown';
      try {
        if (config.leaderElect) {
          elector = new LeaderElector({
            client: kube,
            namespace: config.leaderElectionNamespace,
            name: config.leaderElectionLeaseName,
            identity: config.identity,
            leaseDurationMs: config.leaderElectionLeaseDurationMs,
            renewDeadlineMs: config.leaderElectionRenewDeadlineMs,
            retryPeriodMs: config.leaderElectionRetryPeriodMs,
            clock,
            logger,
          });
          const result = await elector.run({ onStartedLeading: (leadingSignal) => lead(leadingSignal, signal) }, signal);
          outcome = result === 'lost' ? 'lost-leadership' : 'shutdown';
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
      logger.info(outcome === 'lost-leadership' ? 'controller stopped: leadership lost' : 'controller stopped');
      return outcome;
    },
    isReady: synced,
    isLeader: () => leading,
    assertLeading() {
      if (!mayAct()) throw new LeaderLostError('this replica is not the leader (or its lease may have expired)');
    },
  };
}

// Assembles the controller: the shared informers, every enabled loop, and the runner that leads them.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass, V1VolumeAttachment } from '@kubernetes/client-node';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { type Clock, realClock } from '../kube/clock.js';
import type { KubeFacade, ResourceKind, ResourceTypes } from '../kube/client.js';
import type { LeaseClient } from '../kube/leader.js';
import { type EventRecorder, createEventRecorder } from '../kube/events.js';
import { Informer, type ListWatchSource, type RestartReason, dropBookkeeping } from '../kube/informer.js';
import { type NodeAccess, createAttachLoop } from './attach/loop.js';
import type { ClusterEntries } from './csiconfig/decisions.js';
import { createCsiConfigLoop } from './csiconfig/loop.js';
import type { Fencing } from './fencing.js';
import type { Metrics } from './metrics.js';
import { createProvisionLoop } from './provision/loop.js';
import { createResizeLoop } from './resize/loop.js';
import type { VolumeResizer } from './resize/resizer.js';
import type { Provisioner } from './provision/provisioner.js';
import { createSnapshotLoop } from './snapshot/loop.js';
import type { VolumeSnapshotter } from './snapshot/snapshotter.js';
import type { VolumeSnapshotContent } from '../kube/snapshots.js';
import { type CacheView, Reconciler, type ReconcilerTuning } from './provision/reconciler.js';
import { type Controller, type RunnerConfig, type RunnerTuning, createRunner } from './runner.js';

export type { Controller, RunOutcome } from './runner.js';

export type ControllerConfig = RunnerConfig & Pick<Config, 'provisionerName' | 'workers' | 'resyncPeriodMs'> & Partial<Pick<Config, 'attacher' | 'cephCsiConfig' | 'resizer' | 'takeOverProvisioners'>>;

export interface ControllerTuning extends ReconcilerTuning, RunnerTuning {
  orphanScanPeriodMs: number;
  informerBackoffBaseMs: number;
  informerBackoffMaxMs: number;
}

export interface ControllerDeps {
  config: ControllerConfig;
  kube: KubeFacade;
  /** Passed to the runner: the Lease's own client (own connections and rate limit); defaults to kube. */
  leaseClient?: LeaseClient;
  provisioner: Provisioner;
  logger: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** Defaults to a recorder over kube. */
  events?: EventRecorder;
  tuning?: Partial<ControllerTuning>;
  /** Passed to the runner: fence the previous leader's storage clients before acting. */
  fencing?: Fencing;
  /** Passed to the runner: told when leading starts and stops. */
  onLeading?: (leading: boolean) => void;
  /** With config.cephCsiConfig: which ceph-csi entry a class or PV needs (the RBD side implements it). */
  clusterEntries?: ClusterEntries;
  /** Passed to the attach loop: what the node needs before it stages a volume (the RBD side implements it). */
  nodeAccess?: NodeAccess;
  /** With config.resizer (default on): grows volumes for the resize loop (the RBD side implements it). */
  resizer?: VolumeResizer;
  /**
   * Cuts snapshots for the snapshot loop (the RBD side implements it); the loop runs only with one, so the caller
   * leaves it out where the API server does not serve VolumeSnapshotContents.
   */
  snapshotter?: VolumeSnapshotter;
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
  // The runner exists before the reconciler asks it whether it may act.
  let controller: Controller | undefined;
  // A replica that may not act posts no event: a deposed leader must not tell users anything about their claims.
  const events = deps.events ?? createEventRecorder({
    kube, component: config.provisionerName, instance: config.identity, clock, logger, mayEmit: () => controller?.mayAct() ?? false,
  });

  const informer = <K extends ResourceKind>(name: string, kind: K) =>
    new Informer<ResourceTypes[K]>({
      name,
      source: sourceFor(kube, kind),
      clock,
      logger,
      resyncPeriodMs: config.resyncPeriodMs,
      trim: dropBookkeeping,
      ...(tuning.informerBackoffBaseMs === undefined ? {} : { backoffBaseMs: tuning.informerBackoffBaseMs }),
      ...(tuning.informerBackoffMaxMs === undefined ? {} : { backoffMaxMs: tuning.informerBackoffMaxMs }),
      onRestart: (reason: RestartReason) => metrics.informerRestarts.inc({ informer: name, reason }),
    });
  const claims: Informer<V1PersistentVolumeClaim> = informer('claims', 'claims');
  const volumes: Informer<V1PersistentVolume> = informer('volumes', 'volumes');
  const classes: Informer<V1StorageClass> = informer('storageClasses', 'storageClasses');
  // Only with the attacher on: without it the chart grants no access to VolumeAttachments.
  const attacherOn = config.attacher ?? true;
  const attachments: Informer<V1VolumeAttachment> | undefined = attacherOn ? informer('attachments', 'attachments') : undefined;
  const contents: Informer<VolumeSnapshotContent> | undefined = deps.snapshotter === undefined ? undefined : informer('snapshotContents', 'snapshotContents');
  const informers = [claims, volumes, classes, ...(attachments === undefined ? [] : [attachments]), ...(contents === undefined ? [] : [contents])];

  const cache: CacheView = {
    claim: (key) => claims.get(key),
    volume: (name) => volumes.get(name),
    storageClass: (name) => classes.get(name),
    claims: () => claims.list(),
    volumes: () => volumes.list(),
    storageClasses: () => classes.list(),
    synced: () => informers.every((i) => i.hasSynced()),
  };
  const reconciler = new Reconciler({
    provisionerName: config.provisionerName,
    takeOverProvisioners: config.takeOverProvisioners ?? [],
    kube,
    provisioner,
    cache,
    events,
    metrics,
    logger,
    clock,
    mayAct: () => controller?.mayAct() ?? false,
    tuning,
  });
  const provision = createProvisionLoop({
    provisionerName: config.provisionerName,
    takeOverProvisioners: config.takeOverProvisioners ?? [],
    workers: config.workers,
    claims,
    volumes,
    classes,
    reconciler,
    logger,
    clock,
    orphanScanPeriodMs: tuning.orphanScanPeriodMs ?? config.resyncPeriodMs,
  });
  const attach = attachments === undefined ? undefined : createAttachLoop({
    provisionerName: config.provisionerName,
    workers: config.workers,
    attachments,
    volumes,
    kube,
    events,
    metrics,
    logger,
    clock,
    ...(deps.nodeAccess === undefined ? {} : { nodeAccess: deps.nodeAccess }),
  });
  // ceph-csi's config map: only when asked for (it writes into another component's configuration).
  const csiConfig = config.cephCsiConfig === undefined || deps.clusterEntries === undefined ? undefined : createCsiConfigLoop({
    provisionerName: config.provisionerName,
    target: config.cephCsiConfig,
    classes,
    volumes,
    entries: deps.clusterEntries,
    kube,
    events,
    metrics,
    logger,
    clock,
    resyncPeriodMs: config.resyncPeriodMs,
  });
  // Volume expansion: on unless --resizer=false (for clusters where ceph-csi's csi-resizer handles our driver).
  const resize = (config.resizer ?? true) && deps.resizer !== undefined ? createResizeLoop({
    provisionerName: config.provisionerName,
    workers: config.workers,
    claims,
    volumes,
    resizer: deps.resizer,
    kube,
    events,
    metrics,
    logger,
    clock,
  }) : undefined;
  const snapshot = contents === undefined || deps.snapshotter === undefined ? undefined : createSnapshotLoop({
    provisionerName: config.provisionerName,
    workers: config.workers,
    contents,
    volumes,
    snapshotter: deps.snapshotter,
    kube,
    events,
    metrics,
    logger,
    clock,
  });
  const loops = [provision, ...(snapshot === undefined ? [] : [snapshot]), ...(attach === undefined ? [] : [attach]), ...(csiConfig === undefined ? [] : [csiConfig]), ...(resize === undefined ? [] : [resize])];
  controller = createRunner({
    config, kube, informers, loops, events, logger, metrics, clock, tuning,
    ...(deps.fencing === undefined ? {} : { fencing: deps.fencing }),
    ...(deps.leaseClient === undefined ? {} : { leaseClient: deps.leaseClient }),
    ...(deps.onLeading === undefined ? {} : { onLeading: deps.onLeading }),
  });
  return controller;
}

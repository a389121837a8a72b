// Prometheus metrics. One registry per process (tests make their own). The Ceph call metrics are created here and
// handed to whoever wraps Ceph calls (main.ts wires them), so the controller stays free of Ceph code.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Clock } from '../kube/clock.js';

export interface Metrics {
  registry: Registry;
  /** Always 1, labelled with this build's version and the Node.js version. */
  buildInfo: Gauge<'version' | 'node_version'>;
  provisionTotal: Counter<'class' | 'result'>;
  provisionDuration: Histogram<'class' | 'result'>;
  deleteTotal: Counter<'class' | 'result'>;
  deleteDuration: Histogram<'class' | 'result'>;
  /** Claim expansions by StorageClass and result (success, infeasible, failed, conflict, gone, save-failed, aborted). */
  resizeTotal: Counter<'class' | 'result'>;
  resizeDuration: Histogram<'class' | 'result'>;
  /** Snapshots cut, imported or deleted for VolumeSnapshotContents of our volumes, by operation and result. */
  snapshotTotal: Counter<'op' | 'result'>;
  snapshotDuration: Histogram<'op' | 'result'>;
  /** VolumeAttachments of our PVs marked attached, by result (success, gone, failed, aborted). */
  attachTotal: Counter<'result'>;
  attachDuration: Histogram<'result'>;
  /** VolumeAttachments of our PVs released from the attacher finalizer on deletion, by result. */
  detachTotal: Counter<'result'>;
  detachDuration: Histogram<'result'>;
  // ---- ceph-csi's config map (--ceph-csi-config) ----
  /** Runs of the ceph-csi config loop by result (unchanged, created, updated, conflict, unreadable, forbidden, failed, aborted). */
  cephCsiConfigSyncs: Counter<'result'>;
  cephCsiConfigSyncDuration: Histogram<'result'>;
  /** Entries of ceph-csi's config map this provisioner owns (writes and keeps). */
  cephCsiConfigOwnedEntries: Gauge;
  /** Classes (or PVs) whose clusterID another writer's entry holds with other contents, as of the last run. */
  cephCsiConfigConflicts: Gauge;
  // ---- work queues, by loop: client-go's workqueue metrics, with `loop` for its `name` ----
  queueDepth: Gauge<'loop'>;
  queueInFlight: Gauge<'loop'>;
  queueRetries: Counter<'loop' | 'kind'>;
  /** Keys added that were not already waiting (a key added while it runs counts: it runs again). */
  queueAdds: Counter<'loop'>;
  /** From a key being added to its run starting. */
  queueDuration: Histogram<'loop'>;
  /** Runs of a key, start to end. */
  workDuration: Histogram<'loop'>;
  /** Read at scrape time into the unfinished-work and longest-running gauges: each loop's current queue. */
  queueProgress: Map<string, () => QueueProgress>;
  informerRestarts: Counter<'informer' | 'reason'>;
  informerSynced: Gauge<'informer'>;
  leader: Gauge;
  leaderLost: Counter;
  /** Attempts to fence the previous leader before acting, by result (ok, error). */
  fencings: Counter<'result'>;
  orphansCollected: Counter<'result'>;
  orphanScans: Counter<'location' | 'result'>;
  orphansUnsure: Gauge;
  /** To be observed around every librbd/librados call: op = the C function, result = ok or the errno name. */
  cephCallDuration: Histogram<'op' | 'result'>;
  /** Calls running on a Ceph thread now (at most --ceph-max-inflight), read at scrape time. */
  cephCallsInFlight: Gauge;
  /** The most calls ever running at once (RELIABILITY 21: never above --ceph-max-inflight). */
  cephCallsInFlightPeak: Gauge;
  /** Calls waiting for a Ceph thread, read at scrape time. */
  cephCallsQueued: Gauge;
}

/** Runs in progress in one work queue, at the time of asking. */
export interface QueueProgress {
  /** Sum over the keys being processed of how long each has been running. */
  unfinishedSeconds: number;
  /** How long the longest-running of them has been running; 0 when none is. */
  longestSeconds: number;
}

/** What the Ceph call pool reports; main.ts hands it over so this file needs no Ceph code. */
export interface CephCallStats {
  inflight: number;
  queued: number;
  peakInflight: number;
}

const OPERATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const CEPH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Waiting in a queue and working on a key: from a millisecond to the longest retry and the slowest Ceph call. */
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export function createMetrics(
  options: {
    registry?: Registry;
    /** Node's process metrics under the names prom-client gives them (process_*, nodejs_*), as stock dashboards expect. */
    defaultMetrics?: boolean;
    cephCallStats?: () => CephCallStats;
    buildInfo?: { version: string; nodeVersion: string };
  } = {},
): Metrics {
  const cephCallStats = options.cephCallStats;
  const registry = options.registry ?? new Registry();
  if (options.defaultMetrics === true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const queueProgress = new Map<string, () => QueueProgress>();
  const progressGauge = (name: string, help: string, pick: (progress: QueueProgress) => number): Gauge<'loop'> => new Gauge({
    name, help, labelNames: ['loop'], registers,
    collect() {
      for (const [loop, progress] of queueProgress) this.set({ loop }, pick(progress()));
    },
  });
  progressGauge('rbd_provisioner_workqueue_unfinished_work_seconds',
    'Sum of how long the keys being processed now have been running, by loop: a value that keeps growing means stuck work.',
    (progress) => progress.unfinishedSeconds);
  progressGauge('rbd_provisioner_workqueue_longest_running_processor_seconds',
    'How long the longest-running key being processed now has been running, by loop.',
    (progress) => progress.longestSeconds);
  const buildInfo = new Gauge({
    name: 'rbd_provisioner_build_info',
    help: 'Always 1; labelled with the version of rbd-provisioner and of the Node.js running it.',
    labelNames: ['version', 'node_version'],
    registers,
  });
  if (options.buildInfo !== undefined) buildInfo.set({ version: options.buildInfo.version, node_version: options.buildInfo.nodeVersion }, 1);
  return {
    registry,
    buildInfo,
    queueProgress,
    provisionTotal: new Counter({
      name: 'rbd_provisioner_provision_total',
      help: 'Provisioning attempts by StorageClass and result (success, final, transient, in-progress, save-failed, aborted).',
      labelNames: ['class', 'result'],
      registers,
    }),
    provisionDuration: new Histogram({
      name: 'rbd_provisioner_provision_duration_seconds',
      help: 'Duration of provisioning attempts, from the decision to act to the PV being saved.',
      labelNames: ['class', 'result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    deleteTotal: new Counter({
      name: 'rbd_provisioner_delete_total',
      help: 'Volume deletion attempts by StorageClass (from the PV) and result.',
      labelNames: ['class', 'result'],
      registers,
    }),
    deleteDuration: new Histogram({
      name: 'rbd_provisioner_delete_duration_seconds',
      help: 'Duration of volume deletion attempts.',
      labelNames: ['class', 'result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    resizeTotal: new Counter({
      name: 'rbd_provisioner_resize_total',
      help: 'Claim expansions by StorageClass and result (success, infeasible, failed, conflict, gone, save-failed, aborted).',
      labelNames: ['class', 'result'],
      registers,
    }),
    resizeDuration: new Histogram({
      name: 'rbd_provisioner_resize_duration_seconds',
      help: 'Duration of claim expansions, from the decision to act to the claim\'s status being saved.',
      labelNames: ['class', 'result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    snapshotTotal: new Counter({
      name: 'rbd_provisioner_snapshot_total',
      help: 'VolumeSnapshotContents of our volumes handled, by operation (create, import, delete) and result (success, final, transient, conflict, aborted).',
      labelNames: ['op', 'result'],
      registers,
    }),
    snapshotDuration: new Histogram({
      name: 'rbd_provisioner_snapshot_duration_seconds',
      help: 'Duration of snapshot operations, from the decision to act to the content\'s status being saved.',
      labelNames: ['op', 'result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    attachTotal: new Counter({
      name: 'rbd_provisioner_attach_total',
      help: 'VolumeAttachments of our PVs marked attached, by result (success, gone, failed, aborted).',
      labelNames: ['result'],
      registers,
    }),
    attachDuration: new Histogram({
      name: 'rbd_provisioner_attach_duration_seconds',
      help: 'Duration of marking a VolumeAttachment attached, from the decision to act to the status being saved.',
      labelNames: ['result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    detachTotal: new Counter({
      name: 'rbd_provisioner_detach_total',
      help: 'VolumeAttachments of our PVs being deleted that we marked detached and released from the attacher finalizer, by result.',
      labelNames: ['result'],
      registers,
    }),
    detachDuration: new Histogram({
      name: 'rbd_provisioner_detach_duration_seconds',
      help: 'Duration of marking a VolumeAttachment detached and removing the attacher finalizer.',
      labelNames: ['result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    cephCsiConfigSyncs: new Counter({
      name: 'rbd_provisioner_ceph_csi_config_syncs_total',
      help: 'Runs of the ceph-csi config loop by result (unchanged, created, updated, conflict, unreadable, forbidden, failed, aborted).',
      labelNames: ['result'],
      registers,
    }),
    cephCsiConfigSyncDuration: new Histogram({
      name: 'rbd_provisioner_ceph_csi_config_sync_duration_seconds',
      help: 'Duration of a run of the ceph-csi config loop, from reading the config map to writing it back.',
      labelNames: ['result'],
      buckets: OPERATION_BUCKETS,
      registers,
    }),
    cephCsiConfigOwnedEntries: new Gauge({
      name: 'rbd_provisioner_ceph_csi_config_owned_entries',
      help: 'Entries of ceph-csi\'s config map this provisioner writes and keeps.',
      registers,
    }),
    cephCsiConfigConflicts: new Gauge({
      name: 'rbd_provisioner_ceph_csi_config_conflicts',
      help: 'Classes (or PVs) whose clusterID is held in ceph-csi\'s config map by another writer\'s entry with other contents.',
      registers,
    }),
    queueDepth: new Gauge({ name: 'rbd_provisioner_workqueue_depth', help: 'Keys waiting for a worker, by loop.', labelNames: ['loop'], registers }),
    queueInFlight: new Gauge({ name: 'rbd_provisioner_workqueue_in_flight', help: 'Keys being reconciled now, by loop.', labelNames: ['loop'], registers }),
    queueRetries: new Counter({
      name: 'rbd_provisioner_workqueue_retries_total',
      help: 'Retries scheduled by the work queues, by loop and kind (backoff, slow).',
      labelNames: ['loop', 'kind'],
      registers,
    }),
    queueAdds: new Counter({
      name: 'rbd_provisioner_workqueue_adds_total',
      help: 'Keys added to the work queues, by loop (not counting a key already waiting).',
      labelNames: ['loop'],
      registers,
    }),
    queueDuration: new Histogram({
      name: 'rbd_provisioner_workqueue_queue_duration_seconds',
      help: 'How long a key waited in its work queue before being processed, by loop.',
      labelNames: ['loop'],
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    workDuration: new Histogram({
      name: 'rbd_provisioner_workqueue_work_duration_seconds',
      help: 'How long processing a key took, by loop.',
      labelNames: ['loop'],
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    informerRestarts: new Counter({
      name: 'rbd_provisioner_informer_restarts_total',
      help: 'Informer list/watch restarts by informer and reason (error, gone, closed-early).',
      labelNames: ['informer', 'reason'],
      registers,
    }),
    informerSynced: new Gauge({
      name: 'rbd_provisioner_informer_synced',
      help: '1 once the informer has loaded its first list.',
      labelNames: ['informer'],
      registers,
    }),
    leader: new Gauge({ name: 'rbd_provisioner_leader', help: '1 while this replica holds the lease and may act.', registers }),
    leaderLost: new Counter({ name: 'rbd_provisioner_leader_lost_total', help: 'Times this replica lost the lease (it then stands by and campaigns again).', registers }),
    fencings: new Counter({
      name: 'rbd_provisioner_fencings_total',
      help: 'Attempts to fence the previous leader\'s storage clients before acting, by result (ok, error).',
      labelNames: ['result'],
      registers,
    }),
    orphansCollected: new Counter({
      name: 'rbd_provisioner_orphans_collected_total',
      help: 'Volumes without PV or claim found by orphan collection, by result (deleted, failed).',
      labelNames: ['result'],
      registers,
    }),
    orphanScans: new Counter({
      name: 'rbd_provisioner_orphan_scans_total',
      help: 'Orphan-collection scans by location (cluster and pool) and result (ok, failed): each location is scanned on its own.',
      labelNames: ['location', 'result'],
      registers,
    }),
    orphansUnsure: new Gauge({
      name: 'rbd_provisioner_orphans_unsure',
      help: 'Volumes with no PV and no claim whose PV may once have existed (e.g. a Retain PV deleted by hand): kept, never collected; an admin decides.',
      registers,
    }),
    cephCallDuration: new Histogram({
      name: 'rbd_provisioner_ceph_call_duration_seconds',
      help: 'Duration of librbd/librados calls by operation and result.',
      labelNames: ['op', 'result'],
      buckets: CEPH_BUCKETS,
      registers,
    }),
    cephCallsInFlight: new Gauge({
      name: 'rbd_provisioner_ceph_calls_in_flight',
      help: 'librbd/librados calls running now (bounded by --ceph-max-inflight).',
      registers,
      collect() {
        if (cephCallStats) this.set(cephCallStats().inflight);
      },
    }),
    cephCallsInFlightPeak: new Gauge({
      name: 'rbd_provisioner_ceph_calls_in_flight_peak',
      help: 'Most librbd/librados calls ever running at once in this process (never above --ceph-max-inflight).',
      registers,
      collect() {
        if (cephCallStats) this.set(cephCallStats().peakInflight);
      },
    }),
    cephCallsQueued: new Gauge({
      name: 'rbd_provisioner_ceph_calls_queued',
      help: 'librbd/librados calls waiting for one of the --ceph-max-inflight threads.',
      registers,
      collect() {
        if (cephCallStats) this.set(cephCallStats().queued);
      },
    }),
  };
}

/**
 * Starts timing one operation (a provision, a delete, an attach, ...): the returned function, called once with its
 * result, counts it in `total` and observes its duration in `duration`, both under `labels` plus `result`.
 */
export function startOperation<T extends string>(
  clock: Clock,
  total: Counter<T>,
  duration: Histogram<T>,
  labels: Record<Exclude<T, 'result'>, string>,
): (result: string) => void {
  const started = clock.now();
  return (result) => {
    const all = { ...labels, result } as Record<T, string>;
    total.inc(all);
    duration.observe(all, (clock.now() - started) / 1000);
  };
}

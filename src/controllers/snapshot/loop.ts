// The snapshot loop: for the VolumeSnapshotContents of our volumes we do what the csi-snapshotter sidecar does for a
// CSI driver (ceph-csi's cannot snapshot volumes it did not provision): cut the snapshot, report it in the content's
// status, and delete it when the content goes with policy Delete. The real snapshot-controller does the rest
// (VolumeSnapshot <-> content binding, the source claim's protection, readiness of the VolumeSnapshot).
//
// Order of writes, so that a crash anywhere leaves nothing unaccounted for: the record (where the snapshot goes) is
// saved on the content first, then the snapshot is cut under a name derived from the content's uid, then the status.
// A retry finds the same snapshot; a content deleted before its status was written still names its snapshot.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import type { Clock } from '../../kube/clock.js';
import { type KubeFacade, isConflict, isNotFound } from '../../kube/client.js';
import { type EventRecorder, referenceTo } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import { CONTENT_FINALIZER, SNAPSHOT_API_VERSION, type VolumeSnapshotContent } from '../../kube/snapshots.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import { type ControlLoop, LoopKeys } from '../loop.js';
import { type Metrics, startOperation } from '../metrics.js';
import { ANN_SNAPSHOT_ORIGIN, ANN_SNAPSHOT_PROVISIONER, type ContentDecision, decideContent, isOurVolume, snapshotNameFor } from './decisions.js';
import { SnapshotError, type SnapshotRecord, type SnapshotState, type VolumeSnapshotter } from './snapshotter.js';

export interface SnapshotLoopDeps {
  provisionerName: string;
  workers: number;
  contents: Informer<VolumeSnapshotContent>;
  volumes: Informer<V1PersistentVolume>;
  snapshotter: VolumeSnapshotter;
  kube: Pick<KubeFacade, 'patchSnapshotContent' | 'patchSnapshotContentStatus' | 'readSnapshotClass'>;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
}

const PV_NAME_SUFFIX = /pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** ceph-csi's driver name: pre-provisioned contents of it are ours even before any PV of ours names it. */
const DEFAULT_DRIVER = 'rbd.csi.ceph.com';

/** What of a content the decision reads, but its status (written by this loop). */
function contentInputs(content: VolumeSnapshotContent): string {
  const annotations = content.metadata?.annotations ?? {};
  return JSON.stringify([
    content.metadata?.uid, content.metadata?.deletionTimestamp, content.metadata?.finalizers, annotations[ANN_SNAPSHOT_ORIGIN],
    annotations[ANN_SNAPSHOT_PROVISIONER], content.spec?.source, content.spec?.deletionPolicy, content.spec?.driver,
  ]);
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export function createSnapshotLoop(deps: SnapshotLoopDeps): ControlLoop {
  const { clock, contents, events, kube, logger, metrics, provisionerName, snapshotter, volumes } = deps;
  const keys = new LoopKeys();

  const ourVolumes = () => volumes.list().filter((volume) => isOurVolume(volume, provisionerName));
  const decide = (content: VolumeSnapshotContent): ContentDecision => decideContent(content, {
    provisionerName,
    // Our volume handles end with the PV's name (`<prefix>pvc-<uid>`): one cache lookup, not a walk over every PV.
    volumeByHandle: (driver, handle) => {
      const pvName = PV_NAME_SUFFIX.exec(handle)?.[0];
      const volume = pvName === undefined ? undefined : volumes.get(pvName);
      const matches = volume !== undefined && isOurVolume(volume, provisionerName) && volume.spec?.csi?.driver === driver && volume.spec.csi.volumeHandle === handle;
      return matches ? volume : undefined;
    },
    isOurDriver: (driver) => driver === DEFAULT_DRIVER || ourVolumes().some((v) => v.spec?.csi?.driver === driver),
  });
  const onContent = (content: VolumeSnapshotContent): void => {
    if (decide(content).action !== 'skip') keys.add(content.metadata?.name ?? '');
  };
  contents.addHandlers({
    onAdd: onContent,
    // Our own status writes (a failure recorded in status.error among them) ask nothing new: re-running the key on
    // them would retry a failure at once instead of after its backoff. Resyncs cover the rest.
    onUpdate: (content, old) => {
      if (contentInputs(content) !== contentInputs(old)) onContent(content);
    },
    onResync: onContent,
    onDelete: (content) => keys.forget(content.metadata?.name ?? ''),
  });

  /** Warnings go on the VolumeSnapshot (what users look at) when the content names one, else on the content. */
  function warn(content: VolumeSnapshotContent, reason: string, message: string): void {
    const ref = content.spec?.volumeSnapshotRef;
    if (ref?.name !== undefined && ref.namespace !== undefined) {
      events.event({ apiVersion: SNAPSHOT_API_VERSION, kind: 'VolumeSnapshot', name: ref.name, namespace: ref.namespace, ...(ref.uid === undefined ? {} : { uid: ref.uid }) }, 'Warning', reason, message);
    }
    events.event(referenceTo(content, 'VolumeSnapshotContent', SNAPSHOT_API_VERSION), 'Warning', reason, message);
  }

  async function classParameters(content: VolumeSnapshotContent, signal: AbortSignal): Promise<Record<string, string>> {
    const name = content.spec?.volumeSnapshotClassName;
    if (name === undefined || name === '') return {};
    const snapshotClass = await kube.readSnapshotClass(name, signal);
    if (snapshotClass === undefined) throw new SnapshotError('transient', 'SnapshotClassNotFound', `volumesnapshotclass.snapshot.storage.k8s.io "${name}" not found`);
    return snapshotClass.parameters ?? {};
  }

  /** Saves where the snapshot goes (and our finalizer) before anything exists; conditional on the version read. */
  async function plan(content: VolumeSnapshotContent, decision: Extract<ContentDecision, { action: 'plan' }>, signal: AbortSignal): Promise<void> {
    const parameters = await classParameters(content, signal);
    const record: SnapshotRecord = decision.source.kind === 'volume'
      ? snapshotter.planSnapshot({ name: snapshotNameFor(content), sourceVolume: decision.source.volume, parameters })
      : snapshotter.planImport({ snapshotHandle: decision.source.snapshotHandle, parameters });
    await snapshotter.checkCredentials(record, signal);
    const finalizers = content.metadata?.finalizers ?? [];
    await kube.patchSnapshotContent(content.metadata?.name ?? '', {
      metadata: {
        resourceVersion: content.metadata?.resourceVersion,
        annotations: { ...record, [ANN_SNAPSHOT_PROVISIONER]: provisionerName },
        ...(finalizers.includes(CONTENT_FINALIZER) ? {} : { finalizers: [...finalizers, CONTENT_FINALIZER] }),
      },
    }, signal);
  }

  async function report(content: VolumeSnapshotContent, state: SnapshotState, signal: AbortSignal): Promise<void> {
    await kube.patchSnapshotContentStatus(content.metadata?.name ?? '', {
      status: {
        snapshotHandle: state.snapshotHandle,
        // Nanoseconds since the epoch, as the CSI snapshotter reports it.
        creationTime: state.creationTime.getTime() * 1e6,
        restoreSize: state.restoreSizeBytes,
        readyToUse: state.readyToUse,
        error: null,
      },
    }, signal);
  }

  async function removeFinalizer(content: VolumeSnapshotContent, signal: AbortSignal): Promise<void> {
    const finalizers = (content.metadata?.finalizers ?? []).filter((f) => f !== CONTENT_FINALIZER);
    await kube.patchSnapshotContent(content.metadata?.name ?? '', {
      metadata: { resourceVersion: content.metadata?.resourceVersion, finalizers: finalizers.length === 0 ? null : finalizers },
    }, signal);
  }

  async function act(content: VolumeSnapshotContent, decision: Exclude<ContentDecision, { action: 'skip' }>, log: Logger, signal: AbortSignal): Promise<ProcessResult> {
    const op = decision.action === 'delete' ? 'delete' : content.spec?.source?.snapshotHandle !== undefined ? 'import' : 'create';
    const done = startOperation(clock, metrics.snapshotTotal, metrics.snapshotDuration, { op });
    const record = (content.metadata?.annotations ?? {}) as SnapshotRecord;
    try {
      switch (decision.action) {
        case 'plan':
          await plan(content, decision, signal);
          log.info('recorded where the snapshot goes; cutting it next');
          done('planned');
          return undefined;
        case 'create': {
          const state = op === 'import' ? await snapshotter.describeSnapshot(record, signal) : await snapshotter.createSnapshot(record, signal);
          await report(content, state, signal);
          log.info(op === 'import' ? 'found the pre-provisioned snapshot; content ready' : 'snapshot cut; content ready', { snapshotHandle: state.snapshotHandle, restoreSize: state.restoreSizeBytes });
          done('success');
          return undefined;
        }
        case 'delete':
          if (decision.removeSnapshot) await snapshotter.deleteSnapshot(record, signal);
          await removeFinalizer(content, signal);
          log.info(decision.removeSnapshot ? 'snapshot deleted; released the content' : 'released the content; its snapshot stays (Retain)');
          done('success');
          return undefined;
      }
    } catch (error) {
      if (signal.aborted) {
        done('aborted');
        return undefined;
      }
      if (isNotFound(error)) {
        done('gone');
        return undefined;
      }
      if (isConflict(error)) {
        log.info('the content changed meanwhile; retrying on its current version');
        done('conflict');
        return { retry: 'backoff' };
      }
      const kind = error instanceof SnapshotError ? error.kind : 'transient';
      const reason = error instanceof SnapshotError ? error.reason : 'SnapshotFailed';
      const message = `${op === 'delete' ? 'deleting' : op === 'import' ? 'importing' : 'creating'} the snapshot failed: ${errorMessage(error)}`;
      log.warn(`${message}; ${kind === 'final' ? 'retrying slowly' : 'retrying with backoff'}`, { error: describeError(error), kind });
      warn(content, reason, message);
      if (op !== 'delete') {
        // As the sidecar: the error goes into the content's status, and the snapshot-controller shows it on the VolumeSnapshot.
        await kube.patchSnapshotContentStatus(content.metadata?.name ?? '', { status: { readyToUse: false, error: { message, time: new Date(clock.now()).toISOString() } } }, signal)
          .catch((patchError: unknown) => log.debug('could not record the error in the content status', { error: describeError(patchError) }));
      }
      done(kind);
      return { retry: kind === 'final' ? 'slow' : 'backoff' };
    }
  }

  return {
    name: 'snapshot',
    workers: deps.workers,
    async process(name, signal) {
      const content = contents.get(name);
      if (content === undefined) return undefined;
      const decision = decide(content);
      const log = operationLogger(logger, { op: 'snapshot', content: name, ...(content.spec?.volumeSnapshotRef?.name === undefined ? {} : { snapshot: `${content.spec.volumeSnapshotRef.namespace ?? ''}/${content.spec.volumeSnapshotRef.name}` }) });
      if (decision.action === 'skip') {
        log.debug('nothing to do for the VolumeSnapshotContent', { why: decision.reason });
        return undefined;
      }
      return act(content, decision, log, signal);
    },
    start(sink) {
      keys.attach(sink);
      for (const content of contents.list()) onContent(content);
      logger.info('snapshot loop started', { contents: contents.size, recorded: contents.list().filter((c) => c.metadata?.annotations?.[ANN_SNAPSHOT_ORIGIN] !== undefined).length });
    },
    stop: () => keys.attach(undefined),
  };
}

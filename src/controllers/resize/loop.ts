// The resize loop: for the claims kube-controller-manager's expand controller hands to our PVs' CSI driver
// (annotation volume.kubernetes.io/storage-resizer), we do what kubernetes-csi/external-resizer does for a CSI
// driver, since ceph-csi's resizer cannot grow volumes it did not provision: grow the image, then the PV, then the
// claim's status (decisions.ts has the protocol). Informer handlers only enqueue claim keys; process() decides from
// the caches.
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Clock } from '../../kube/clock.js';
import { type KubeFacade, isConflict, isNotFound } from '../../kube/client.js';
import { type EventRecorder, referenceTo } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import { type ControlLoop, LoopKeys } from '../loop.js';
import { type Metrics, startOperation } from '../metrics.js';
import { ANN_PROVISIONED_BY } from '../provision/decisions.js';
import {
  ANN_STORAGE_RESIZER, CONDITION_CONTROLLER_RESIZE_ERROR, CONTROLLER_RESIZE_IN_PROGRESS, CONTROLLER_RESIZE_INFEASIBLE, type StatusPatch, decideClaimResize, markExpanded, markFailed, markInProgress, needsNodeExpansion,
  resizeStatus,
} from './decisions.js';
import { ResizeError, type VolumeResizer } from './resizer.js';

export interface ResizeLoopDeps {
  provisionerName: string;
  workers: number;
  claims: Informer<V1PersistentVolumeClaim>;
  volumes: Informer<V1PersistentVolume>;
  resizer: VolumeResizer;
  kube: Pick<KubeFacade, 'patchClaimStatus' | 'patchVolume'>;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const keyOf = (claim: V1PersistentVolumeClaim): string => `${claim.metadata?.namespace ?? ''}/${claim.metadata?.name ?? ''}`;

/** A write to the API server failed: what process() returns for it. */
class WriteFailed extends Error {
  constructor(readonly what: string, override readonly cause: unknown) {
    super(`${what}: ${errorMessage(cause)}`);
  }
}

/** What of a claim the decision reads, but its status conditions and allocated sizes (written by resizers). */
function resizeInputs(claim: V1PersistentVolumeClaim): string {
  return JSON.stringify([
    claim.metadata?.uid, claim.metadata?.annotations?.[ANN_STORAGE_RESIZER], claim.spec?.volumeName,
    claim.spec?.resources?.requests?.['storage'], claim.status?.phase,
  ]);
}

/** What of a PV the decision reads, but its capacity (written by this loop). */
function volumeInputs(volume: V1PersistentVolume): string {
  return JSON.stringify([
    volume.metadata?.annotations?.[ANN_PROVISIONED_BY], volume.spec?.claimRef?.uid, volume.spec?.csi?.driver, volume.metadata?.deletionTimestamp,
  ]);
}

/** The claim says this failure already (a retry that failed the same way writes nothing). */
function alreadyRecorded(claim: V1PersistentVolumeClaim, infeasible: boolean, message: string): boolean {
  const condition = claim.status?.conditions?.find((c) => c.type === CONDITION_CONTROLLER_RESIZE_ERROR && c.status === 'True');
  return condition?.message === message && (resizeStatus(claim) === CONTROLLER_RESIZE_INFEASIBLE) === infeasible;
}

export function createResizeLoop(deps: ResizeLoopDeps): ControlLoop {
  const { claims, clock, events, kube, logger, metrics, provisionerName, resizer, volumes } = deps;
  const keys = new LoopKeys();
  /** PV name -> the key of the claim bound to it, so that a PV change (or one the cache learns late) brings the claim back. */
  const claimOfVolume = new Map<string, string>();

  const decide = (claim: V1PersistentVolumeClaim) => {
    const pvName = claim.spec?.volumeName;
    return decideClaimResize(claim, pvName === undefined || pvName === '' ? undefined : volumes.get(pvName), provisionerName);
  };
  const onClaim = (claim: V1PersistentVolumeClaim): void => {
    const pvName = claim.spec?.volumeName;
    if (pvName !== undefined && pvName !== '') claimOfVolume.set(pvName, keyOf(claim));
    // Claims with nothing to grow (nearly all of them) never reach the queue.
    if (decide(claim).action !== 'skip') keys.add(keyOf(claim));
  };
  claims.addHandlers({
    onAdd: onClaim,
    // A change of the status alone (ours, or the kubelet's node step) asks nothing new of us: re-running the key on
    // our own status writes would retry a failure at once instead of after its backoff. Resyncs cover the rest.
    onUpdate: (claim, old) => {
      if (resizeInputs(claim) !== resizeInputs(old)) onClaim(claim);
    },
    onResync: onClaim,
    onDelete: (claim) => {
      const pvName = claim.spec?.volumeName;
      if (pvName !== undefined && claimOfVolume.get(pvName) === keyOf(claim)) claimOfVolume.delete(pvName);
      keys.forget(keyOf(claim));
    },
  });
  const onVolume = (volume: V1PersistentVolume): void => {
    const key = claimOfVolume.get(volume.metadata?.name ?? '');
    const claim = key === undefined ? undefined : claims.get(key);
    if (claim !== undefined) onClaim(claim);
  };
  // Only a PV that appears or changes hands (not our own capacity write) brings its claim back.
  volumes.addHandlers({
    onAdd: onVolume,
    onUpdate: (volume, old) => {
      if (volumeInputs(volume) !== volumeInputs(old)) onVolume(volume);
    },
  });

  async function patchClaim(claim: V1PersistentVolumeClaim, patch: StatusPatch, signal: AbortSignal, what: string): Promise<V1PersistentVolumeClaim> {
    try {
      const updated = await kube.patchClaimStatus(claim.metadata?.namespace ?? '', claim.metadata?.name ?? '', patch, signal);
      return updated;
    } catch (error) {
      throw new WriteFailed(what, error);
    }
  }

  /** Grows the PV's capacity; the JSON patch tests the capacity it replaces, so a concurrent change is a conflict. */
  async function patchVolumeCapacity(volume: V1PersistentVolume, capacity: string, signal: AbortSignal): Promise<void> {
    const before = volume.spec?.capacity?.['storage'];
    try {
      const updated = await kube.patchVolume(volume.metadata?.name ?? '', [
        { op: 'test', path: '/spec/capacity/storage', value: before },
        { op: 'replace', path: '/spec/capacity/storage', value: capacity },
      ], signal);
    } catch (error) {
      throw new WriteFailed('saving the PV\'s new capacity', error);
    }
  }

  /** Step 3 (decisions.ts): the node's turn, or done. */
  async function finish(claim: V1PersistentVolumeClaim, volume: V1PersistentVolume, capacity: string, log: Logger, signal: AbortSignal): Promise<void> {
    const nodeStep = needsNodeExpansion(volume);
    await patchClaim(claim, markExpanded(claim, capacity, nodeStep, new Date(clock.now())), signal, 'saving the claim\'s resize status');
    const ref = referenceTo(claim, 'PersistentVolumeClaim');
    if (nodeStep) {
      events.event(ref, 'Normal', 'FileSystemResizeRequired', `Require file system resize of volume on node: volume ${volume.metadata?.name ?? ''} now has ${capacity}; ceph-csi grows the filesystem when a pod next stages it`);
      log.info('volume and PV grown; the filesystem grows on the node when the volume is next staged', { capacity });
    } else {
      events.event(ref, 'Normal', 'VolumeResizeSuccessful', `Resize volume succeeded: volume ${volume.metadata?.name ?? ''} now has ${capacity}`);
      log.info('volume, PV and claim grown (block volume: nothing left for the node)', { capacity });
    }
  }

  async function expand(claim: V1PersistentVolumeClaim, volume: V1PersistentVolume, size: string, log: Logger, signal: AbortSignal): Promise<ProcessResult> {
    const done = startOperation(clock, metrics.resizeTotal, metrics.resizeDuration, { class: claim.spec?.storageClassName ?? '' });
    let current = claim;
    try {
      if (!(resizeStatus(claim) === CONTROLLER_RESIZE_IN_PROGRESS && claim.status?.allocatedResources?.['storage'] === size)) {
        current = await patchClaim(claim, markInProgress(claim, size, new Date(clock.now())), signal, 'marking the claim\'s resize in progress');
        events.event(referenceTo(claim, 'PersistentVolumeClaim'), 'Normal', 'Resizing', `External resizer is resizing volume ${volume.metadata?.name ?? ''} to ${size}`);
      }
      if (signal.aborted) {
        done('aborted');
        return undefined;
      }
      let result;
      try {
        result = await resizer.expand({ volume, claimUid: claim.metadata?.uid ?? '', size }, signal);
      } catch (error) {
        if (signal.aborted) {
          done('aborted');
          return undefined;
        }
        const infeasible = error instanceof ResizeError && error.kind === 'infeasible';
        const message = errorMessage(error);
        log.warn(infeasible ? 'the volume cannot grow to this size; the claim is marked infeasible (its user may ask for less)' : 'growing the volume failed; retrying with backoff',
          { error: describeError(error), size });
        events.event(referenceTo(claim, 'PersistentVolumeClaim'), 'Warning', 'VolumeResizeFailed', `resize volume ${volume.metadata?.name ?? ''} to ${size} failed: ${message}`);
        if (!alreadyRecorded(current, infeasible, message)) {
          await patchClaim(current, markFailed(current, infeasible, message, new Date(clock.now())), signal, 'recording the resize failure').catch((patchError: unknown) => {
            log.warn('recording the resize failure on the claim failed too', { error: describeError(patchError) });
          });
        }
        done(infeasible ? 'infeasible' : 'failed');
        return { retry: infeasible ? 'slow' : 'backoff' };
      }
      log.info(result.grown ? 'volume grown; saving the PV\'s capacity' : 'volume already had the size (an earlier attempt grew it); saving the PV\'s capacity', { capacity: result.capacity });
      await patchVolumeCapacity(volume, result.capacity, signal);
      await finish(current, volume, result.capacity, log, signal);
      done('success');
      return undefined;
    } catch (error) {
      return writeFailed(error, claim, log, signal, done);
    }
  }

  function writeFailed(error: unknown, claim: V1PersistentVolumeClaim, log: Logger, signal: AbortSignal, done: (result: string) => void): ProcessResult {
    if (signal.aborted) {
      done('aborted');
      return undefined;
    }
    if (!(error instanceof WriteFailed)) throw error;
    if (isNotFound(error.cause)) {
      log.info('the claim or its PV is gone; nothing to resize', { step: error.what });
      done('gone');
      return undefined;
    }
    if (isConflict(error.cause)) {
      // The object moved under us: the cache brings the new version, and with it this key again.
      log.info('the claim or its PV changed meanwhile; retrying on its current version', { step: error.what });
      done('conflict');
      return { retry: 'backoff' };
    }
    log.warn('a write of the resize failed; retrying with backoff', { step: error.what, error: describeError(error.cause) });
    events.event(referenceTo(claim, 'PersistentVolumeClaim'), 'Warning', 'VolumeResizeFailed', `${error.message}`);
    done('save-failed');
    return { retry: 'backoff' };
  }

  return {
    name: 'resize',
    workers: deps.workers,
    async process(key, signal) {
      const claim = claims.get(key);
      if (claim === undefined) return undefined;
      const decision = decide(claim);
      const log = operationLogger(logger, { op: 'resize', pvc: key, ...(claim.spec?.volumeName ? { pv: claim.spec.volumeName } : {}) });
      switch (decision.action) {
        case 'skip':
          log.debug('nothing to resize for the claim', { why: decision.reason });
          return undefined;
        case 'expand':
          return expand(claim, decision.volume, decision.size, log, signal);
        case 'finish': {
          const done = startOperation(clock, metrics.resizeTotal, metrics.resizeDuration, { class: claim.spec?.storageClassName ?? '' });
          try {
            log.info('the PV has its new capacity already (an interrupted resize); finishing the claim\'s status', { capacity: decision.capacity });
            await finish(claim, decision.volume, decision.capacity, log, signal);
            done('success');
            return undefined;
          } catch (error) {
            return writeFailed(error, claim, log, signal, done);
          }
        }
      }
    },
    start(sink) {
      keys.attach(sink);
      for (const claim of claims.list()) onClaim(claim);
      logger.info('resize loop started', { claims: claims.size });
    },
    stop: () => keys.attach(undefined),
  };
}

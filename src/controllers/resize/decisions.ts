// Pure decisions of the resize loop: which claims are ours to expand, to what size, and what their status says at
// each step. No I/O, table-tested.
//
// The protocol is the one kubernetes-csi/external-resizer follows for a CSI driver, with recovery from expansion
// failure (KEP 1790, GA). kube-controller-manager's expand controller finds no plugin of its own for a CSI PV: it
// only posts ExternalExpanding ("waiting for an external controller to expand this PVC") and leaves the claim to
// the resizer of the PV's driver, which recognises it by `spec.csi.driver` (the annotation
// `volume.kubernetes.io/storage-resizer: <driver>` is set only for in-tree PVs migrated to CSI; when a claim carries
// one naming another driver, it is not ours to grow). The resizer then
//   1. records the size it works towards: status.allocatedResources.storage, allocatedResourceStatuses.storage =
//      ControllerResizeInProgress, condition Resizing;
//   2. grows the volume, then the PV's spec.capacity;
//   3. for a Filesystem volume leaves the node step pending (allocatedResourceStatuses.storage = NodeResizePending,
//      condition FileSystemResizePending): the kubelet (ceph-csi's NodeStage/NodeExpand) grows the filesystem and
//      sets status.capacity; for a Block volume it finishes: status.capacity = the new size, no resize status left.
// A failure that can never succeed marks the claim ControllerResizeInfeasible, after which its user may lower the
// request (above status.capacity, the API server checks) and we work towards the lower size; any other failure
// only adds a ControllerResizeError condition and keeps the resize in progress towards the same allocated size
// (KEP 1790 since 1.31). While a resize is in progress, a lowered request never lowers the target: the volume may
// already have grown to it.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1PersistentVolumeClaimCondition } from '@kubernetes/client-node';
import { tryCompareQuantities } from '../../kube/quantity.js';
import { ANN_PROVISIONED_BY } from '../provision/decisions.js';

/** Set by kube-controller-manager's expand controller on a claim of a migrated in-tree PV: the CSI driver to grow it. */
export const ANN_STORAGE_RESIZER = 'volume.kubernetes.io/storage-resizer';

export const CONTROLLER_RESIZE_IN_PROGRESS = 'ControllerResizeInProgress';
// The API server accepts only these values (the API docs' "ControllerResizeFailed" is refused: 422).
export const CONTROLLER_RESIZE_INFEASIBLE = 'ControllerResizeInfeasible';
export const NODE_RESIZE_PENDING = 'NodeResizePending';

export const CONDITION_RESIZING = 'Resizing';
export const CONDITION_FS_RESIZE_PENDING = 'FileSystemResizePending';
export const CONDITION_CONTROLLER_RESIZE_ERROR = 'ControllerResizeError';
/** The conditions this loop owns; every other condition of the claim is left as it is. */
const OUR_CONDITIONS = new Set([CONDITION_RESIZING, CONDITION_FS_RESIZE_PENDING, CONDITION_CONTROLLER_RESIZE_ERROR]);

export type ClaimResizeDecision =
  | { action: 'skip'; reason: string }
  /** Grow the volume to size (a quantity), then the PV, then the claim's status. */
  | { action: 'expand'; size: string; volume: V1PersistentVolume }
  /** The PV has the size already (a crash after saving it): only the claim's status is behind. */
  | { action: 'finish'; capacity: string; volume: V1PersistentVolume };

const storageOf = (list: Record<string, string> | undefined | null): string | undefined => list?.['storage'];

/** The claim's storage request. */
export function requestedSize(claim: V1PersistentVolumeClaim): string | undefined {
  const request: unknown = claim.spec?.resources?.requests?.['storage'];
  return typeof request === 'string' && request !== '' ? request : undefined;
}

/** allocatedResourceStatuses.storage, or undefined. */
export function resizeStatus(claim: V1PersistentVolumeClaim): string | undefined {
  return storageOf(claim.status?.allocatedResourceStatuses as Record<string, string> | undefined);
}

/**
 * The size to work towards: the request, except while a resize is in progress towards a larger allocated size (KEP
 * 1790: a user lowering the request mid-resize must not get quota back for space the volume may already have).
 */
export function targetSize(claim: V1PersistentVolumeClaim): string | undefined {
  const request = requestedSize(claim);
  const allocated = storageOf(claim.status?.allocatedResources);
  if (request === undefined) return undefined;
  if (resizeStatus(claim) === CONTROLLER_RESIZE_IN_PROGRESS && allocated !== undefined && (tryCompareQuantities(allocated, request) ?? 0) > 0) {
    return allocated;
  }
  return request;
}

/** Whether the claim's volume needs a step on the node (the filesystem) after the volume itself has grown. */
export function needsNodeExpansion(volume: V1PersistentVolume): boolean {
  return volume.spec?.volumeMode !== 'Block';
}

export function decideClaimResize(
  claim: V1PersistentVolumeClaim,
  volume: V1PersistentVolume | undefined,
  provisionerName: string,
): ClaimResizeDecision {
  if (claim.status?.phase !== 'Bound') return { action: 'skip', reason: 'not bound' };
  const resizer = claim.metadata?.annotations?.[ANN_STORAGE_RESIZER];
  if (volume === undefined) return { action: 'skip', reason: 'its PV is not known (yet)' };
  if (volume.metadata?.annotations?.[ANN_PROVISIONED_BY] !== provisionerName) return { action: 'skip', reason: 'the PV was not provisioned by us' };
  const claimRef = volume.spec?.claimRef;
  if (claimRef?.uid !== claim.metadata?.uid || claimRef?.name !== claim.metadata?.name || claimRef?.namespace !== claim.metadata?.namespace) {
    return { action: 'skip', reason: 'the PV is not bound to this claim' };
  }
  if (volume.metadata?.deletionTimestamp != null) return { action: 'skip', reason: 'the PV is being deleted' };
  const driver = volume.spec?.csi?.driver;
  if (driver === undefined || driver === '') return { action: 'skip', reason: 'the PV is not a CSI volume' };
  if (resizer !== undefined && resizer !== driver) return { action: 'skip', reason: `the expand controller handed the claim to ${resizer}, the PV's driver is ${driver}` };

  const target = targetSize(claim);
  const capacity = storageOf(volume.spec?.capacity);
  if (target === undefined || capacity === undefined) return { action: 'skip', reason: 'the claim has no storage request or the PV no capacity' };
  const order = tryCompareQuantities(target, capacity);
  if (order === undefined) return { action: 'skip', reason: `unparsable size (${JSON.stringify(target)} or ${JSON.stringify(capacity)})` };
  if (order > 0) return { action: 'expand', size: target, volume };
  if (resizeStatus(claim) === CONTROLLER_RESIZE_IN_PROGRESS) return { action: 'finish', capacity, volume };
  return { action: 'skip', reason: 'the PV is as large as asked' };
}

// ---- the claim's status at each step (merge patches of the status subresource) ----

interface ConditionInput {
  type: string;
  reason?: string;
  message?: string;
}

/** Our conditions replaced by `add` (keeping the transition time of one that stays); others untouched. */
export function withConditions(
  existing: readonly V1PersistentVolumeClaimCondition[] | undefined,
  add: readonly ConditionInput[],
  now: Date,
): V1PersistentVolumeClaimCondition[] {
  const kept = (existing ?? []).filter((condition) => !OUR_CONDITIONS.has(condition.type));
  const added = add.map((input): V1PersistentVolumeClaimCondition => {
    const before = (existing ?? []).find((condition) => condition.type === input.type && condition.status === 'True');
    return {
      type: input.type,
      status: 'True',
      lastProbeTime: now,
      lastTransitionTime: before?.lastTransitionTime ?? now,
      ...(input.reason === undefined ? {} : { reason: input.reason }),
      ...(input.message === undefined ? {} : { message: input.message }),
    };
  });
  return [...kept, ...added];
}

export interface StatusPatch {
  metadata: { resourceVersion: string | undefined };
  status: Record<string, unknown>;
}

const patchOf = (claim: V1PersistentVolumeClaim, status: Record<string, unknown>): StatusPatch =>
  // The resourceVersion makes the merge patch conditional: a claim changed meanwhile is a 409, read again.
  ({ metadata: { resourceVersion: claim.metadata?.resourceVersion }, status });

/** Step 1: the size we work towards is allocated; the resize is in progress. */
export function markInProgress(claim: V1PersistentVolumeClaim, size: string, now: Date): StatusPatch {
  return patchOf(claim, {
    allocatedResources: { storage: size },
    allocatedResourceStatuses: { storage: CONTROLLER_RESIZE_IN_PROGRESS },
    conditions: withConditions(claim.status?.conditions, [{ type: CONDITION_RESIZING }], now),
  });
}

/** Step 3: the volume and the PV have grown; the node finishes (Filesystem) or nothing is left (Block). */
export function markExpanded(claim: V1PersistentVolumeClaim, capacity: string, nodeStep: boolean, now: Date): StatusPatch {
  if (nodeStep) {
    return patchOf(claim, {
      allocatedResourceStatuses: { storage: NODE_RESIZE_PENDING },
      conditions: withConditions(claim.status?.conditions, [{
        type: CONDITION_FS_RESIZE_PENDING,
        message: 'Waiting for user to (re-)start a pod to finish file system resize of volume on node.',
      }], now),
    });
  }
  return patchOf(claim, {
    capacity: { storage: capacity },
    allocatedResourceStatuses: { storage: null },
    conditions: withConditions(claim.status?.conditions, [], now),
  });
}

/** A failure: infeasible ones let the user lower the request; others keep the resize in progress. */
export function markFailed(claim: V1PersistentVolumeClaim, infeasible: boolean, message: string, now: Date): StatusPatch {
  const error = { type: CONDITION_CONTROLLER_RESIZE_ERROR, reason: 'VolumeResizeFailed', message };
  const conditions = withConditions(claim.status?.conditions, infeasible ? [error] : [{ type: CONDITION_RESIZING }, error], now);
  return patchOf(claim, {
    ...(infeasible ? { allocatedResourceStatuses: { storage: CONTROLLER_RESIZE_INFEASIBLE } } : {}),
    conditions,
  });
}

// The storage side of the resize loop, declared here (what the loop needs) and implemented by the RBD provisioner;
// the loop never imports Ceph or RBD code.
import { StorageError } from '../storage-error.js';
import type { V1PersistentVolume } from '@kubernetes/client-node';

export interface ExpandRequest {
  /** The bound PV, read from the cache: where the volume is and whose it is (claimRef). */
  volume: V1PersistentVolume;
  /** The claim's uid: the volume must be recorded as this claim's, or it is not touched. */
  claimUid: string;
  /** The size asked for, as a Kubernetes quantity (the claim's request, or its allocated size while one is in progress). */
  size: string;
}

export interface ExpandResult {
  /**
   * The volume's capacity now, as a Kubernetes quantity: the request rounded as provisioning rounds, or more when the
   * volume already was larger (a volume never shrinks). Always at least the size asked for.
   */
  capacity: string;
  /** False when the volume already had that size (a retry after a crash, or a second request finished by the first). */
  grown: boolean;
}

/**
 * Grows volumes; idempotent: the target is compared with the volume's actual size, so a retry never grows twice.
 * Errors: ResizeError; any other Error is treated as transient.
 */
export interface VolumeResizer {
  expand(req: ExpandRequest, signal: AbortSignal): Promise<ExpandResult>;
}

/**
 * infeasible: this size can never be reached as things are (the volume is not the claim's, its record is invalid, the
 * size is out of range): the claim is marked ControllerResizeInfeasible, so that its user may ask for less (the
 * recovery of KEP 1790), and retried slowly.
 * transient: a full pool or cluster, Ceph unreachable: a Warning event, a ControllerResizeError condition, a
 * backed-off retry; the resize stays in progress.
 */
export type ResizeErrorKind = 'infeasible' | 'transient';

export class ResizeError extends StorageError<ResizeErrorKind> {
  override readonly name = 'ResizeError';
}

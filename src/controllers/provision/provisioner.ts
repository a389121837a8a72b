// The storage-specific part of the controller. Declared here (what the controller needs) and implemented by the RBD
// provisioner; the controller never imports Ceph or RBD code.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';

export interface ProvisionRequest {
  /** pvc-<claim uid>: deterministic, so a retry after a crash or a timeout finds the same volume. */
  pvName: string;
  /** Read from the cache. */
  claim: V1PersistentVolumeClaim;
  storageClass: V1StorageClass;
  selectedNode?: string;
  /** The claim's data source, resolved by the controller: the new volume starts as a copy of it. */
  source?: DataSource;
}

/**
 * volume: the source claim's bound PV (ours), to be copied as it is now. snapshot: a VolumeSnapshotContent's record
 * (the annotations the snapshot loop keeps on it) and its status, to be restored.
 */
export type DataSource =
  | { kind: 'volume'; volume: V1PersistentVolume }
  | { kind: 'snapshot'; record: Record<string, string>; snapshotHandle: string; restoreSizeBytes: number | undefined };

/**
 * provision() returns a PV with spec.capacity, spec.persistentVolumeSource (csi or rbd), accessModes, volumeMode,
 * mountOptions and annotations of its own; the controller stamps name, claimRef, storageClassName,
 * persistentVolumeReclaimPolicy, the provisioned-by annotation and the finalizer.
 * Errors: ProvisionError / DeleteError from ./errors.js; any other Error is treated as transient.
 *
 * The contract that keeps orphan collection safe: before provision() returns a PV, the storage records on the volume
 * that a PV may exist for it, and a volume without that record provably never had one. If the record cannot be
 * written, provision() fails (and is retried) instead of returning: no PV is ever saved for an unrecorded volume.
 */
export interface Provisioner {
  provision(req: ProvisionRequest, signal: AbortSignal): Promise<V1PersistentVolume>;
  /**
   * context.storageClass: the PV's class when it still exists, for PVs that keep what their delete needs only there
   * (those of a retired provisioner we take over).
   */
  delete(pv: V1PersistentVolume, signal: AbortSignal, context?: DeleteContext): Promise<void>;
  /**
   * Optional, for orphan collection after crashes. Where volumes of these classes live (one entry per distinct
   * cluster/pool), each scanned on its own so that one unreachable cluster or missing pool stops nothing else.
   */
  volumeLocations?(classes: V1StorageClass[]): VolumeLocation[];
  /** Volumes this provisioner created at one location (ownership metadata). */
  listOwnedVolumes?(location: VolumeLocation, signal: AbortSignal): Promise<OwnedVolume[]>;
  /** Removes an unrecorded volume, or finishes an interrupted delete (never a pv-may-exist one). */
  deleteOwnedVolume?(volume: OwnedVolume, signal: AbortSignal): Promise<void>;
  /**
   * Records on a volume that its PV exists, for volumes made before provision() recorded it itself (so that a Retain
   * PV deleted later keeps its volume). Idempotent.
   */
  recordVolumeHasPv?(volume: OwnedVolume, signal: AbortSignal): Promise<void>;
}

export interface DeleteContext {
  storageClass?: V1StorageClass;
}

export interface VolumeLocation {
  /** Stable and unique among locations; used as a metric label, so it names no secret. */
  id: string;
}

export interface OwnedVolume {
  id: string;
  /** Where it lives (VolumeLocation.id). */
  location: string;
  /**
   * unrecorded: provably never had a PV (a crash between creating it and saving its PV); collected once its claim is
   * gone. pv-may-exist: provision() returned a PV for it, so a PV may exist or may have existed (a Retain PV deleted
   * by an admin leaves its volume behind on purpose): never collected. deleting: a delete that was decided and
   * started but not finished; collected to finish it. half-made: named like one of ours but it cannot be opened (a
   * create interrupted half-way): it never held data or had a PV, and carries no claim but the uid in its name;
   * collected once no claim has that uid.
   */
  state: 'unrecorded' | 'pv-may-exist' | 'deleting' | 'half-made';
  pvName: string;
  claimUid: string;
  claimNamespace: string;
  claimName: string;
}

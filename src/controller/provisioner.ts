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
}

/**
 * provision() returns a PV with spec.capacity, spec.persistentVolumeSource (csi or rbd), accessModes, volumeMode,
 * mountOptions and annotations of its own; the controller stamps name, claimRef, storageClassName,
 * persistentVolumeReclaimPolicy, the provisioned-by annotation and the finalizer.
 * Errors: ProvisionError / DeleteError from ./errors.js; any other Error is treated as transient.
 */
export interface Provisioner {
  provision(req: ProvisionRequest, signal: AbortSignal): Promise<V1PersistentVolume>;
  delete(pv: V1PersistentVolume, signal: AbortSignal): Promise<void>;
  /**
   * Optional: called once the PV for a new volume exists (saved or adopted). From then on the volume follows its
   * PV's lifecycle, and orphan collection must never take it (a Retain PV deleted by an admin keeps its image).
   * A failure is logged as a warning and does not fail the provision.
   */
  volumeSaved?(pv: V1PersistentVolume, signal: AbortSignal): Promise<void>;
  /** Optional: volumes the provisioner created (ownership metadata), for orphan collection after crashes. */
  listOwnedVolumes?(classes: V1StorageClass[], signal: AbortSignal): Promise<OwnedVolume[]>;
  deleteOwnedVolume?(volume: OwnedVolume, signal: AbortSignal): Promise<void>;
}

export interface OwnedVolume {
  id: string;
  pvName: string;
  claimUid: string;
  claimNamespace: string;
  claimName: string;
}

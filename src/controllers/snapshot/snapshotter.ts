// The storage side of the snapshot loop, declared here (what the loop needs) and implemented by the RBD provisioner;
// the loop never imports Ceph or RBD code.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { StorageError } from '../storage-error.js';

/**
 * Where a snapshot is (or will be) and how to reach it, as annotations the loop keeps on the VolumeSnapshotContent.
 * Written before the snapshot is cut, so that deleting it never depends on the VolumeSnapshotClass, the source PV, or
 * a status that a crash kept from being written.
 */
export type SnapshotRecord = Record<string, string>;

export interface SnapshotPlanRequest {
  /** Deterministic for the content (from its uid): a retry after a crash finds the same snapshot. */
  name: string;
  /** Our PV whose volume is snapshotted. */
  sourceVolume: V1PersistentVolume;
  /** The VolumeSnapshotClass's parameters (credentials may override the PV's). */
  parameters: Record<string, string>;
}

export interface SnapshotImportRequest {
  /** A pre-provisioned content's spec.source.snapshotHandle. */
  snapshotHandle: string;
  parameters: Record<string, string>;
}

export interface SnapshotState {
  snapshotHandle: string;
  creationTime: Date;
  restoreSizeBytes: number;
  readyToUse: boolean;
}

/**
 * Cuts, describes and deletes snapshots of our volumes. Idempotent throughout: create finds a snapshot made by an
 * earlier try; delete of a snapshot already gone succeeds. Errors: SnapshotError; any other Error is transient.
 */
export interface VolumeSnapshotter {
  /** Pure: the record for a new snapshot, or SnapshotError('final') for bad parameters. */
  planSnapshot(req: SnapshotPlanRequest): SnapshotRecord;
  /** Pure: the record of a pre-provisioned snapshot, from its handle and its class's parameters. */
  planImport(req: SnapshotImportRequest): SnapshotRecord;
  /**
   * Checks that the credentials a record names can be read, before the record is saved: a content whose record was
   * never saved is known to have nothing in the storage, so it is released without asking the storage.
   */
  checkCredentials(record: SnapshotRecord, signal: AbortSignal): Promise<void>;
  createSnapshot(record: SnapshotRecord, signal: AbortSignal): Promise<SnapshotState>;
  /** A snapshot that must exist already (imports; and a content whose status was lost). */
  describeSnapshot(record: SnapshotRecord, signal: AbortSignal): Promise<SnapshotState>;
  /**
   * Removes the snapshot. Data that clones made from it still read stays until the last of them goes; nothing of it
   * is left after that.
   */
  deleteSnapshot(record: SnapshotRecord, signal: AbortSignal): Promise<void>;
}

/** final: as written it can never work (bad parameters, a record that does not name a snapshot of ours). */
export type SnapshotErrorKind = 'final' | 'transient';

export class SnapshotError extends StorageError<SnapshotErrorKind> {
  override readonly name = 'SnapshotError';
}

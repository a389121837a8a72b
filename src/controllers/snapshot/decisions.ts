// Pure decisions of the snapshot loop: what the csi-snapshotter sidecar would do with a VolumeSnapshotContent, for
// the contents that are ours. No I/O, table-tested.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { ANN_PROVISIONED_BY } from '../provision/decisions.js';
import { CONTENT_FINALIZER, type VolumeSnapshotContent } from '../../kube/snapshots.js';

/** Marks the record the loop keeps on a content: present once the snapshot's place is decided. */
export const ANN_SNAPSHOT_ORIGIN = 'rbd.provisioner.ceph.io/snapshot-origin';
/** Which provisioner recorded it: two installs may share a CSI driver name (one per Ceph cluster), never a content. */
export const ANN_SNAPSHOT_PROVISIONER = 'rbd.provisioner.ceph.io/snapshot-provisioner';

export type ContentDecision =
  | { action: 'skip'; reason: string }
  /** Decide where the snapshot goes and write that on the content before anything exists in the storage. */
  | { action: 'plan'; source: { kind: 'volume'; volume: V1PersistentVolume } | { kind: 'import'; snapshotHandle: string } }
  /** Cut it (dynamic) or find it (imported), then report it in the status. */
  | { action: 'create' }
  /** The content is being deleted: remove the snapshot when its policy says Delete (and we know where it is), then the finalizer. */
  | { action: 'delete'; removeSnapshot: boolean };

export interface ContentContext {
  provisionerName: string;
  /** Our PV whose CSI volume handle and driver these are, if any. */
  volumeByHandle(driver: string, handle: string): V1PersistentVolume | undefined;
  /** A CSI driver our StorageClasses or PVs use: the pre-provisioned contents of it are ours to import. */
  isOurDriver(driver: string): boolean;
}

export function isOurVolume(volume: V1PersistentVolume, provisionerName: string): boolean {
  return volume.metadata?.annotations?.[ANN_PROVISIONED_BY] === provisionerName && volume.spec?.csi !== undefined;
}

export function decideContent(content: VolumeSnapshotContent, context: ContentContext): ContentDecision {
  const annotations = content.metadata?.annotations ?? {};
  const recorded = annotations[ANN_SNAPSHOT_ORIGIN] !== undefined;
  if (recorded && annotations[ANN_SNAPSHOT_PROVISIONER] !== context.provisionerName) return { action: 'skip', reason: 'recorded by another provisioner' };
  const driver = content.spec?.driver ?? '';
  const volumeHandle = content.spec?.source?.volumeHandle;
  const snapshotHandle = content.spec?.source?.snapshotHandle;
  const deleting = content.metadata?.deletionTimestamp !== undefined && content.metadata.deletionTimestamp !== null;
  const sourceVolume = volumeHandle === undefined ? undefined : context.volumeByHandle(driver, volumeHandle);

  const ours = recorded || sourceVolume !== undefined || (snapshotHandle !== undefined && context.isOurDriver(driver));
  if (!ours) return { action: 'skip', reason: 'not a snapshot of a volume of ours' };

  if (deleting) {
    if (!(content.metadata?.finalizers ?? []).includes(CONTENT_FINALIZER)) return { action: 'skip', reason: 'being deleted, and nothing holds it for us' };
    // Without a record nothing was ever cut (the record is written first); a Retain content keeps its snapshot.
    return { action: 'delete', removeSnapshot: recorded && content.spec?.deletionPolicy === 'Delete' };
  }
  if (content.status?.readyToUse === true && (content.status.snapshotHandle ?? '') !== '') return { action: 'skip', reason: 'ready' };
  if (recorded) return { action: 'create' };
  if (sourceVolume !== undefined) return { action: 'plan', source: { kind: 'volume', volume: sourceVolume } };
  if (snapshotHandle !== undefined && snapshotHandle !== '') return { action: 'plan', source: { kind: 'import', snapshotHandle } };
  return { action: 'skip', reason: 'the content names neither a volume handle nor a snapshot handle' };
}

/** The snapshot's name in the storage: from the content's uid, so that a retry (or a second replica) finds the same one. */
export function snapshotNameFor(content: VolumeSnapshotContent): string {
  return content.metadata?.uid ?? '';
}

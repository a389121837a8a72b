// The external-snapshotter's API (snapshot.storage.k8s.io/v1): the shapes the controller reads and writes, and the
// finalizers and annotations its snapshot-controller uses to talk to the driver side. client-node has no types for
// custom resources; these carry only the fields used here.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';

export const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io';
export const SNAPSHOT_VERSION = 'v1';
export const SNAPSHOT_API_VERSION = `${SNAPSHOT_GROUP}/${SNAPSHOT_VERSION}`;

/** Held on a content while the snapshot exists on the storage; the driver side drops it once it deleted it. */
export const CONTENT_FINALIZER = 'snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection';
/** Set by the snapshot-controller on a content it deletes because its VolumeSnapshot went. */
export const ANN_SNAPSHOT_BEING_DELETED = 'snapshot.storage.kubernetes.io/volumesnapshot-being-deleted';

export interface VolumeSnapshotContent extends KubernetesObject {
  metadata?: V1ObjectMeta;
  spec?: {
    deletionPolicy?: 'Delete' | 'Retain';
    driver?: string;
    source?: { volumeHandle?: string; snapshotHandle?: string };
    sourceVolumeMode?: string;
    volumeSnapshotClassName?: string;
    volumeSnapshotRef?: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string };
  };
  status?: {
    snapshotHandle?: string;
    /** Nanoseconds since the epoch. */
    creationTime?: number;
    /** Bytes. */
    restoreSize?: number;
    readyToUse?: boolean;
    error?: { message?: string; time?: string };
  };
}

export interface VolumeSnapshot extends KubernetesObject {
  metadata?: V1ObjectMeta;
  spec?: {
    volumeSnapshotClassName?: string;
    source?: { persistentVolumeClaimName?: string; volumeSnapshotContentName?: string };
  };
  status?: {
    boundVolumeSnapshotContentName?: string;
    readyToUse?: boolean;
    restoreSize?: string;
    creationTime?: string;
    error?: { message?: string; time?: string };
  };
}

export interface VolumeSnapshotClass extends KubernetesObject {
  metadata?: V1ObjectMeta;
  driver?: string;
  deletionPolicy?: 'Delete' | 'Retain';
  parameters?: Record<string, string>;
}

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { ANN_SNAPSHOT_ORIGIN, ANN_SNAPSHOT_PROVISIONER, decideContent, type ContentContext } from '../../../../src/controllers/snapshot/decisions.js';
import { CONTENT_FINALIZER, type VolumeSnapshotContent } from '../../../../src/kube/snapshots.js';

const ours: V1PersistentVolume = {
  metadata: { name: 'pvc-1', annotations: { 'pv.kubernetes.io/provisioned-by': 'me' } },
  spec: { csi: { driver: 'rbd.csi.ceph.com', volumeHandle: 'pvc-1' } },
};
const context: ContentContext = {
  provisionerName: 'me',
  volumeByHandle: (driver, handle) => (driver === 'rbd.csi.ceph.com' && handle === 'pvc-1' ? ours : undefined),
  isOurDriver: (driver) => driver === 'rbd.csi.ceph.com',
};
const recorded = { [ANN_SNAPSHOT_ORIGIN]: 'created', [ANN_SNAPSHOT_PROVISIONER]: 'me' };

function content(overrides: { annotations?: Record<string, string>; source?: object; deleting?: boolean; finalizers?: string[]; policy?: 'Delete' | 'Retain'; status?: object; driver?: string }): VolumeSnapshotContent {
  return {
    metadata: {
      name: 'snapcontent-1', uid: 'u1',
      ...(overrides.annotations && { annotations: overrides.annotations }),
      ...(overrides.deleting && { deletionTimestamp: new Date() }),
      finalizers: overrides.finalizers ?? [CONTENT_FINALIZER],
    },
    spec: { driver: overrides.driver ?? 'rbd.csi.ceph.com', deletionPolicy: overrides.policy ?? 'Delete', source: overrides.source ?? { volumeHandle: 'pvc-1' } },
    ...(overrides.status && { status: overrides.status }),
  } as VolumeSnapshotContent;
}

describe('decideContent', () => {
  const rows: { name: string; content: VolumeSnapshotContent; action: string; extra?: object }[] = [
    { name: 'a snapshot of our volume: plan it first', content: content({}), action: 'plan' },
    { name: 'of a volume not ours (same driver): skip', content: content({ source: { volumeHandle: 'csi-vol-theirs' } }), action: 'skip' },
    { name: 'another driver: skip', content: content({ driver: 'other.csi', source: { snapshotHandle: 'p/i@s' } }), action: 'skip' },
    { name: 'pre-provisioned of our driver: plan the import', content: content({ source: { snapshotHandle: 'kube/img@s' } }), action: 'plan' },
    { name: 'recorded: cut it', content: content({ annotations: recorded }), action: 'create' },
    { name: 'recorded by another provisioner: skip', content: content({ annotations: { ...recorded, [ANN_SNAPSHOT_PROVISIONER]: 'other' } }), action: 'skip' },
    { name: 'ready: nothing to do', content: content({ annotations: recorded, status: { readyToUse: true, snapshotHandle: 'kube/snapshot-u1@snapshot' } }), action: 'skip' },
    { name: 'deleting, Delete, recorded: remove it', content: content({ annotations: recorded, deleting: true }), action: 'delete', extra: { removeSnapshot: true } },
    { name: 'deleting, Retain: only release it', content: content({ annotations: recorded, deleting: true, policy: 'Retain' }), action: 'delete', extra: { removeSnapshot: false } },
    { name: 'deleting, never recorded: nothing was cut, release it', content: content({ deleting: true }), action: 'delete', extra: { removeSnapshot: false } },
    { name: 'deleting, no finalizer of the protocol left: skip', content: content({ annotations: recorded, deleting: true, finalizers: [] }), action: 'skip' },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const decision = decideContent(row.content, context);
      assert.equal(decision.action, row.action, JSON.stringify(decision));
      if (row.extra !== undefined) assert.deepEqual({ ...decision, action: undefined }, { ...row.extra, action: undefined });
    });
  }
});

// The snapshot loop wired as the controller wires it, over the in-memory API server and a scripted snapshotter.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { ANN_SNAPSHOT_ORIGIN, ANN_SNAPSHOT_PROVISIONER } from '../../../../src/controllers/snapshot/decisions.js';
import {
  SnapshotError, type SnapshotImportRequest, type SnapshotPlanRequest, type SnapshotRecord, type SnapshotState, type VolumeSnapshotter,
} from '../../../../src/controllers/snapshot/snapshotter.js';
import { CONTENT_FINALIZER, type VolumeSnapshotContent } from '../../../../src/kube/snapshots.js';
import { FakeKube, PROVISIONER } from '../../fakes.js';
import { runController } from '../running.js';

class FakeSnapshotter implements VolumeSnapshotter {
  readonly calls: string[] = [];
  /** Snapshots that exist, by record image. */
  readonly cut = new Set<string>();
  failCreate: Error | undefined;
  failCredentials: Error | undefined;

  planSnapshot(req: SnapshotPlanRequest): SnapshotRecord {
    this.calls.push(`plan ${req.name} of ${req.sourceVolume.metadata?.name}`);
    return { [ANN_SNAPSHOT_ORIGIN]: 'created', 'test/image': `snapshot-${req.name}` };
  }
  planImport(req: SnapshotImportRequest): SnapshotRecord {
    this.calls.push(`import ${req.snapshotHandle}`);
    return { [ANN_SNAPSHOT_ORIGIN]: 'imported', 'test/image': req.snapshotHandle };
  }
  async checkCredentials(): Promise<void> {
    if (this.failCredentials !== undefined) throw this.failCredentials;
  }
  async createSnapshot(record: SnapshotRecord): Promise<SnapshotState> {
    this.calls.push(`create ${record['test/image']}`);
    if (this.failCreate !== undefined) throw this.failCreate;
    this.cut.add(record['test/image']!);
    return { snapshotHandle: `kube/${record['test/image']}@snapshot`, creationTime: new Date(1_700_000_000_000), restoreSizeBytes: 2 ** 30, readyToUse: true };
  }
  async describeSnapshot(record: SnapshotRecord): Promise<SnapshotState> {
    this.calls.push(`describe ${record['test/image']}`);
    return { snapshotHandle: record['test/image']!, creationTime: new Date(1_700_000_000_000), restoreSizeBytes: 2 ** 30, readyToUse: true };
  }
  async deleteSnapshot(record: SnapshotRecord): Promise<void> {
    this.calls.push(`delete ${record['test/image']}`);
    this.cut.delete(record['test/image']!);
  }
}

const PV = 'pvc-0b5f3c4e-1111-2222-3333-444455556666';

const ourVolume: V1PersistentVolume = {
  metadata: { name: PV, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
  spec: { csi: { driver: 'rbd.csi.ceph.com', volumeHandle: PV }, claimRef: { namespace: 'default', name: 'data', uid: 'u' } },
  status: { phase: 'Bound' },
};

function dynamicContent(source: object = { volumeHandle: PV }): VolumeSnapshotContent {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotContent',
    metadata: { name: 'snapcontent-1', uid: 'c1', finalizers: [CONTENT_FINALIZER] },
    spec: { driver: 'rbd.csi.ceph.com', deletionPolicy: 'Delete', source, volumeSnapshotRef: { name: 'snap', namespace: 'default', uid: 's1' } },
  };
}

function setup(content = dynamicContent()) {
  const kube = new FakeKube();
  const snapshotter = new FakeSnapshotter();
  kube.putVolume(ourVolume);
  kube.putSnapshotContent(content);
  const running = runController({ kube, deps: { snapshotter } });
  const stored = () => kube.snapshotContents.get('snapcontent-1');
  return { ...running, snapshotter, stored };
}

describe('snapshot loop', () => {
  test('records where the snapshot goes first, then cuts it, then reports it in the status', async () => {
    const { clock, snapshotter, stored, kube, metric, shutdown } = setup();
    await clock.advance(0);
    assert.deepEqual(snapshotter.calls, [`plan c1 of ${PV}`, 'create snapshot-c1']);
    const content = stored()!;
    assert.equal(content.metadata?.annotations?.[ANN_SNAPSHOT_PROVISIONER], PROVISIONER);
    assert.deepEqual(content.status, {
      snapshotHandle: 'kube/snapshot-c1@snapshot', creationTime: 1_700_000_000_000 * 1e6, restoreSize: 2 ** 30, readyToUse: true,
    });
    // The record was saved before the snapshot existed.
    assert.deepEqual(kube.contentPatches.map((p) => p.subresource), ['', 'status']);
    assert.equal(await metric('rbd_provisioner_snapshot_total', { op: 'create', result: 'success' }), 1);
    await shutdown();
  });

  test('a failure goes into the content status and a Warning on the VolumeSnapshot; retried', async () => {
    const { clock, snapshotter, stored, kube, shutdown } = setup();
    snapshotter.failCreate = new SnapshotError('transient', 'CephError', 'timed out');
    await clock.advance(0);
    assert.equal(stored()?.status?.readyToUse, false);
    assert.match(stored()?.status?.error?.message ?? '', /creating the snapshot failed: timed out/);
    const warning = kube.events.find((e) => e.involvedObject.kind === 'VolumeSnapshot');
    assert.equal(warning?.reason, 'CephError');
    assert.equal(warning?.involvedObject.name, 'snap');
    snapshotter.failCreate = undefined;
    await clock.advance(2000);
    assert.equal(stored()?.status?.readyToUse, true);
    await shutdown();
  });

  test('unreadable credentials: nothing is recorded, and deleting the content then needs no storage call', async () => {
    const { clock, snapshotter, stored, kube, shutdown } = setup();
    snapshotter.failCredentials = new SnapshotError('final', 'SecretUnavailable', 'secret ceph/nope not found');
    await clock.advance(0);
    assert.equal(stored()?.metadata?.annotations?.[ANN_SNAPSHOT_ORIGIN], undefined);
    assert.equal(kube.events.find((e) => e.involvedObject.kind === 'VolumeSnapshot')?.reason, 'SecretUnavailable');
    kube.putSnapshotContent({ ...stored()!, metadata: { ...stored()!.metadata, deletionTimestamp: new Date() } });
    await clock.advance(0);
    assert.equal(stored(), undefined, 'released');
    assert.ok(!snapshotter.calls.some((c) => c.startsWith('delete')));
    await shutdown();
  });

  test('deleted with policy Delete: the snapshot goes, then the finalizer; Retain keeps the snapshot', async () => {
    for (const policy of ['Delete', 'Retain'] as const) {
      const { clock, snapshotter, stored, kube, shutdown } = setup();
      await clock.advance(0);
      const ready = stored()!;
      kube.putSnapshotContent({ ...ready, spec: { ...ready.spec, deletionPolicy: policy }, metadata: { ...ready.metadata, deletionTimestamp: new Date() } });
      await clock.advance(0);
      assert.equal(stored(), undefined, `${policy}: released`);
      assert.equal(snapshotter.cut.has('snapshot-c1'), policy === 'Retain');
      await shutdown();
    }
  });

  test('a content of a volume that is not ours is never touched; a pre-provisioned one of our driver is imported', async () => {
    const foreign = setup(dynamicContent({ volumeHandle: 'csi-vol-of-ceph-csi' }));
    await foreign.clock.advance(0);
    assert.deepEqual(foreign.snapshotter.calls, []);
    assert.deepEqual(foreign.kube.contentPatches, []);
    await foreign.shutdown();

    const imported = setup(dynamicContent({ snapshotHandle: 'kube/img@s' }));
    await imported.clock.advance(0);
    assert.deepEqual(imported.snapshotter.calls, ['import kube/img@s', 'describe kube/img@s']);
    assert.equal(imported.stored()?.status?.readyToUse, true);
    await imported.shutdown();
  });
});

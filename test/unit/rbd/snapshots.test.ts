import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { releaseAtLeastMimic } from '../../../src/rbd/clones.js';
import { SnapshotError } from '../../../src/controllers/snapshot/snapshotter.js';
import { parseClassParameters } from '../../../src/rbd/parameters.js';
import {
  formatSnapshotHandle, importRecordFor, parseSnapshotClassParameters, parseSnapshotHandle, readSnapshotRecord, SnapshotParameterError, snapshotRecordFor,
} from '../../../src/rbd/snapshots.js';
import { buildVolume } from '../../../src/rbd/volume.js';

const params = parseClassParameters({ monitors: '10.0.0.1:6789', adminId: 'admin', adminSecretName: 'ceph-admin', adminSecretNamespace: 'ceph', pool: 'kube', userId: 'kube', userSecretName: 'ceph-user' });
const volume = {
  ...buildVolume({
    params,
    claim: { metadata: { name: 'data', namespace: 'apps', uid: 'u' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
    imageName: 'pvc-1',
    imageSizeBytes: 2 ** 30,
  }),
};
volume.metadata = { ...volume.metadata, name: 'pvc-1' };

describe('VolumeSnapshotClass parameters', () => {
  test('none: everything comes from the source PV', () => {
    assert.deepEqual(parseSnapshotClassParameters(undefined), {});
  });
  test('ours and ceph-csi\'s spellings of the Secret', () => {
    assert.deepEqual(parseSnapshotClassParameters({ adminId: 'snap', 'csi.storage.k8s.io/snapshotter-secret-name': 's', 'csi.storage.k8s.io/snapshotter-secret-namespace': 'ceph' }), {
      adminId: 'snap', adminSecret: { name: 's', namespace: 'ceph' },
    });
  });
  for (const [name, input, fragment] of [
    ['an unknown key names every allowed one', { pol: 'rbd' }, 'VolumeSnapshotClass parameter "pol": unknown parameter; allowed: monitors, pool, radosNamespace'],
    ['an empty value', { pool: '' }, 'VolumeSnapshotClass parameter "pool": empty'],
    ['a Secret name without its namespace', { adminSecretName: 's' }, 'VolumeSnapshotClass parameter "adminSecretNamespace": missing'],
    ['one key twice', { adminSecretName: 'a', 'csi.storage.k8s.io/snapshotter-secret-name': 'b', adminSecretNamespace: 'n' }, 'given twice'],
    ['a bad Secret name', { adminSecretName: 'Not_A_Name', adminSecretNamespace: 'n' }, '"adminSecretName"'],
  ] as const) {
    test(name, () => {
      assert.throws(() => parseSnapshotClassParameters(input), (err: unknown) => err instanceof SnapshotParameterError && err.message.includes(fragment));
    });
  }
});

describe('snapshot handles', () => {
  test('pool/image@snapshot and pool/namespace/image@snapshot round-trip', () => {
    for (const text of ['kube/snapshot-1@snapshot', 'kube/tenant/img@s1']) assert.equal(formatSnapshotHandle(parseSnapshotHandle(text)), text);
    assert.deepEqual(parseSnapshotHandle('kube/tenant/img@s1'), { pool: 'kube', radosNamespace: 'tenant', image: 'img', snapshot: 's1' });
  });
  for (const text of ['kube/img', 'img@s', 'a/b/c/d@s', 'kube/img@', 'kube/im g@s']) {
    test(`refused: ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseSnapshotHandle(text), (err: unknown) => err instanceof SnapshotError && err.kind === 'final' && err.message.includes('allowed: pool/image@snapshot'));
    });
  }
});

describe('snapshot records', () => {
  test('a new snapshot: the source PV\'s cluster and pool, its image named from the content, the class\'s credentials when given', () => {
    const record = snapshotRecordFor('0b5f3c4e-1111-2222-3333-444455556666', volume, { adminId: 'snap', adminSecret: { name: 'snap-key', namespace: 'ceph' } });
    const location = readSnapshotRecord(record);
    assert.deepEqual(location.target, {
      monitors: '10.0.0.1:6789', pool: 'kube', radosNamespace: '', image: 'snapshot-0b5f3c4e-1111-2222-3333-444455556666',
      adminId: 'snap', adminSecret: { name: 'snap-key', namespace: 'ceph' },
    });
    assert.equal(location.origin, 'created');
    assert.equal(location.sourceImage, 'pvc-1');
    assert.equal(location.snapshot, 'snapshot');
  });
  test('a class naming another pool than the source\'s is refused: a snapshot is made where its volume is', () => {
    assert.throws(() => snapshotRecordFor('x', volume, { pool: 'other' }), /parameter "pool": "other" differs from the source volume's "kube"/);
  });
  test('imports need the class\'s monitors and credentials', () => {
    assert.throws(() => importRecordFor('kube/img@s', {}), /"monitors", "adminId", "adminSecretName": missing/);
    const location = readSnapshotRecord(importRecordFor('kube/img@s', { monitors: '10.0.0.1', adminId: 'admin', adminSecret: { name: 'a', namespace: 'n' } }));
    assert.equal(location.origin, 'imported');
    assert.equal(location.target.image, 'img');
  });
  test('a record edited to name an image that is not a snapshot image of ours is refused, never removed', () => {
    const record = { ...snapshotRecordFor('x', volume, {}), 'rbd.provisioner.ceph.io/image': 'pvc-1' };
    assert.throws(() => readSnapshotRecord(record), /is not a snapshot image of ours; refusing to touch it/);
  });
});

test('clone format 2 from Mimic on, by name', () => {
  for (const release of ['mimic', 'nautilus', 'reef', 'squid']) assert.equal(releaseAtLeastMimic(release), true, release);
  for (const release of ['luminous', 'jewel', '', undefined]) assert.equal(releaseAtLeastMimic(release), false, String(release));
});

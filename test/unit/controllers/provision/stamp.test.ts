import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { stampVolume } from '../../../../src/controllers/provision/stamp.js';
import { PROVISIONER, makeClaim, makeClass } from '../../fakes.js';

const F = 'external-provisioner.volume.kubernetes.io/finalizer';

function built(extra: Partial<NonNullable<V1PersistentVolume['spec']>> = {}): V1PersistentVolume {
  return {
    metadata: { annotations: { 'example.com/image': 'img' }, resourceVersion: '5' },
    spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], volumeMode: 'Block', csi: { driver: 'rbd.csi.ceph.com', volumeHandle: 'img' }, ...extra },
  };
}

describe('stampVolume', () => {
  const claim = makeClaim('data', { uid: 'u-1', namespace: 'apps' });

  test('stamps name, claimRef, class, policy, provisioned-by and the finalizer; keeps the provisioner fields', () => {
    const source = built();
    const pv = stampVolume(source, { pvName: 'pvc-u-1', claim, storageClass: makeClass('fast', { mountOptions: ['discard'] }), provisionerName: PROVISIONER });
    assert.equal(pv.metadata?.name, 'pvc-u-1');
    assert.equal(pv.apiVersion, 'v1');
    assert.equal(pv.kind, 'PersistentVolume');
    assert.deepEqual(pv.spec?.claimRef, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'apps', name: 'data', uid: 'u-1', resourceVersion: '7' });
    assert.equal(pv.spec?.storageClassName, 'fast');
    assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Delete');
    assert.deepEqual(pv.spec?.mountOptions, ['discard']);
    assert.deepEqual(pv.metadata?.annotations, { 'example.com/image': 'img', 'pv.kubernetes.io/provisioned-by': PROVISIONER });
    assert.deepEqual(pv.metadata?.finalizers, [F]);
    assert.equal(pv.metadata?.resourceVersion, undefined);
    assert.equal(pv.spec?.volumeMode, 'Block');
    assert.equal(pv.spec?.csi?.volumeHandle, 'img');
    assert.equal(source.metadata?.name, undefined, 'the provisioner object is not modified');
  });

  const policies: { name: string; reclaimPolicy?: string; wantPolicy: string; wantFinalizers: string[] | undefined }[] = [
    { name: 'default policy is Delete with finalizer', wantPolicy: 'Delete', wantFinalizers: [F] },
    { name: 'Retain: no finalizer', reclaimPolicy: 'Retain', wantPolicy: 'Retain', wantFinalizers: undefined },
    { name: 'explicit Delete', reclaimPolicy: 'Delete', wantPolicy: 'Delete', wantFinalizers: [F] },
  ];
  for (const row of policies) {
    test(row.name, () => {
      const pv = stampVolume(built(), { pvName: 'pvc-u-1', claim, storageClass: makeClass('fast', row.reclaimPolicy === undefined ? {} : { reclaimPolicy: row.reclaimPolicy }), provisionerName: PROVISIONER });
      assert.equal(pv.spec?.persistentVolumeReclaimPolicy, row.wantPolicy);
      assert.deepEqual(pv.metadata?.finalizers, row.wantFinalizers);
    });
  }

  test("the provisioner's mountOptions win over the class's", () => {
    const pv = stampVolume(built({ mountOptions: ['noatime'] }), { pvName: 'p', claim, storageClass: makeClass('fast', { mountOptions: ['discard'] }), provisionerName: PROVISIONER });
    assert.deepEqual(pv.spec?.mountOptions, ['noatime']);
  });

  test('no mountOptions anywhere: the field is absent', () => {
    const pv = stampVolume(built(), { pvName: 'p', claim, storageClass: makeClass('fast'), provisionerName: PROVISIONER });
    assert.equal('mountOptions' in (pv.spec ?? {}), false);
  });

  test("the class's allowedTopologies become the PV's node affinity: terms ORed, expressions ANDed", () => {
    const allowedTopologies = [
      { matchLabelExpressions: [{ key: 'topology.kubernetes.io/zone', values: ['a', 'b'] }, { key: 'ceph-access', values: ['yes'] }] },
      { matchLabelExpressions: [{ key: 'kubernetes.io/hostname', values: ['n1'] }] },
    ];
    const pv = stampVolume(built(), { pvName: 'p', claim, storageClass: makeClass('fast', { allowedTopologies }), provisionerName: PROVISIONER });
    assert.deepEqual(pv.spec?.nodeAffinity, {
      required: {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a', 'b'] }, { key: 'ceph-access', operator: 'In', values: ['yes'] }] },
          { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] },
        ],
      },
    });
  });

  test('no allowedTopologies (or only empty terms): no node affinity; a node affinity the provisioner set wins', () => {
    for (const allowedTopologies of [undefined, [], [{ matchLabelExpressions: [] }]]) {
      const pv = stampVolume(built(), { pvName: 'p', claim, storageClass: makeClass('fast', allowedTopologies === undefined ? {} : { allowedTopologies }), provisionerName: PROVISIONER });
      assert.equal('nodeAffinity' in (pv.spec ?? {}), false, JSON.stringify(allowedTopologies));
    }
    const own = { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'k', operator: 'In', values: ['v'] }] }] } };
    const allowedTopologies = [{ matchLabelExpressions: [{ key: 'z', values: ['a'] }] }];
    const pv = stampVolume(built({ nodeAffinity: own }), { pvName: 'p', claim, storageClass: makeClass('fast', { allowedTopologies }), provisionerName: PROVISIONER });
    assert.deepEqual(pv.spec?.nodeAffinity, own);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { type ClaimDecision, decideClaim, decideVolume } from '../../../../src/controllers/provision/decisions.js';
import { PROVISIONER, makeClaim, makeClass, makeVolume } from '../../fakes.js';

const classes: Record<string, V1StorageClass> = {
  fast: makeClass('fast'),
  late: makeClass('late', { volumeBindingMode: 'WaitForFirstConsumer' }),
  other: makeClass('other', { provisioner: 'kubernetes.io/rbd' }),
};

function decide(claim: V1PersistentVolumeClaim, existingVolumes: string[] = []): ClaimDecision {
  return decideClaim(claim, {
    provisionerName: PROVISIONER,
    storageClass: (name) => classes[name],
    volumeExists: (name) => existingVolumes.includes(name),
  });
}

function withSpec(claim: V1PersistentVolumeClaim, spec: Partial<NonNullable<V1PersistentVolumeClaim['spec']>>): V1PersistentVolumeClaim {
  return { ...claim, spec: { ...claim.spec, ...spec } };
}

describe('decideClaim (RELIABILITY #19: no image for claims that are not ours)', () => {
  const ga = { 'volume.kubernetes.io/storage-provisioner': PROVISIONER };
  const rows: { name: string; claim: V1PersistentVolumeClaim; volumes?: string[]; action: ClaimDecision['action']; fragment?: string }[] = [
    { name: 'ours via the GA annotation', claim: makeClaim('a'), action: 'provision' },
    { name: 'ours via the beta annotation', claim: makeClaim('a', { annotations: { 'volume.beta.kubernetes.io/storage-provisioner': PROVISIONER } }), action: 'provision' },
    { name: 'another provisioner', claim: makeClaim('a', { annotations: { 'volume.kubernetes.io/storage-provisioner': 'other.example.com' } }), action: 'skip', fragment: 'not for this provisioner' },
    { name: 'GA names another provisioner, beta names us: GA wins', claim: makeClaim('a', { annotations: { 'volume.kubernetes.io/storage-provisioner': 'x', 'volume.beta.kubernetes.io/storage-provisioner': PROVISIONER } }), action: 'skip', fragment: 'not for this provisioner' },
    { name: 'no annotation', claim: makeClaim('a', { annotations: {} }), action: 'skip', fragment: 'not for this provisioner' },
    { name: 'spec.volumeName already set', claim: withSpec(makeClaim('a'), { volumeName: 'pv-static' }), action: 'skip', fragment: 'already names a volume' },
    { name: 'being deleted', claim: { ...makeClaim('a'), metadata: { ...makeClaim('a').metadata, deletionTimestamp: new Date(0) } }, action: 'skip', fragment: 'being deleted' },
    { name: 'its PV exists already', claim: makeClaim('a', { uid: 'u1' }), volumes: ['pvc-u1'], action: 'skip', fragment: 'PV already exists' },
    { name: 'class names another provisioner', claim: makeClaim('a', { className: 'other' }), action: 'skip', fragment: 'another provisioner' },
    { name: 'WaitForFirstConsumer without selected-node', claim: makeClaim('a', { className: 'late' }), action: 'skip', fragment: 'WaitForFirstConsumer' },
    { name: 'WaitForFirstConsumer with an empty selected-node', claim: makeClaim('a', { className: 'late', annotations: { ...ga, 'volume.kubernetes.io/selected-node': '' } }), action: 'skip', fragment: 'WaitForFirstConsumer' },
    { name: 'WaitForFirstConsumer with selected-node', claim: makeClaim('a', { className: 'late', annotations: { ...ga, 'volume.kubernetes.io/selected-node': 'node-1' } }), action: 'provision' },
    { name: 'no class at all', claim: withSpec(makeClaim('a'), { storageClassName: '' }), action: 'skip', fragment: 'names no StorageClass' },
    { name: 'class from the beta annotation', claim: { ...withSpec(makeClaim('a'), { storageClassName: undefined }), metadata: { ...makeClaim('a').metadata, annotations: { ...ga, 'volume.beta.kubernetes.io/storage-class': 'fast' } } }, action: 'provision' },
    { name: 'class missing from the cache', claim: makeClaim('a', { className: 'gone' }), action: 'fail', fragment: '"gone" not found' },
    { name: 'selector', claim: withSpec(makeClaim('a'), { selector: { matchLabels: { a: 'b' } } }), action: 'fail', fragment: 'selector is not supported' },
    { name: 'data source: a claim', claim: withSpec(makeClaim('a'), { dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }), action: 'provision' },
    {
      name: 'data source: a VolumeSnapshot', action: 'provision',
      claim: withSpec(makeClaim('a'), { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 'snap' } }),
    },
    {
      name: 'data source: another kind names the field and what is allowed', action: 'fail', fragment: 'spec.dataSource": kind "ConfigMap" of apiGroup ""',
      claim: withSpec(makeClaim('a'), { dataSource: { kind: 'ConfigMap', name: 'x' } }),
    },
    {
      name: 'data source: a VolumeSnapshot without its apiGroup', action: 'fail', fragment: 'allowed: kind PersistentVolumeClaim',
      claim: withSpec(makeClaim('a'), { dataSource: { kind: 'VolumeSnapshot', name: 'x' } }),
    },
    {
      name: 'data source: another namespace', action: 'fail', fragment: 'spec.dataSourceRef.namespace',
      claim: withSpec(makeClaim('a'), { dataSourceRef: { kind: 'PersistentVolumeClaim', name: 'x', namespace: 'elsewhere' } }),
    },
    { name: 'no uid', claim: makeClaim('a', { uid: '' }), action: 'skip', fragment: 'no uid' },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const decision = decide(row.claim, row.volumes);
      assert.equal(decision.action, row.action, JSON.stringify(decision));
      if (row.fragment !== undefined) {
        const text = decision.action === 'fail' ? decision.message : decision.action === 'skip' ? decision.reason : '';
        assert.ok(text.includes(row.fragment), `${text} should mention ${row.fragment}`);
      }
    });
  }

  test('a provision decision names pvc-<uid>, the class and the selected node', () => {
    const decision = decide(makeClaim('a', { uid: 'abc', className: 'late', annotations: { ...ga, 'volume.kubernetes.io/selected-node': 'node-7' } }));
    assert.equal(decision.action, 'provision');
    if (decision.action !== 'provision') return;
    assert.equal(decision.pvName, 'pvc-abc');
    assert.equal(decision.storageClass.metadata?.name, 'late');
    assert.equal(decision.selectedNode, 'node-7');
  });

  test('final input errors retry slowly', () => {
    const decision = decide(makeClaim('a', { className: 'gone' }));
    assert.ok(decision.action === 'fail' && decision.retry === 'slow');
  });
});

describe('decideVolume', () => {
  const F = 'external-provisioner.volume.kubernetes.io/finalizer';
  const rows: { name: string; volume: ReturnType<typeof makeVolume>; action: string }[] = [
    { name: 'not ours', volume: makeVolume('v', { provisionedBy: 'other' }), action: 'skip' },
    { name: 'Released + Delete', volume: makeVolume('v', { phase: 'Released' }), action: 'delete' },
    { name: 'Released + Delete without our finalizer', volume: makeVolume('v', { phase: 'Released', finalizers: [] }), action: 'delete' },
    { name: 'Released + Retain', volume: makeVolume('v', { phase: 'Released', policy: 'Retain', finalizers: [] }), action: 'skip' },
    { name: 'Retain with our finalizer (policy switched)', volume: makeVolume('v', { phase: 'Bound', policy: 'Retain' }), action: 'remove-finalizer' },
    { name: 'deleted, Retain, finalizer: drop the finalizer, keep the image', volume: makeVolume('v', { phase: 'Released', policy: 'Retain', deleting: true }), action: 'remove-finalizer' },
    { name: 'Recycle with our finalizer', volume: makeVolume('v', { phase: 'Bound', policy: 'Recycle' }), action: 'remove-finalizer' },
    { name: 'Bound + deleting: pv-protection holds it', volume: makeVolume('v', { phase: 'Bound', deleting: true }), action: 'skip' },
    { name: 'deleting + Released + finalizer', volume: makeVolume('v', { phase: 'Released', deleting: true }), action: 'delete' },
    { name: 'deleting + Failed + finalizer', volume: makeVolume('v', { phase: 'Failed', deleting: true }), action: 'delete' },
    { name: 'Failed without deletion', volume: makeVolume('v', { phase: 'Failed' }), action: 'skip' },
    { name: 'deleting without our finalizer (we finished)', volume: makeVolume('v', { phase: 'Released', deleting: true, finalizers: [] }), action: 'skip' },
    { name: 'Bound + Delete without finalizer', volume: makeVolume('v', { phase: 'Bound', finalizers: ['kubernetes.io/pv-protection'] }), action: 'add-finalizer' },
    { name: 'Bound + Delete with finalizer', volume: makeVolume('v', { phase: 'Bound', finalizers: [F] }), action: 'skip' },
    { name: 'Available', volume: makeVolume('v', { phase: 'Available' }), action: 'skip' },
  ];
  for (const row of rows) {
    test(row.name, () => assert.equal(decideVolume(row.volume, PROVISIONER).action, row.action));
  }

  test('a missing reclaim policy is never taken for Delete', () => {
    const volume = makeVolume('v', { phase: 'Released', finalizers: [] });
    delete volume.spec!.persistentVolumeReclaimPolicy;
    assert.equal(decideVolume(volume, PROVISIONER).action, 'skip');
  });
});

// What the RBD side tells the ceph-csi config loop: a class's entry is its PVs' clusterID with its monitors and
// namespace; a PV's entry is what it carries.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { rbdClusterEntries } from '../../../src/rbd/cluster-entries.js';
import { parseClassParameters } from '../../../src/rbd/parameters.js';
import { buildVolume } from '../../../src/rbd/volume.js';

const BASE: Record<string, string> = { monitors: '10.0.0.2:6789, [v2:10.0.0.1:3300,v1:10.0.0.1:6789]', adminSecretName: 'a', userSecretName: 'u' };
const claim: V1PersistentVolumeClaim = {
  metadata: { name: 'c', namespace: 'default', uid: 'u1' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
};

describe('rbdClusterEntries', () => {
  test('a class: its clusterID, one monitor per item as written, its namespace; the same as its PVs say', () => {
    const cases: Record<string, string>[] = [{}, { radosNamespace: 'team' }, { clusterID: 'my-cluster' }];
    for (const extra of cases) {
      const parameters = { ...BASE, ...extra };
      const entry = rbdClusterEntries.forClass(parameters);
      const params = parseClassParameters(parameters);
      assert.deepEqual(entry, { clusterID: params.clusterID, monitors: ['10.0.0.2:6789', '[v2:10.0.0.1:3300,v1:10.0.0.1:6789]'], radosNamespace: params.radosNamespace });
      const pv = buildVolume({ params, claim, imageName: 'pvc-u1', imageSizeBytes: 2 ** 30 });
      assert.deepEqual(rbdClusterEntries.forVolume(pv), entry);
    }
  });
  test('in-tree rbd classes and PVs need no entry; a bad class throws', () => {
    const parameters = { ...BASE, monitors: '10.0.0.1:6789', volumeSource: 'rbd' };
    assert.equal(rbdClusterEntries.forClass(parameters), undefined);
    assert.equal(rbdClusterEntries.forVolume(buildVolume({ params: parseClassParameters(parameters), claim, imageName: 'i', imageSizeBytes: 2 ** 30 })), undefined);
    assert.throws(() => rbdClusterEntries.forClass({ monitors: '' }), /parameter "monitors"/);
  });
  test('a PV without our monitors annotation or with a bad clusterID gives none', () => {
    assert.equal(rbdClusterEntries.forVolume({ spec: { csi: { driver: 'd', volumeHandle: 'h', volumeAttributes: { clusterID: 'c' } } } }), undefined);
    assert.equal(rbdClusterEntries.forVolume({
      metadata: { annotations: { 'rbd.provisioner.ceph.io/monitors': 'm' } },
      spec: { csi: { driver: 'd', volumeHandle: 'h', volumeAttributes: { clusterID: 'bad id!' } } },
    }), undefined);
  });
});

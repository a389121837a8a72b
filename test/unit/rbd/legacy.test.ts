// PVs of the retired external-storage rbd-provisioner, in its exact shape: reading them, their delete target, and
// the csi PV `migrate` replaces them with (what our provisioner builds for such a volume).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import {
  claimTemplateOf, convertVolume, isLegacyVolume, LEGACY_PROVISIONER_NAME, LegacyAdminError, legacyAdminOf, legacyDeleteTarget,
  MIGRATION_ANNOTATION, migratedVolumeName, readLegacyVolume, readMigrationRecord,
} from '../../../src/rbd/legacy.js';
import { ANNOTATIONS, buildVolume, readDeleteTarget, VolumeRecordError } from '../../../src/rbd/volume.js';
import { parseClassParameters } from '../../../src/rbd/parameters.js';
import { LEGACY_IMAGE as IMAGE, legacyPv } from '../fakes.js';

const legacyClass: V1StorageClass = {
  metadata: { name: 'rbd' },
  provisioner: 'ceph.com/rbd',
  parameters: { monitors: '10.0.0.1:6789,10.0.0.2:6789', AdminId: 'admin', adminSecretName: 'ceph-secret', adminSecretNamespace: 'kube-system', pool: 'kube', userId: 'kube', userSecretName: 'ceph-secret-user' },
};

const claim: V1PersistentVolumeClaim = {
  metadata: {
    name: 'data', namespace: 'apps', uid: 'claim-uid-1', labels: { app: 'db' },
    annotations: { 'pv.kubernetes.io/bind-completed': 'yes', 'volume.beta.kubernetes.io/storage-provisioner': 'ceph.com/rbd', team: 'a' },
  },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'rbd', volumeName: 'pvc-6f0e11e9-8f9e-11e9-a1b2-0242ac110002', volumeMode: 'Filesystem' },
};

describe('legacy PVs: reading', () => {
  test('the old provisioner\'s exact shape reads as its placement, user and claim', () => {
    const legacy = readLegacyVolume(legacyPv());
    assert.deepEqual({ ...legacy }, {
      name: 'pvc-6f0e11e9-8f9e-11e9-a1b2-0242ac110002', uid: 'old-pv-uid', monitors: '10.0.0.1:6789,10.0.0.2:6789', pool: 'kube', image: IMAGE,
      userId: 'kube', userSecret: { name: 'ceph-secret-user', namespace: 'apps' }, fsType: 'ext4', storageClassName: 'rbd', reclaimPolicy: 'Delete',
      phase: 'Bound', claim: { namespace: 'apps', name: 'data', uid: 'claim-uid-1' },
    });
    assert.equal(isLegacyVolume(legacyPv(), [LEGACY_PROVISIONER_NAME]), true);
    assert.equal(isLegacyVolume(legacyPv(), ['other.io/rbd']), false);
  });

  const broken: Array<[string, (pv: V1PersistentVolume) => void, string]> = [
    ['no spec.rbd', (pv) => { delete pv.spec!.rbd; }, 'spec.rbd'],
    ['no monitors', (pv) => { pv.spec!.rbd!.monitors = []; }, 'spec.rbd.monitors'],
    ['a bad image name', (pv) => { pv.spec!.rbd!.image = 'a/b'; }, 'spec.rbd.image'],
    ['a bad user', (pv) => { pv.spec!.rbd!.user = 'client kube'; }, 'spec.rbd.user'],
  ];
  for (const [name, breakIt, field] of broken) {
    test(`${name}: VolumeRecordError naming ${field}`, () => {
      const pv = legacyPv();
      breakIt(pv);
      assert.throws(() => readLegacyVolume(pv), (err: unknown) => err instanceof VolumeRecordError && err.field === field);
    });
  }
});

describe('legacy PVs: what their delete needs', () => {
  test('admin credentials from the class (keys matched case-insensitively, as the old provisioner did)', () => {
    assert.deepEqual(legacyDeleteTarget(legacyPv(), legacyClass), {
      monitors: '10.0.0.1:6789,10.0.0.2:6789', pool: 'kube', radosNamespace: '', image: IMAGE, adminId: 'admin',
      adminSecret: { name: 'ceph-secret', namespace: 'kube-system' },
    });
  });

  test('the old provisioner\'s defaults: adminId "admin", adminSecretNamespace "default"', () => {
    const admin = legacyAdminOf(legacyPv(), { ...legacyClass, parameters: { monitors: 'm', adminSecretName: 's' } });
    assert.deepEqual(admin, { adminId: 'admin', adminSecret: { name: 's', namespace: 'default' }, from: 'class' });
  });

  test('admin credentials written on the PV win, and need no class', () => {
    const pv = legacyPv();
    pv.metadata!.annotations = { ...pv.metadata!.annotations, [ANNOTATIONS.adminId]: 'ops', [ANNOTATIONS.adminSecretName]: 'ops-key', [ANNOTATIONS.adminSecretNamespace]: 'ceph' };
    assert.deepEqual(legacyAdminOf(pv, undefined), { adminId: 'ops', adminSecret: { name: 'ops-key', namespace: 'ceph' }, from: 'pv' });
  });

  test('the class gone: an error naming the class, what is missing, and each way to fix it', () => {
    assert.throws(() => legacyAdminOf(legacyPv(), undefined), (err: unknown) => {
      assert.ok(err instanceof LegacyAdminError);
      for (const part of ['StorageClass "rbd"', 'no longer exists', 'admin id and admin Secret', 'recreate StorageClass "rbd"', `kubectl annotate pv pvc-6f0e11e9-8f9e-11e9-a1b2-0242ac110002 ${ANNOTATIONS.adminId}=`, 'rbd-provisioner migrate']) {
        assert.ok(err.message.includes(part), `${part} in ${err.message}`);
      }
      return true;
    });
  });

  test('a class without adminSecretName: an error naming the parameter', () => {
    assert.throws(() => legacyAdminOf(legacyPv(), { ...legacyClass, parameters: { monitors: 'm' } }), /has no parameter "adminSecretName"/);
  });
});

describe('legacy PVs: conversion to csi', () => {
  const admin = { adminId: 'admin', adminSecret: { name: 'ceph-secret', namespace: 'kube-system' }, from: 'class' as const };
  const input = {
    pv: legacyPv(), claim, admin, imageSizeBytes: 2 ** 30, imageFeatures: ['layering', 'striping'],
    nodeStageSecret: { name: 'rbd-node-apps-ceph-secret-user-12345678', namespace: 'rbd-system' }, provisionerName: 'rbd.provisioner.ceph.io',
  };

  test('the csi PV is exactly what our provisioner builds for that image, pre-bound to the claim by name, Retain for now', () => {
    const { volume, record } = convertVolume(input);
    const params = parseClassParameters({
      monitors: '10.0.0.1:6789,10.0.0.2:6789', pool: 'kube', adminSecretName: 'ceph-secret', adminSecretNamespace: 'kube-system',
      userId: 'kube', userSecretName: 'ceph-secret-user', userSecretNamespace: 'apps', imageFeatures: 'layering',
    });
    const ours = buildVolume({ params, claim, imageName: IMAGE, imageSizeBytes: 2 ** 30, nodeStageSecret: input.nodeStageSecret });
    assert.deepEqual(volume.spec?.csi, ours.spec?.csi);
    assert.equal(volume.spec?.csi?.volumeAttributes?.['clusterID'], params.clusterID);
    assert.equal(volume.spec?.csi?.volumeHandle, IMAGE);
    assert.equal(volume.spec?.rbd, undefined);
    assert.deepEqual(volume.spec?.claimRef, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'apps', name: 'data' });
    assert.equal(volume.spec?.persistentVolumeReclaimPolicy, 'Retain');
    assert.equal(volume.spec?.storageClassName, 'rbd');
    assert.equal(volume.spec?.capacity?.['storage'], '1Gi');
    assert.equal(volume.metadata?.name, migratedVolumeName(legacyPv().metadata!.name!));
    assert.equal(volume.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'], 'rbd.provisioner.ceph.io');
    // What our delete reads back: the same image, pool and admin Secret, checked against the csi source.
    assert.deepEqual(readDeleteTarget(volume), legacyDeleteTarget(legacyPv(), legacyClass));
    assert.deepEqual(readMigrationRecord(volume), record);
    assert.equal(record.reclaimPolicy, 'Delete');
    assert.deepEqual(record.claim, { namespace: 'apps', name: 'data', uid: 'claim-uid-1' });
    assert.ok(!JSON.stringify(volume).includes('AQ'), 'no key material');
  });

  test('a recorded migration keeps its record (the old PV says Retain by then)', () => {
    const first = convertVolume(input).record;
    const { record } = convertVolume({ ...input, pv: legacyPv({ policy: 'Retain' }), record: first });
    assert.equal(record.reclaimPolicy, 'Delete');
  });

  test('--cluster-id wins over the derived one', () => {
    assert.equal(convertVolume({ ...input, clusterID: 'ceph-prod' }).volume.spec?.csi?.volumeAttributes?.['clusterID'], 'ceph-prod');
  });

  test('the recreated claim: same name, labels, request and class; binding annotations dropped; pre-bound to the new PV', () => {
    assert.deepEqual(claimTemplateOf(claim, 'new-pv'), {
      apiVersion: 'v1', kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: 'apps', labels: { app: 'db' }, annotations: { team: 'a' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'rbd', volumeMode: 'Filesystem', volumeName: 'new-pv' },
    });
  });

  test('a PV without a user Secret cannot become csi: the error names spec.rbd.secretRef', () => {
    const pv = legacyPv();
    delete pv.spec!.rbd!.secretRef;
    assert.throws(() => convertVolume({ ...input, pv }), (err: unknown) => err instanceof VolumeRecordError && err.field === 'spec.rbd.secretRef');
  });

  test('a record edited into something unreadable is refused, naming the annotation', () => {
    const pv = legacyPv();
    pv.metadata!.annotations![MIGRATION_ANNOTATION] = '{"oldPv":1}';
    assert.throws(() => readMigrationRecord(pv), (err: unknown) => err instanceof VolumeRecordError && err.field.includes(MIGRATION_ANNOTATION));
  });
});

// Claims on real Ceph and a real control plane, served by the controller process started the way users start it.
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OWNER_KEYS } from '../../src/rbd/provisioner.js';
import { GiB, setupE2e, type E2e } from '../support/e2e.js';

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('prov');
  await e2e.startController({ extraArgs: ['--log-level=debug'] });
});

after(async () => {
  await e2e?.cleanup();
});

describe('provisioning', () => {
  test('an Immediate 1Gi claim is Bound; image and PV are as specified', async (t) => {
    const storageClass = await e2e.createClass({ ...e2e.baseParameters(), imageFeatures: 'layering,exclusive-lock' }, { mountOptions: ['discard'] });
    const started = performance.now();
    const claim = await e2e.createClaim(storageClass);
    const pv = await e2e.waitBound(claim.metadata!.name!);
    t.diagnostic(`claim Bound ${(performance.now() - started).toFixed(0)} ms after creation`);

    const uid = claim.metadata!.uid!;
    const pvName = `pvc-${uid}`;
    assert.equal(pv.metadata?.name, pvName);
    assert.equal(pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'], e2e.provisionerName);
    assert.deepEqual(pv.metadata?.finalizers?.filter((f) => f.startsWith('external-provisioner')), ['external-provisioner.volume.kubernetes.io/finalizer']);
    assert.equal(pv.spec?.claimRef?.uid, uid);
    assert.equal(pv.spec?.claimRef?.name, claim.metadata!.name);
    assert.equal(pv.spec?.claimRef?.namespace, e2e.namespace);
    assert.equal(pv.spec?.storageClassName, storageClass);
    assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Delete');
    assert.deepEqual(pv.spec?.mountOptions, ['discard']);
    assert.equal(pv.spec?.volumeMode, 'Filesystem');
    assert.deepEqual(pv.spec?.accessModes, ['ReadWriteOnce']);
    assert.equal(pv.spec?.capacity?.['storage'], '1Gi');
    assert.equal(pv.spec?.rbd, undefined);
    const csi = pv.spec?.csi;
    assert.equal(csi?.driver, 'rbd.csi.ceph.com');
    assert.equal(csi?.volumeHandle, pvName);
    assert.equal(csi?.fsType, 'ext4');
    assert.deepEqual({ ...csi?.nodeStageSecretRef }, { name: e2e.adminSecret, namespace: e2e.namespace });
    assert.equal(csi?.volumeAttributes?.['pool'], e2e.poolName);
    assert.equal(csi?.volumeAttributes?.['staticVolume'], 'true');
    assert.equal(csi?.volumeAttributes?.['imageFeatures'], 'layering,exclusive-lock');
    assert.match(csi?.volumeAttributes?.['clusterID'] ?? '', /^rbd-[0-9a-f]{32}$/);
    // What delete needs is on the PV, and no key is.
    assert.equal(pv.metadata?.annotations?.['rbd.provisioner.ceph.io/pool'], e2e.poolName);
    assert.equal(pv.metadata?.annotations?.['rbd.provisioner.ceph.io/image'], pvName);
    assert.ok(!JSON.stringify(pv).includes(e2e.ceph.adminKey), 'no key on the PV');

    await e2e.pool.withImage(pvName, async (image) => {
      assert.equal((await image.stat()).size, GiB);
      assert.deepEqual(await image.features(), ['layering', 'exclusive-lock']);
      const meta = await image.listMetadata();
      assert.equal(meta[OWNER_KEYS.claimUid], uid);
      assert.equal(meta[OWNER_KEYS.claimName], claim.metadata!.name);
      assert.equal(meta[OWNER_KEYS.claimNamespace], e2e.namespace);
      assert.equal(meta[OWNER_KEYS.pvName], pvName);
      assert.equal(meta[OWNER_KEYS.provisioner], e2e.provisionerName);
    }, { readOnly: true });

    const reasons = (await e2e.events(claim.metadata!.name!)).map((e) => e.reason);
    assert.ok(reasons.includes('Provisioning'), reasons.join(','));
    assert.ok(reasons.includes('ProvisioningSucceeded'), reasons.join(','));
  });

  test('a StorageClass written for the retired external-storage rbd-provisioner works with only its provisioner changed', async () => {
    const storageClass = await e2e.createClass({
      monitors: e2e.ceph.monHost,
      adminId: 'admin',
      adminSecretName: e2e.adminSecret,
      adminSecretNamespace: e2e.namespace,
      pool: e2e.poolName,
      userId: 'admin',
      userSecretName: e2e.adminSecret,
      imageFormat: '2',
      imageFeatures: 'layering',
    });
    const claim = await e2e.createClaim(storageClass, { size: '100Mi' });
    const pv = await e2e.waitBound(claim.metadata!.name!);
    assert.equal(pv.spec?.capacity?.['storage'], '100Mi');
    // userSecretNamespace defaults to the claim's namespace, as it did there.
    assert.deepEqual({ ...pv.spec?.csi?.nodeStageSecretRef }, { name: e2e.adminSecret, namespace: e2e.namespace });
    assert.ok((await e2e.images()).includes(pv.metadata!.name!));
  });

  test('Delete policy: deleting the claim removes image and PV', async (t) => {
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const claim = await e2e.createClaim(storageClass);
    const pv = await e2e.waitBound(claim.metadata!.name!);
    const pvName = pv.metadata!.name!;
    const started = performance.now();
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
    await e2e.waitGone(`PV ${pvName}`, () => e2e.readVolume(pvName));
    await e2e.waitGone(`image ${pvName}`, async () => (await e2e.images()).includes(pvName));
    t.diagnostic(`image and PV gone ${(performance.now() - started).toFixed(0)} ms after the claim was deleted`);
  });

  test('Retain policy: deleting the claim keeps image and PV (Released)', async () => {
    const storageClass = await e2e.createClass(e2e.baseParameters(), { reclaimPolicy: 'Retain' });
    const claim = await e2e.createClaim(storageClass);
    const pv = await e2e.waitBound(claim.metadata!.name!);
    const pvName = pv.metadata!.name!;
    assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Retain');
    assert.equal(pv.metadata?.finalizers?.includes('external-provisioner.volume.kubernetes.io/finalizer') ?? false, false);
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
    await e2e.waitGone('claim', () => e2e.readClaim(claim.metadata!.name!));
    const released = await waitPhase(pvName, 'Released');
    assert.equal(released.metadata?.deletionTimestamp, undefined);
    // Give the controller a few resync-free seconds to do something wrong.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.ok(await e2e.readVolume(pvName), 'PV kept');
    assert.ok((await e2e.images()).includes(pvName), 'image kept');
  });

  test('Block volume mode, and RWX allowed only for Block', async () => {
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const claim = await e2e.createClaim(storageClass, { volumeMode: 'Block', accessModes: ['ReadWriteMany'] });
    const pv = await e2e.waitBound(claim.metadata!.name!);
    assert.equal(pv.spec?.volumeMode, 'Block');
    assert.deepEqual(pv.spec?.accessModes, ['ReadWriteMany']);
    assert.equal(pv.spec?.csi?.fsType, undefined);
    const fsClaim = await e2e.createClaim(storageClass, { accessModes: ['ReadWriteMany'] });
    const event = await e2e.waitEvent(fsClaim.metadata!.name!, 'ProvisioningFailed');
    assert.match(event.message ?? '', /spec\.accessModes/);
    assert.match(event.message ?? '', /ReadWriteMany/);
  });

  test('WaitForFirstConsumer: nothing until selected-node is set, then Bound', async () => {
    const storageClass = await e2e.createClass(e2e.baseParameters(), { volumeBindingMode: 'WaitForFirstConsumer' });
    const claim = await e2e.createClaim(storageClass);
    const name = claim.metadata!.name!;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal((await e2e.readClaim(name))?.status?.phase, 'Pending');
    assert.ok(!(await e2e.images()).includes(`pvc-${claim.metadata!.uid}`), 'no image before a node is selected');
    // What the scheduler does once a pod using the claim is placed (no scheduler or kubelet runs here).
    await e2e.core.patchNamespacedPersistentVolumeClaim({
      name, namespace: e2e.namespace,
      body: { metadata: { annotations: { 'volume.kubernetes.io/selected-node': 'node-1' } } },
    }, mergePatch());
    await e2e.waitBound(name);
  });
});

async function waitPhase(pvName: string, phase: string) {
  for (let i = 0; i < 300; i++) {
    const pv = await e2e.readVolume(pvName);
    if (pv?.status?.phase === phase) return pv;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`PV ${pvName} never reached ${phase}: ${JSON.stringify((await e2e.readVolume(pvName))?.status)}`);
}

function mergePatch() {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}

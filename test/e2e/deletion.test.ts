// Deletion paths that must not depend on the StorageClass, and that must never lose an image in use.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { Cluster } from '../../src/ceph/index.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { freezeControllerManager } from '../support/faults.js';
import { waitFor } from '../support/kube.js';

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('del');
  await e2e.startController();
});

after(async () => {
  await e2e?.cleanup();
});

async function boundVolume(parameters = e2e.baseParameters()) {
  const storageClass = await e2e.createClass(parameters);
  const claim = await e2e.createClaim(storageClass);
  const pv = await e2e.waitBound(claim.metadata!.name!);
  return { storageClass, claimName: claim.metadata!.name!, pvName: pv.metadata!.name! };
}

const imageGone = (name: string) => async () => (await e2e.images()).includes(name);

describe('deletion', () => {
  test('the StorageClass deleted before the claim: cleanup still works', async () => {
    const { storageClass, claimName, pvName } = await boundVolume();
    await e2e.storage.deleteStorageClass({ name: storageClass });
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace: e2e.namespace });
    await e2e.waitGone(`PV ${pvName}`, () => e2e.readVolume(pvName));
    await e2e.waitGone(`image ${pvName}`, imageGone(pvName));
  });

  // The PV controller's view can lag the claim's: a PV may look Released while its claim is still there. Made
  // deterministic by freezing kube-controller-manager, so nothing corrects the phase we write.
  test('a PV that looks Released while its claim is still Bound keeps its image: the claim is read live (RELIABILITY 17)', async () => {
    const { claimName, pvName } = await boundVolume();
    const controller = e2e.controllers[0]!;
    const refusals = () => controller.output().split('\n').filter((line) => line.includes(pvName) && line.includes('the claim still exists; not deleting its volume')).length;
    const kcm = await freezeControllerManager(e2e.controlPlane);
    try {
      await e2e.core.patchPersistentVolumeStatus(
        { name: pvName, body: { status: { phase: 'Released' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await waitFor('the controller refusing to delete the volume of a live claim', async () => (refusals() > 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
      assert.equal((await e2e.readVolume(pvName))?.status?.phase, 'Released', 'still Released: nothing corrected it meanwhile');
    } finally {
      kcm.resume();
    }
    assert.ok((await e2e.images()).includes(pvName), 'the image is kept');
    assert.equal((await e2e.readClaim(claimName))?.status?.phase, 'Bound');
    await waitFor('the PV controller setting the phase back to Bound', async () => ((await e2e.readVolume(pvName))?.status?.phase === 'Bound' ? true : undefined), { timeoutMs: 120_000, intervalMs: 500 });
    assert.ok((await e2e.images()).includes(pvName), 'and still kept');
  });

  test('the PV deleted before the claim: held by our finalizer, then cleaned up', async () => {
    const { claimName, pvName } = await boundVolume();
    await e2e.core.deletePersistentVolume({ name: pvName });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const held = await e2e.readVolume(pvName);
    assert.ok(held?.metadata?.deletionTimestamp, 'PV is terminating but still there');
    assert.ok((await e2e.images()).includes(pvName), 'image kept while the claim exists');
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace: e2e.namespace });
    await e2e.waitGone(`PV ${pvName}`, () => e2e.readVolume(pvName));
    await e2e.waitGone(`image ${pvName}`, imageGone(pvName));
  });

  test('an image with a watcher: delete refused with VolumeFailedDelete, then done once the watcher closes', async () => {
    const { claimName, pvName } = await boundVolume();
    const other = await Cluster.connect({ monitors: e2e.ceph.monHost, user: 'admin', key: e2e.ceph.adminKey });
    const otherPool = await other.openPool(e2e.poolName);
    const mapped = await otherPool.openImage(pvName);
    try {
      await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace: e2e.namespace });
      const event = await e2e.waitEvent(pvName, 'VolumeFailedDelete');
      assert.equal(event.type, 'Warning');
      assert.match(event.message ?? '', /in use/);
      assert.ok(await e2e.readVolume(pvName), 'PV kept while the image is in use');
      assert.ok((await e2e.images()).includes(pvName), 'image kept while in use');
    } finally {
      await mapped.close();
      await otherPool.close();
      await other.close();
    }
    await e2e.waitGone(`PV ${pvName}`, () => e2e.readVolume(pvName), 90_000);
    await e2e.waitGone(`image ${pvName}`, imageGone(pvName));
  });

  test('an image already removed by hand counts as deleted', async () => {
    const { claimName, pvName } = await boundVolume();
    await e2e.pool.removeImage(pvName);
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace: e2e.namespace });
    await e2e.waitGone(`PV ${pvName}`, () => e2e.readVolume(pvName));
  });
});

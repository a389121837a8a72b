// Deletion paths that must not depend on the StorageClass, and that must never lose an image in use.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster } from '../../src/ceph/index.js';
import { setupE2e, type E2e } from '../support/e2e.js';

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

// Orphan collection against the real thing (RELIABILITY 2 and 16): an image whose claim went away while the
// controller was down is removed after a resync; the image of a Retain PV that an admin deleted is kept.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setupE2e, type E2e } from '../support/e2e.js';

let e2e: E2e;
// Orphan collection runs at start and once per resync period: short here, so one pass happens during the test.
const FAST_RESYNC = ['--resync-period=3s'];

before(async () => {
  e2e = await setupE2e('orph');
});

after(async () => {
  await e2e?.cleanup();
});

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('crash after the image is created, claim deleted while the controller is down: no image after a resync', async () => {
  const faulty = await e2e.startController({ env: { RBD_PROVISIONER_TEST_FAULT: 'crash-after-image-create' } });
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const claim = await e2e.createClaim(storageClass);
  const image = `pvc-${claim.metadata!.uid}`;
  await faulty.exited;
  assert.ok((await e2e.images()).includes(image), 'the image was created before the crash');
  await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
  await e2e.waitGone('claim', () => e2e.readClaim(claim.metadata!.name!));

  const restarted = await e2e.startController({ extraArgs: FAST_RESYNC });
  await e2e.waitGone(`orphaned image ${image}`, async () => (await e2e.images()).includes(image));
  assert.equal(await e2e.readVolume(image), undefined, 'no PV was made for the deleted claim');
  await restarted.stop();
});

test('a Retain PV deleted by an admin keeps its image through orphan collection', async () => {
  const controller = await e2e.startController({ extraArgs: [...FAST_RESYNC, '--log-level=debug'] });
  const storageClass = await e2e.createClass(e2e.baseParameters(), { reclaimPolicy: 'Retain' });
  const claim = await e2e.createClaim(storageClass);
  const pv = await e2e.waitBound(claim.metadata!.name!);
  const image = pv.metadata!.name!;
  await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
  await e2e.waitGone('claim', () => e2e.readClaim(claim.metadata!.name!));
  await e2e.core.deletePersistentVolume({ name: image });
  await e2e.waitGone(`PV ${image}`, () => e2e.readVolume(image));
  const passes = () => controller.output().split('orphan collection pass found nothing to collect').length - 1;
  const before = passes();
  // Several resync periods: orphan collection has had its chances, and passed the image over.
  await settle(10_000);
  assert.ok(passes() >= before + 2, `orphan collection ran ${passes() - before} times while we waited`);
  assert.ok((await e2e.images()).includes(image), 'the Retain image is kept');
  await controller.stop();
});

// Deletes under faults, against the real controller process (RELIABILITY 13, 15, 18, 22). Each ends with an audit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ceph } from '../support/ceph.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { metricSum, scrape, sleep } from '../support/faults.js';
import { waitFor } from '../support/kube.js';

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('fdel');
});

after(async () => {
  await e2e?.cleanup();
});

const imageGone = (name: string) => async () => (await e2e.images()).includes(name);
const deleteClaim = (name: string) => e2e.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: e2e.namespace });

test('an image with a snapshot: PV kept Released with VolumeFailedDelete naming snapshots; gone once the snapshot is removed (RELIABILITY 13)', async () => {
  const controller = await e2e.startController();
  try {
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const claim = await e2e.createClaim(storageClass);
    const pv = await e2e.waitBound(claim.metadata!.name!, 120_000);
    const image = pv.metadata!.name!;
    await e2e.pool.withImage(image, (img) => img.createSnapshot('kept-by-hand'));

    await deleteClaim(claim.metadata!.name!);
    const event = await e2e.waitEvent(image, 'VolumeFailedDelete', 120_000);
    assert.equal(event.type, 'Warning');
    assert.match(event.message ?? '', /snapshot/);
    await sleep(3000);
    const kept = await e2e.readVolume(image);
    assert.equal(kept?.status?.phase, 'Released', 'the PV is kept, Released');
    assert.ok((await e2e.images()).includes(image), 'the image is kept');
    const snapshots = await e2e.pool.withImage(image, (img) => img.listSnapshots(), { readOnly: true });
    assert.deepEqual(snapshots.map((s) => s.name), ['kept-by-hand'], 'the snapshot was not purged');

    await e2e.pool.withImage(image, (img) => img.removeSnapshot('kept-by-hand'));
    await e2e.waitGone(`PV ${image}`, () => e2e.readVolume(image), 180_000);
    await e2e.waitGone(`image ${image}`, imageGone(image), 60_000);
    await e2e.audit();
  } finally {
    await controller.stop();
  }
});

test('mass delete: 60 Bound claims deleted at once; every PV and image goes, each deleted once, no conflict storm (RELIABILITY 18)', async (t) => {
  const controller = await e2e.startController();
  try {
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const count = 60;
    const claims = await Promise.all(Array.from({ length: count }, () => e2e.createClaim(storageClass)));
    const volumes = [];
    for (const claim of claims) volumes.push(await e2e.waitBound(claim.metadata!.name!, 300_000));
    const names = volumes.map((pv) => pv.metadata!.name!);
    const before = metricSum(await scrape(controller), 'rbd_provisioner_delete_total', { result: 'success' });
    assert.equal(before, 0, 'no delete before the claims are deleted');

    await Promise.all(claims.map((c) => deleteClaim(c.metadata!.name!)));
    await waitFor(`all ${count} PVs gone`, async (observe) => {
      const left = (await e2e.core.listPersistentVolume()).items.filter((pv) => names.includes(pv.metadata!.name!));
      observe(left.map((pv) => `${pv.metadata!.name} ${pv.status?.phase}`));
      return left.length === 0 ? true : undefined;
    }, { timeoutMs: 300_000, intervalMs: 1000 });
    await waitFor(`all ${count} images gone`, async (observe) => {
      const left = (await e2e.images()).filter((image) => names.includes(image));
      observe(left);
      return left.length === 0 ? true : undefined;
    }, { timeoutMs: 180_000, intervalMs: 1000 });

    const metrics = await scrape(controller);
    assert.equal(metricSum(metrics, 'rbd_provisioner_delete_total', { result: 'success' }), count, 'each PV deleted exactly once');
    // A 409 as a status, or the word conflict: a bare /409/ also matched uids and timestamps that contain it.
    const conflicts = controller.output().split('\n').filter((line) => /\bconflict|"status":409\b|HTTP 409\b/i.test(line));
    t.diagnostic(`${conflicts.length} log lines about conflicts`);
    assert.ok(conflicts.length <= 3, `a conflict-retry storm: ${conflicts.length} lines, e.g.\n${conflicts.slice(0, 10).join('\n')}`);
    await e2e.audit({ timeoutMs: 180_000 });
  } finally {
    await controller.stop();
  }
});

// The crash is made deterministic by size: a thin image of a few hundred GiB without object-map
// takes seconds to purge (every possible data object is removed), so a SIGKILL sent the moment the controller logs
// the trash move lands before the purge can finish.
test('SIGKILL between the trash move and the purge: after a restart orphan collection finishes the purge (RELIABILITY 22)', async (t) => {
  const controller = await e2e.startController();
  // An admin user without manager caps: the manager refuses the purge, so it runs in the controller (as where the
  // rbd_support module is off) and the kill lands in the middle of it. Handed to the manager, the purge would be out
  // of the controller's hands within a millisecond of the trash move.
  const user = `no-mgr-${Date.now().toString(36)}`;
  const key = (await ceph(['auth', 'get-or-create-key', `client.${user}`, 'mon', 'profile rbd', 'osd', `profile rbd pool=${e2e.poolName}`])).trim();
  await e2e.core.createNamespacedSecret({ namespace: e2e.namespace, body: { metadata: { name: user }, type: 'kubernetes.io/rbd', stringData: { key } } });
  const storageClass = await e2e.createClass({ ...e2e.baseParameters(), adminId: user, adminSecretName: user });
  const claim = await e2e.createClaim(storageClass, { size: '256Gi' });
  const pv = await e2e.waitBound(claim.metadata!.name!, 120_000);
  const image = pv.metadata!.name!;

  await deleteClaim(claim.metadata!.name!);
  await waitFor(`the trash move of ${image} logged`, async () => {
    const moved = controller.output().split('\n').some((line) => line.includes('image moved to the trash') && line.includes(image));
    return moved ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 20 });
  controller.child.kill('SIGKILL');
  t.diagnostic(`the killed controller: ${/did not take the purge/.test(controller.output()) ? 'the manager refused the purge' : 'no answer from the manager yet'}`);
  await controller.exited;

  const trash = await e2e.pool.listTrash();
  assert.ok(trash.some((entry) => entry.name === image), `the image is left in the trash by the crash (trash: ${JSON.stringify(trash)})`);
  assert.ok(!(await e2e.images()).includes(image), 'the image is out of the pool');

  const restarted = await e2e.startController({ extraArgs: ['--resync-period=3s'] });
  try {
    await waitFor(`trash entry of ${image} purged`, async (observe) => {
      const left = (await e2e.pool.listTrash()).filter((entry) => entry.name === image);
      observe(left);
      return left.length === 0 ? true : undefined;
    }, { timeoutMs: 300_000, intervalMs: 1000 });
    await e2e.waitGone(`PV ${image}`, () => e2e.readVolume(image), 120_000);
    assert.doesNotMatch(controller.output(), /purge handed to the Ceph manager/, 'the manager did not take the purge from the killed controller');
    assert.match(restarted.output(), /finished an interrupted delete|image purged from the trash/, 'the restarted controller finished the purge');
    await e2e.audit();
  } finally {
    await restarted.stop();
  }
});

test('SIGKILL between the image removal and the PV delete: after a restart the PV goes and nothing is left (RELIABILITY 15)', async () => {
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const faulty = await e2e.startController({ fault: 'crash-after-image-remove' });
  const claim = await e2e.createClaim(storageClass);
  const pv = await e2e.waitBound(claim.metadata!.name!);
  const image = pv.metadata!.name!;

  await deleteClaim(claim.metadata!.name!);
  const { signal } = await faulty.exited;
  assert.equal(signal, 'SIGKILL', `the fault fired:\n${faulty.output()}`);
  assert.ok(!(await e2e.images()).includes(image), 'the image is out of the pool');
  const left = await e2e.readVolume(image);
  assert.equal(left?.status?.phase, 'Released', 'the PV outlived the crash, Released');

  const restarted = await e2e.startController();
  try {
    await e2e.waitGone(`PV ${image}`, () => e2e.readVolume(image), 120_000);
    await waitFor(`trash entry of ${image} purged`, async (observe) => {
      const entries = (await e2e.pool.listTrash()).filter((entry) => entry.name === image);
      observe(entries);
      return entries.length === 0 ? true : undefined;
    }, { timeoutMs: 120_000, intervalMs: 500 });
    await e2e.audit();
  } finally {
    await restarted.stop();
  }
});

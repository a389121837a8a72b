// RELIABILITY 1 (and 28 for clones): the controller dies right after creating an image, before the PV exists. After
// a restart there is exactly one image and the claim ends Bound.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeHalfMadeImage, rbd } from '../support/ceph.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { uniqueName } from '../support/kube.js';

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('crash');
});

after(async () => {
  await e2e?.cleanup();
});

test('SIGKILL between image create and PV create: one image, claim Bound after restart', async () => {
  const faulty = await e2e.startController({ fault: 'crash-after-image-create' });
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const claim = await e2e.createClaim(storageClass);
  const image = `pvc-${claim.metadata!.uid}`;
  const { signal } = await faulty.exited;
  assert.equal(signal, 'SIGKILL');
  assert.deepEqual((await e2e.images()).filter((name) => name === image), [image], 'the image was created');
  assert.equal(await e2e.readVolume(image), undefined, 'no PV yet');

  const restarted = await e2e.startController();
  const pv = await e2e.waitBound(claim.metadata!.name!);
  assert.equal(pv.metadata?.name, image);
  assert.deepEqual((await e2e.images()).filter((name) => name.includes(claim.metadata!.uid!)), [image]);
  assert.match(restarted.output(), /image exists and is ours; adopting/);
});

// RELIABILITY 3, the half-made case: a create that timed out while the OSD stalled can land only in part (librbd
// writes the image's id object and directory entry before its header, and the rollback times out too). The name then
// exists but cannot be opened. Made here exactly: a real image whose header object is removed.
test('a create interrupted half-way (id and directory entry, no header): the retry clears it and the claim is Bound', async () => {
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const claim = await e2e.createClaim(storageClass); // no controller runs yet
  const image = `pvc-${claim.metadata!.uid}`;
  const id = await makeHalfMadeImage(e2e.poolName, image);
  assert.ok((await e2e.images()).includes(image), 'the half-made image is listed under the claim\'s name');

  const controller = await e2e.startController();
  const pv = await e2e.waitBound(claim.metadata!.name!);
  assert.equal(pv.metadata?.name, image);
  const info = JSON.parse(await rbd(['info', `${e2e.poolName}/${image}`, '--format', 'json'])) as { id: string; size: number };
  assert.notEqual(info.id, id, 'a new image replaced the half-made one');
  assert.equal(info.size, 1024 ** 3);
  assert.match(controller.output(), /half-made/);
  await e2e.audit();
});

// RELIABILITY 28, clones: the controller dies right after cloning a copy's image from its source, before the copy is
// tagged as its claim's (it still carries the metadata librbd copied from the source) and before its PV exists.
test('SIGKILL between a clone\'s image and its PV: one image, the clone Bound after restart with its source\'s data (RELIABILITY 28)', async () => {
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const faulty = await e2e.startController({ fault: 'crash-after-clone-create' });
  const source = await e2e.createClaim(storageClass);
  const sourcePv = await e2e.waitBound(source.metadata!.name!, 120_000);
  const data = randomBytes(1024 * 1024);
  await e2e.pool.withImage(sourcePv.metadata!.name!, (img) => img.write(0, data));

  const clone = await e2e.core.createNamespacedPersistentVolumeClaim({
    namespace: e2e.namespace,
    body: {
      metadata: { name: uniqueName('clone') },
      spec: {
        storageClassName: storageClass,
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
        dataSource: { kind: 'PersistentVolumeClaim', name: source.metadata!.name! },
      },
    },
  });
  const image = `pvc-${clone.metadata!.uid}`;
  const { signal } = await faulty.exited;
  assert.equal(signal, 'SIGKILL', `the fault fired:\n${faulty.output().slice(-2000)}`);
  assert.deepEqual((await e2e.images()).filter((name) => name === image), [image], 'the clone\'s image was made');
  assert.equal(await e2e.readVolume(image), undefined, 'no PV yet');

  const restarted = await e2e.startController();
  const pv = await e2e.waitBound(clone.metadata!.name!, 120_000);
  assert.equal(pv.metadata?.name, image);
  assert.deepEqual((await e2e.images()).filter((name) => name.includes(clone.metadata!.uid!)), [image], 'one image for the clone');
  const read = await e2e.pool.withImage(image, (img) => img.read(0, data.length), { readOnly: true });
  assert.ok(read.equals(data), 'the clone reads what its source held');
  const meta = await e2e.pool.withImage(image, (img) => img.listMetadata(), { readOnly: true });
  assert.equal(meta['rbd.provisioner.ceph.io/claim-uid'], clone.metadata!.uid, 'tagged as the clone\'s, not its source\'s');
  const sourceSnapshots = await e2e.pool.withImage(sourcePv.metadata!.name!, (img) => img.listSnapshots(), { readOnly: true });
  assert.equal(sourceSnapshots.length, 1, `one snapshot on the source (the copy's, in the trash namespace): ${JSON.stringify(sourceSnapshots)}`);
  assert.equal(restarted.child.exitCode, null);

  for (const claim of [clone, source]) await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
  await e2e.audit();
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Cluster, FEATURE_BITS, ImageBusy, ImageExists, ImageHasSnapshots, ImageNotFound, InvalidArgument, ValidationError, toCephError,
  type Pool,
} from '../../src/ceph/index.js';
import { native } from '../../src/ceph/native.js';
import { createTestPool, makeHalfMadeImage, openTestPool, rados, uniqueName, type CephTestCluster, type OpenTestPool } from '../support/ceph.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

let ceph: CephTestCluster;
let cluster: Cluster;
let pool: Pool;
let fixture: OpenTestPool;

before(async () => {
  fixture = await openTestPool('images');
  ({ ceph, cluster, pool } = fixture);
});

after(async () => {
  if (ioctx) await native.radosIoctxDestroy(ioctx);
  await fixture?.close();
});

describe('images', () => {
  test('create, stat, features, id, resize, list, remove', async () => {
    const name = uniqueName('img');
    await pool.createImage(name, GiB, { features: ['layering', 'exclusive-lock', 'object-map', 'fast-diff'], objectSize: 8 * MiB });
    assert.ok((await pool.listImages()).includes(name));
    await pool.withImage(name, async (image) => {
      const info = await image.stat();
      assert.equal(info.size, GiB);
      assert.equal(info.order, 23);
      assert.equal(info.objectSize, 8 * MiB);
      assert.match(info.blockNamePrefix, /^rbd_data\./);
      assert.deepEqual(await image.features(), ['layering', 'exclusive-lock', 'object-map', 'fast-diff']);
      assert.match(await image.id(), /^[0-9a-f]+$/);
      await image.resize(2 * GiB);
      assert.equal((await image.stat()).size, 2 * GiB);
    });
    await pool.removeImage(name);
    assert.ok(!(await pool.listImages()).includes(name));
  });

  test('striping and a data pool are passed to rbd_create4', async () => {
    const name = uniqueName('striped');
    const data = await createTestPool('data');
    try {
      await pool.createImage(name, 64 * MiB, { stripeUnit: 64 * 1024, stripeCount: 4, dataPool: data.pool });
      await pool.withImage(name, async (image) => {
        const features = await image.features();
        assert.ok(features.includes('striping'), features.join(','));
        assert.ok(features.includes('data-pool'), features.join(','));
      });
      await pool.removeImage(name);
    } finally {
      await data.remove();
    }
  });

  test('a duplicate image is ImageExists (EEXIST)', async () => {
    const name = uniqueName('dup');
    await pool.createImage(name, MiB);
    const err = await pool.createImage(name, MiB).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ImageExists, String(err));
    assert.equal(err.code, 'EEXIST');
    assert.equal(err.errno, 17);
    assert.equal(err.op, 'rbd_create4');
    assert.equal(err.object, `${pool.name}/${name}`);
    await pool.removeImage(name);
  });

  test('a missing image is ImageNotFound (ENOENT) for open and remove', async () => {
    for (const attempt of [() => pool.openImage('missing-image'), () => pool.removeImage('missing-image')]) {
      const err = await attempt().then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ImageNotFound, String(err));
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /\/missing-image\): no such image/);
    }
  });

  test('order out of range is EDOM with a message naming the allowed range', async () => {
    const name = uniqueName('order');
    // Straight to the addon, past the TS validation, to see librbd's own answer.
    const raw = await native.rbdCreate4(await rawIoctx(), name, MiB, { format: 2, order: 10 }).then(() => undefined, (e: unknown) => e);
    const err = toCephError(raw);
    assert.ok(err instanceof InvalidArgument, String(err));
    assert.equal(err.code, 'EDOM');
    assert.equal(err.errno, 33);
    assert.match(err.message, /object size out of range; allowed object sizes are 4 KiB to 32 MiB \(order 12 to 25\)/);
    // The TS layer refuses the same before any native call.
    await assert.rejects(pool.createImage(name, MiB, { order: 10 }), (e: unknown) => e instanceof ValidationError && e.field === 'order');
    await assert.rejects(pool.createImage(name, MiB, { objectSize: 1000 }), (e: unknown) => e instanceof ValidationError && e.field === 'objectSize');
  });

  test('the feature table matches librbd\'s headers', () => {
    assert.deepEqual({ ...FEATURE_BITS }, { ...native.constants.features });
  });

  test('bad features are refused before any native call, naming the allowed values', async () => {
    await assert.rejects(pool.createImage('x', MiB, { features: ['layering', 'warp-drive'] }),
      (e: unknown) => e instanceof ValidationError && e.field === 'features' && /unknown feature "warp-drive"; allowed: layering, exclusive-lock/.test(e.message));
    await assert.rejects(pool.createImage('x', MiB, { features: ['fast-diff'] }),
      (e: unknown) => e instanceof ValidationError && /"fast-diff" needs "object-map"/.test(e.message));
  });

  test('metadata get, set, list, remove', async () => {
    const name = uniqueName('meta');
    await pool.createImage(name, MiB);
    await pool.withImage(name, async (image) => {
      assert.equal(await image.getMetadata('rbd-provisioner/claim-uid'), undefined);
      await image.setMetadata('rbd-provisioner/claim-uid', 'u-1');
      await image.setMetadata('rbd-provisioner/claim', 'ns/claim');
      await image.setMetadata('big', 'x'.repeat(10_000));
      assert.equal(await image.getMetadata('rbd-provisioner/claim-uid'), 'u-1');
      assert.equal((await image.getMetadata('big'))?.length, 10_000);
      const all = await image.listMetadata();
      assert.equal(all['rbd-provisioner/claim'], 'ns/claim');
      assert.equal(Object.keys(all).length, 3);
      await image.removeMetadata('big');
      assert.equal(await image.getMetadata('big'), undefined);
    });
    await pool.removeImage(name);
  });

  test('a new image\'s id and its metadata in one write, without opening it (rados_exec, rados_write_op_exec)', async () => {
    const name = uniqueName('newmeta');
    await pool.createImage(name, MiB);
    const id = await pool.imageId(name);
    const entries = { 'rbd.provisioner.ceph.io/claim-uid': 'u-2', 'rbd.provisioner.ceph.io/claim-name': 'data', empty: '', unicode: 'é✓' };
    await pool.writeMetadataToHeader(id, entries);
    await pool.withImage(name, async (image) => {
      assert.equal(await image.id(), id);
      assert.deepEqual(await image.listMetadata(), entries);
    });
    await assert.rejects(pool.writeMetadataToHeader(id, { conf_rbd_cache: 'false' }), /configuration overrides/);
    await pool.removeImage(name);
    await assert.rejects(pool.imageId(name), (err: unknown) => err instanceof ImageNotFound && /rados_exec \(.*rbd_id\./.test(String(err)));
  });

  test('metadata read from the header, without an open, is what librbd lists: every page of it, in the trash too', async () => {
    const name = uniqueName('metaread');
    await pool.createImage(name, MiB);
    const id = (await pool.listImageSpecs()).find((spec) => spec.name === name)?.id ?? '';
    assert.equal(id, await pool.imageId(name));
    assert.deepEqual(await pool.readMetadataFromHeader(id), {});
    // More keys than one page (64), librbd's configuration overrides among them.
    const entries = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`key-${String(i).padStart(3, '0')}`, `value ${i} é`]));
    await pool.writeMetadataToHeader(id, entries);
    await pool.withImage(name, (image) => image.setMetadata('conf_rbd_cache', 'false'));
    const listed = await pool.withImage(name, (image) => image.listMetadata(), { readOnly: true });
    assert.equal(Object.keys(listed).length, 151);
    assert.deepEqual(await pool.readMetadataFromHeader(id), listed);
    await pool.moveToTrash(name);
    assert.deepEqual(await pool.readMetadataFromHeader(id), listed);
    await pool.removeFromTrash(id);
    await assert.rejects(pool.readMetadataFromHeader(id), ImageNotFound);
  });

  test('metadata read from a missing header (a half-made image) is ImageNotFound, and creates nothing', async () => {
    const name = uniqueName('halfread');
    const id = await makeHalfMadeImage(pool.name, name);
    await assert.rejects(pool.readMetadataFromHeader(id), ImageNotFound);
    await assert.rejects(rados(['-p', pool.name, 'stat', `rbd_header.${id}`]), /No such file or directory|ENOENT/);
  });

  test('metadata of a new image never makes a header that is missing: ImageNotFound, nothing written', async () => {
    const name = uniqueName('halfmade');
    const id = await makeHalfMadeImage(pool.name, name);
    assert.equal(await pool.imageId(name), id);
    await assert.rejects(pool.writeMetadataToHeader(id, { key: 'value' }), ImageNotFound);
    await assert.rejects(rados(['-p', pool.name, 'stat', `rbd_header.${id}`]), /No such file or directory|ENOENT/);
  });

  test('remove of an image with a watcher is ImageBusy (EBUSY); it succeeds once the watcher closes', async () => {
    const name = uniqueName('watched');
    await pool.createImage(name, MiB);
    const other = await Cluster.connect({ monitors: ceph.monHost, user: 'admin', key: ceph.adminKey });
    const otherPool = await other.openPool(pool.name);
    const held = await otherPool.openImage(name);
    try {
      const watchers = await pool.withImage(name, (image) => image.watchers(), { readOnly: true });
      assert.equal(watchers.length, 1);
      assert.match(watchers[0]!.address, /127\.0\.0\.1/);
      const err = await pool.removeImage(name).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ImageBusy, String(err));
      assert.equal(err.code, 'EBUSY');
      assert.equal(err.op, 'rbd_remove');
    } finally {
      await held.close();
      await otherPool.close();
      await other.close();
    }
    await pool.removeImage(name);
  });

  test('remove of an image with snapshots is ImageHasSnapshots (ENOTEMPTY)', async () => {
    const name = uniqueName('snapped');
    await pool.createImage(name, MiB);
    await pool.withImage(name, (image) => image.createSnapshot('s1'));
    const err = await pool.removeImage(name).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ImageHasSnapshots, String(err));
    assert.equal(err.code, 'ENOTEMPTY');
    await pool.withImage(name, (image) => image.removeSnapshot('s1'));
    await pool.removeImage(name);
  });

  test('clone format 1: snapshots, protect, clone, flatten', async () => {
    const parent = uniqueName('parent');
    const child = uniqueName('child');
    await pool.createImage(parent, 16 * MiB, { features: ['layering', 'exclusive-lock', 'object-map', 'fast-diff', 'deep-flatten'] });
    await pool.withImage(parent, async (image) => {
      await image.createSnapshot('base');
      assert.deepEqual((await image.listSnapshots()).map((s) => [s.name, s.size]), [['base', 16 * MiB]]);
      assert.equal(await image.isSnapshotProtected('base'), false);
      await image.protectSnapshot('base');
      assert.equal(await image.isSnapshotProtected('base'), true);
    });
    await pool.cloneImage(pool, parent, 'base', child, { features: ['layering'], cloneFormat: 1 });
    await pool.withImage(parent, async (image) => {
      // A protected snapshot with a clone cannot be unprotected.
      await assert.rejects(image.unprotectSnapshot('base'), (e: unknown) => (e as { code?: string }).code === 'EBUSY');
    });
    await pool.withImage(child, (image) => image.flatten());
    await pool.withImage(parent, async (image) => {
      await image.unprotectSnapshot('base');
      await image.removeSnapshot('base');
      assert.deepEqual(await image.listSnapshots(), []);
    });
    await pool.removeImage(child);
    await pool.removeImage(parent);
  });

  test('clone format 2: no protection; the removed snapshot stays in the trash namespace for the clone; data I/O', async () => {
    const parent = uniqueName('parent2');
    const child = uniqueName('child2');
    await pool.createImage(parent, 16 * MiB, { features: ['layering'] });
    const data = Buffer.from('written through librbd by the test');
    await pool.withImage(parent, async (image) => {
      assert.equal(await image.write(MiB, data), data.length);
      await image.createSnapshot('base');
    });
    await pool.cloneImage(pool, parent, 'base', child, { features: ['layering'], cloneFormat: 2 });
    await pool.withImage(parent, (image) => image.removeSnapshot('base'));
    const parentId = await pool.withImage(parent, (image) => image.id());
    await pool.withImage(parent, async (image) => {
      const [kept] = await image.listSnapshots();
      assert.ok(kept !== undefined, 'librbd keeps the snapshot the clone needs');
      assert.equal(await image.snapshotNamespace(kept.id), 'trash');
    });
    await pool.withImage(child, async (image) => {
      assert.deepEqual(await image.read(MiB, data.length), data);
      const link = await image.parent();
      assert.equal(link?.imageId, parentId);
      assert.equal(link?.pool, pool.name);
      assert.equal(link?.inTrash, false);
    });
    // The parent can go to the trash while the clone reads through it; it can be purged only after the clone.
    await pool.moveToTrash(parent);
    await pool.withImage(child, async (image) => {
      assert.deepEqual(await image.read(MiB, data.length), data);
      assert.equal((await image.parent())?.inTrash, true);
    });
    await assert.rejects(pool.removeFromTrash(parentId, true), (e: unknown) => (e as { code?: string }).code === 'ENOTEMPTY');
    await pool.removeImage(child);
    await pool.removeFromTrash(parentId, true);
  });

  test('trash move, list and remove', async () => {
    const name = uniqueName('trashed');
    await pool.createImage(name, 10 * GiB);
    const id = await pool.withImage(name, (image) => image.id());
    await pool.withImage(name, (image) => image.setMetadata('note', 'moved by the test'));
    await pool.moveToTrash(name);
    assert.ok(!(await pool.listImages()).includes(name));
    const entry = (await pool.listTrash()).find((e) => e.id === id);
    assert.equal(entry?.name, name);
    assert.equal(entry?.source, 'user');
    // An image in the trash is reachable by id only.
    await assert.rejects(pool.openImage(name), ImageNotFound);
    assert.equal(await pool.withImage(id, (image) => image.getMetadata('note'), { readOnly: true, byId: true }), 'moved by the test');
    await pool.removeFromTrash(id);
    assert.equal((await pool.listTrash()).find((e) => e.id === id), undefined);
    await assert.rejects(pool.removeFromTrash(id), ImageNotFound);
  });

  test('pool usage reports quota and free space', async () => {
    await ceph.ceph(['osd', 'pool', 'set-quota', pool.name, 'max_bytes', String(10 * GiB)]);
    const usage = await pool.usage();
    assert.equal(usage.quotaMaxBytes, 10 * GiB);
    assert.equal(usage.quotaMaxObjects, 0);
    assert.ok(usage.clusterAvailableBytes > 0, JSON.stringify(usage));
    assert.equal(usage.poolFull, false, 'not flagged full');
    assert.ok((await pool.cluster.poolFlags(pool.name)).includes('hashpspool'), 'the pool\'s flags are read from the OSD map');
    assert.deepEqual(await pool.cluster.poolFlags('no-such-pool-here'), []);
    await ceph.ceph(['osd', 'pool', 'set-quota', pool.name, 'max_bytes', '0']);
  });

  test('image handles: double close is harmless, use after close rejects', async () => {
    const name = uniqueName('closing');
    await pool.createImage(name, MiB);
    const image = await pool.openImage(name);
    await image.close();
    await image.close();
    await assert.rejects(image.stat(), (e: unknown) => (e as { code?: string }).code === 'EBADF' && /rbd_stat .*closing.*closed/.test(String(e)));
    await pool.removeImage(name);
  });
});

// An ioctx straight from the addon, for calls that must bypass the TS validation.
let ioctx: Awaited<ReturnType<typeof native.radosIoctxCreate>> | undefined;
async function rawIoctx() {
  if (!ioctx) {
    const handle = await native.radosConnect({ user: 'admin', monHost: ceph.monHost, key: ceph.adminKey });
    ioctx = await native.radosIoctxCreate(handle, pool.name);
    await native.radosShutdown(handle);
  }
  return ioctx;
}

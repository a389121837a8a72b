import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Cluster, callStats } from '../../src/ceph/index.js';
import { native } from '../../src/ceph/native.js';
import { createTestPool, ensureCeph, uniqueName, type CephTestCluster } from '../support/ceph.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let ceph: CephTestCluster;
let poolName: string;
let removePool: () => Promise<void>;

before(async () => {
  ceph = await ensureCeph();
  const created = await createTestPool('life');
  poolName = created.pool;
  removePool = created.remove;
});

after(async () => {
  await removePool?.();
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

test('1000 connect/close cycles do not grow memory without bound', async (t) => {
  const cycle = async () => {
    const cluster = await Cluster.connect({ monitors: ceph.monHost, user: 'admin', key: ceph.adminKey });
    await cluster.close();
  };
  for (let i = 0; i < 100; i++) await cycle();
  gc();
  await settle();
  const baseline = process.memoryUsage().rss;
  const started = performance.now();
  for (let i = 0; i < 1000; i++) await cycle();
  const perCycleMs = (performance.now() - started) / 1000;
  gc();
  await settle();
  const growthMiB = (process.memoryUsage().rss - baseline) / 2 ** 20;
  t.diagnostic(`rss growth over 1000 cycles: ${growthMiB.toFixed(1)} MiB; ${perCycleMs.toFixed(2)} ms per connect+close`);
  assert.ok(growthMiB < 64, `rss grew ${growthMiB.toFixed(1)} MiB over 1000 cycles`);
});

test('handles dropped without close() are collected without crashing, and their images are released', async () => {
  const name = uniqueName('gc');
  const keeper = await Cluster.connect({ monitors: ceph.monHost, user: 'admin', key: ceph.adminKey });
  const pool = await keeper.openPool(poolName);
  await pool.createImage(name, 1024 * 1024);
  await (async () => {
    // Open a cluster, ioctx and image straight from the addon and drop every reference.
    const cluster = await native.radosConnect({ user: 'admin', monHost: ceph.monHost, key: ceph.adminKey });
    const ioctx = await native.radosIoctxCreate(cluster, poolName);
    await native.rbdOpen(ioctx, name);
  })();
  const watchers = () => pool.withImage(name, (image) => image.watchers(), { readOnly: true });
  assert.equal((await watchers()).length, 1, 'the dropped image handle still watches the image');
  const completedBefore = callStats().completed;
  for (let i = 0; i < 20 && (await watchers()).length > 0; i++) {
    gc();
    await settle();
  }
  assert.equal((await watchers()).length, 0, 'the collected image handle was closed');
  assert.ok(callStats().completed > completedBefore);
  await pool.removeImage(name);
  await pool.close();
  await keeper.close();
});

test('a handle of the wrong kind is a clear error, not a crash', async () => {
  const cluster = await native.radosConnect({ user: 'admin', monHost: ceph.monHost, key: ceph.adminKey });
  try {
    const asIoctx = cluster as unknown as Parameters<typeof native.rbdList2>[0];
    await assert.rejects(native.rbdList2(asIoctx), (e: unknown) => (e as { code?: string }).code === 'ERR_INVALID_ARG_TYPE' && /expected an IoCtx handle/.test(String(e)));
    await assert.rejects(native.rbdList2({} as typeof asIoctx), /expected an IoCtx handle/);
    await assert.rejects(native.rbdCreate4(asIoctx, 'x', -1), /expected an IoCtx handle|size/);
    // A NUL would cut the C string short and name another object.
    await assert.rejects(native.radosPoolLookup(cluster, 'rbd\0evil'), /pool must not contain NUL/);
  } finally {
    await native.radosShutdown(cluster);
  }
});

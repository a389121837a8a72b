import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  Cluster, ConnectionPool, HandleClosed, PermissionDenied, PoolNotFound, Timeout, ValidationError, type Pool,
} from '../../src/ceph/index.js';
import { ensureCeph, type CephTestCluster } from '../support/ceph.js';

// A syntactically valid cephx key that the cluster does not know.
const WRONG_KEY = 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==';

let ceph: CephTestCluster;
const connect = (overrides: Partial<Parameters<typeof Cluster.connect>[0]> = {}) =>
  Cluster.connect({ monitors: ceph.monHost, user: 'admin', key: ceph.adminKey, timeouts: { mount: 5 }, ...overrides });

/** Asserts no message or property of err (or its causes) contains the key. */
function assertNoKey(err: unknown, key: string): void {
  const seen: string[] = [];
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    seen.push(String(e), JSON.stringify(e, Object.getOwnPropertyNames(e)));
  }
  for (const text of seen) assert.ok(!text.includes(key), `key leaked into: ${text}`);
}

before(async () => {
  ceph = await ensureCeph();
});

describe('connections', () => {
  test('connects with the key in memory and reads cluster facts', async () => {
    const cluster = await connect();
    try {
      assert.match(await cluster.fsid(), /^[0-9a-f-]{36}$/);
      assert.ok((await cluster.listPools()).includes('rbd'));
      assert.equal(await cluster.poolExists('rbd'), true);
      assert.equal(await cluster.poolExists('no-such-pool-here'), false);
      const usage = await cluster.usage();
      assert.ok(usage.totalBytes > 0, `cluster reports total bytes: ${JSON.stringify(usage)}`);
    } finally {
      await cluster.close();
    }
  });

  test('connects from a ceph.conf and its keyring', async () => {
    const cluster = await Cluster.connectWithConfFile({ confPath: ceph.confPath, keyringPath: ceph.keyringPath });
    try {
      assert.ok((await cluster.listPools()).includes('rbd'));
    } finally {
      await cluster.close();
    }
  });

  test('a wrong key is refused with PermissionDenied and the key is not in the error', async () => {
    const err = await connect({ key: WRONG_KEY }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PermissionDenied, `expected PermissionDenied, got ${String(err)}`);
    assert.ok(['EACCES', 'EPERM'].includes(err.code), err.code);
    assert.equal(err.op, 'rados_connect');
    assert.equal(err.object, 'client.admin');
    assertNoKey(err, WRONG_KEY);
    assertNoKey(err, ceph.adminKey);
  });

  test('an unreachable monitor rejects with Timeout within the mount timeout, without blocking the event loop', async () => {
    let ticks = 0;
    let maxGapMs = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      ticks++;
    }, 10);
    const started = performance.now();
    // Port 9 (discard) on loopback: nothing listens there.
    const err = await connect({ monitors: 'v2:127.0.0.1:9', timeouts: { mount: 2 } }).then(() => undefined, (e: unknown) => e);
    const elapsed = performance.now() - started;
    clearInterval(timer);
    assert.ok(err instanceof Timeout, `expected Timeout, got ${String(err)}`);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.match(err.message, /"monitors" \(v2:127\.0\.0\.1:9\)/);
    assertNoKey(err, ceph.adminKey);
    assert.ok(elapsed < 15_000, `rejected after ${elapsed} ms`);
    // The event loop kept running while the connect waited on a pool thread.
    assert.ok(ticks > 50, `only ${ticks} timer ticks in ${elapsed} ms`);
    assert.ok(maxGapMs < 500, `event loop stalled for ${maxGapMs} ms`);
  });

  test('a missing pool is PoolNotFound (ENOENT)', async () => {
    const cluster = await connect();
    try {
      const err = await cluster.openPool('no-such-pool').then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof PoolNotFound, String(err));
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.op, 'rados_ioctx_create');
      assert.match(err.message, /no-such-pool.*pool does not exist/);
    } finally {
      await cluster.close();
    }
  });

  test('options are validated before any native call, naming the field', async () => {
    await assert.rejects(connect({ monitors: '' }), (e: unknown) => e instanceof ValidationError && e.field === 'monitors');
    await assert.rejects(connect({ user: 'bad user' }), (e: unknown) => e instanceof ValidationError && e.field === 'user');
    await assert.rejects(connect({ timeouts: { osdOp: -1 } }), (e: unknown) => e instanceof ValidationError && e.field === 'timeouts.osdOp');
    const cluster = await connect();
    try {
      await assert.rejects(cluster.openPool('rbd/evil'), (e: unknown) => e instanceof ValidationError && e.field === 'pool' && /allowed: letters/.test(e.message));
    } finally {
      await cluster.close();
    }
  });

  test('double close is harmless and use after close rejects with HandleClosed', async () => {
    const cluster = await connect();
    await cluster.close();
    await cluster.close();
    const err = await cluster.listPools().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof HandleClosed, String(err));
    assert.equal(err.code, 'EBADF');
    assert.match(err.message, /rados_pool_list.*client\.admin.*closed/);
  });

  test('a pool keeps its connection alive after the connection is closed', async () => {
    const cluster = await connect();
    const pool: Pool = await cluster.openPool('rbd');
    await cluster.close();
    // The native connection is only shut down when the pool goes: this call still works.
    assert.ok(Array.isArray(await pool.listImages()));
    await pool.close();
    await pool.close();
    await assert.rejects(pool.listImages(), HandleClosed);
  });
});

describe('connection pool', () => {
  test('shares one connection per cluster+user+key, reconnects for a changed key, closes when idle', async () => {
    const pool = new ConnectionPool({ idleMs: 50, timeouts: { mount: 5 } });
    try {
      const target = { monitors: ceph.monHost, user: 'admin', key: ceph.adminKey };
      const [a, b] = await Promise.all([pool.acquire(target), pool.acquire(target)]);
      assert.equal(a.cluster, b.cluster);
      assert.equal(pool.size, 1);
      await assert.rejects(pool.acquire({ ...target, key: WRONG_KEY }), PermissionDenied);
      assert.equal(pool.size, 1, 'a failed connect is not cached');
      a.release();
      a.release();
      b.release();
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(pool.size, 0, 'idle connection closed');
      await assert.rejects(a.cluster.listPools(), HandleClosed);
      const c = await pool.acquire(target);
      assert.notEqual(c.cluster, a.cluster);
      assert.ok((await c.cluster.listPools()).includes('rbd'));
      c.release();
    } finally {
      await pool.close();
    }
  });
});


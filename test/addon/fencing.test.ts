// Fencing against real Ceph: a client's own address (rados_getaddrs) is what another client blocklists
// (rados_blocklist_add), and the blocklisted client's next operation fails with the typed error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Blocklisted, Cluster, ConnectionPool, ValidationError } from '../../src/ceph/index.js';
import { ceph, ensureCeph, openTestPool, uniqueName, type CephTestCluster, type OpenTestPool } from '../support/ceph.js';

let cluster: CephTestCluster;
let fixture: OpenTestPool;
const blocklisted: string[] = [];

const connect = () => Cluster.connect({ monitors: cluster.monHost, user: 'admin', key: cluster.adminKey, timeouts: { osdOp: 20 } });

before(async () => {
  cluster = await ensureCeph();
  fixture = await openTestPool('fence');
});

after(async () => {
  for (const address of blocklisted) await ceph(['osd', 'blocklist', 'rm', address]).catch(() => undefined);
  await fixture?.close();
});

describe('fencing', () => {
  test('clientAddress is one entity address, different for every connection', async () => {
    const [a, b] = [await connect(), await connect()];
    try {
      const [addressA, addressB] = [await a.clientAddress(), await b.clientAddress()];
      assert.match(addressA, /^(v1:|v2:|any:)?[\d.]+:\d+\/\d+$/);
      assert.notEqual(addressA, addressB);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('a blocklisted client fails its next operation with Blocklisted (ESHUTDOWN); a new connection works', async () => {
    const image = uniqueName('img');
    await fixture.pool.createImage(image, 2 ** 20);
    const victim = await connect();
    const victimPool = await victim.openPool(fixture.pool.name);
    const opened = await victimPool.openImage(image);
    try {
      await opened.setMetadata('before', '1');
      const address = await victim.clientAddress();
      await fixture.cluster.blocklist(address, 600);
      blocklisted.push(address);
      const listed = await ceph(['osd', 'blocklist', 'ls']);
      assert.ok(listed.includes(address.replace(/^(v1|v2|any):/, '')), `blocklist lists ${address}:\n${listed}`);

      const err = await opened.setMetadata('after', '1').then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof Blocklisted, `expected Blocklisted, got ${String(err)}`);
      assert.equal(err.code, 'ESHUTDOWN');
      assert.equal(err.errno, 108);
      assert.match(err.message, /blocklisted/);
      const listErr = await victimPool.listImages().then(() => undefined, (e: unknown) => e);
      assert.ok(listErr instanceof Blocklisted, `pool call after the fence: expected Blocklisted, got ${String(listErr)}`);
    } finally {
      await opened.close().catch(() => undefined);
      await victimPool.close().catch(() => undefined);
      await victim.close().catch(() => undefined);
    }
    const meta = await fixture.pool.withImage(image, (i) => i.listMetadata());
    assert.equal(meta['before'], '1');
    assert.equal(meta['after'], undefined, 'the fenced write did not land');
  });

  test('blocklist validates its arguments before any native call', async () => {
    await assert.rejects(fixture.cluster.blocklist('not an address', 60), (e: unknown) => e instanceof ValidationError && e.field === 'address');
    await assert.rejects(fixture.cluster.blocklist('v2:127.0.0.1:0/1', -1), (e: unknown) => e instanceof ValidationError && e.field === 'expireSeconds');
    await assert.rejects(fixture.cluster.blocklist('v2:127.0.0.1:0/1', 2 ** 32), (e: unknown) => e instanceof ValidationError && e.field === 'expireSeconds');
  });

  test('the pool publishes each new connection before use; a fenced one is evicted and replaced by a new address', async () => {
    const published: string[] = [];
    const pool = new ConnectionPool({
      timeouts: { osdOp: 20 },
      onConnected: async (target, address) => {
        assert.equal((target as { key?: string }).key, undefined, 'the hook never sees the key');
        published.push(address);
      },
    });
    const target = { monitors: cluster.monHost, user: 'admin', key: cluster.adminKey };
    try {
      const first = await pool.acquire(target);
      assert.deepEqual(published, [await first.cluster.clientAddress()]);
      await fixture.cluster.blocklist(published[0]!, 600);
      blocklisted.push(published[0]!);
      const fencedPool = await first.cluster.openPool(fixture.pool.name).catch(() => undefined);
      await assert.rejects(fencedPool ? fencedPool.listImages() : first.cluster.listPools(), Blocklisted);
      await fencedPool?.close().catch(() => undefined);
      pool.evict(target, first.cluster);
      first.release();
      const second = await pool.acquire(target);
      assert.equal(published.length, 2);
      assert.notEqual(published[1], published[0]);
      const p = await second.cluster.openPool(fixture.pool.name);
      await p.listImages();
      await p.close();
      second.release();
    } finally {
      await pool.close();
    }
  });

  test('a failing onConnected fails the acquire and the connection is not kept', async () => {
    const pool = new ConnectionPool({ onConnected: async () => { throw new Error('cannot publish'); } });
    try {
      await assert.rejects(pool.acquire({ monitors: cluster.monHost, user: 'admin', key: cluster.adminKey }), /cannot publish/);
      assert.equal(pool.size, 0);
    } finally {
      await pool.close();
    }
  });
});

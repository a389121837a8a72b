import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Cluster } from '../../../src/ceph/cluster.js';
import { ConnectionPool } from '../../../src/ceph/connections.js';
import { Timeout } from '../../../src/ceph/errors.js';

const target = { monitors: '10.0.0.1:6789', user: 'kube', key: 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==' };
const fakeCluster = { close: async () => undefined, clientAddress: async () => '127.0.0.1:0/1' } as unknown as Cluster;

/** A connect that ends when the test says so. */
function controlledConnect() {
  const started: { resolve: (c: Cluster) => void; reject: (e: Error) => void }[] = [];
  const connect = () => new Promise<Cluster>((resolve, reject) => started.push({ resolve, reject }));
  return { started, connect };
}

test('callers that join a connect in progress give up after joinWaitMs with a Timeout naming the monitors; the starter waits on', async () => {
  const { started, connect } = controlledConnect();
  const pool = new ConnectionPool({ connect, joinWaitMs: 20 });
  const first = pool.acquire(target);
  const joiner = pool.acquire(target);
  await assert.rejects(joiner, (err: unknown) => err instanceof Timeout && /timed out after 20 ms waiting for another request's connect to "monitors" \(10\.0\.0\.1:6789\)/.test(err.message));
  assert.equal(started.length, 1, 'one connect for both');
  started[0]!.resolve(fakeCluster);
  const lease = await first;
  assert.equal(lease.cluster, fakeCluster);
  // Connected now: a new caller gets it at once, with no second connect.
  (await pool.acquire(target)).release();
  assert.equal(started.length, 1);
  lease.release();
  await pool.close();
});

test('a joiner whose connect finishes in time gets the shared connection', async () => {
  const { started, connect } = controlledConnect();
  const pool = new ConnectionPool({ connect, joinWaitMs: 5_000 });
  const first = pool.acquire(target);
  const joiner = pool.acquire(target);
  started[0]!.resolve(fakeCluster);
  assert.equal((await joiner).cluster, (await first).cluster);
  await pool.close();
});

test('after a failed connect, acquires fail at once with that error for failureHoldMs, then connect again', async () => {
  const { started, connect } = controlledConnect();
  const pool = new ConnectionPool({ connect, failureHoldMs: 50 });
  const first = pool.acquire(target);
  const failure = new Error('no monitor answered');
  started[0]!.reject(failure);
  await assert.rejects(first, (err: unknown) => err === failure);
  await assert.rejects(pool.acquire(target), (err: unknown) => err === failure);
  assert.equal(started.length, 1, 'no second connect while the failure is held');
  await new Promise((resolve) => setTimeout(resolve, 60));
  const again = pool.acquire(target);
  assert.equal(started.length, 2, 'a new connect once the hold is over');
  started[1]!.resolve(fakeCluster);
  (await again).release();
  await pool.close();
});

// Native rejections -> typed errors, and what each message says. Pure: no native call.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CephError, explainCreateNotFound, ImageExists, monitorsTimedOut, NamespaceNotFound, PoolNotFound, Timeout, toCephError,
  type CreateTarget,
} from '../../../src/ceph/errors.js';

const native = (code: string, op: string, object: string) =>
  Object.assign(new Error(`${op} failed`), { code, errno: 2, op, object });

describe('rbd_create4 ENOENT: which of pool, data pool and RADOS namespace is missing', () => {
  const enoent = toCephError(native('ENOENT', 'rbd_create4', 'kube/tenant-a/pvc-1')) as CephError;
  const target = (missing: string[], extra: Partial<CreateTarget> = {}): CreateTarget => ({
    pool: 'kube', namespace: 'tenant-a', dataPool: undefined, poolExists: async (pool) => !missing.includes(pool), ...extra,
  });

  test('without more to go on, the message does not guess', () => {
    assert.ok(enoent instanceof PoolNotFound);
    assert.match(enoent.message, /^rbd_create4 \(kube\/tenant-a\/pvc-1\): pool, data pool or RADOS namespace does not exist$/);
  });
  test('a missing namespace is named, with its pool, and is no PoolNotFound', async () => {
    const err = await explainCreateNotFound(enoent, target([]));
    assert.ok(err instanceof NamespaceNotFound, String(err));
    assert.ok(!(err instanceof PoolNotFound));
    assert.match(err.message, /RADOS namespace "tenant-a" does not exist in pool "kube" \(create it with "rbd namespace create kube\/tenant-a"\)/);
    assert.doesNotMatch(err.message, /data pool/);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.object, 'kube/tenant-a');
    assert.equal(err.cause, enoent);
  });
  test('a missing data pool is named', async () => {
    const err = await explainCreateNotFound(enoent, target(['ec-data'], { dataPool: 'ec-data' }));
    assert.ok(err instanceof PoolNotFound, String(err));
    assert.match((err as Error).message, /data pool "ec-data" does not exist/);
  });
  test('a data pool that exists leaves the namespace', async () => {
    assert.ok(await explainCreateNotFound(enoent, target([], { dataPool: 'ec-data' })) instanceof NamespaceNotFound);
  });
  test('a pool removed meanwhile is named', async () => {
    const err = await explainCreateNotFound(enoent, target(['kube']));
    assert.ok(err instanceof PoolNotFound);
    assert.match((err as Error).message, /pool "kube" does not exist/);
  });
  test('in the default namespace, with every pool there, the error stays as it was', async () => {
    assert.equal(await explainCreateNotFound(enoent, target([], { namespace: '' })), enoent);
  });
  test('a lookup that fails too leaves the error as it was', async () => {
    const failing = target([], { poolExists: () => Promise.reject(new Error('timed out')) });
    assert.equal(await explainCreateNotFound(enoent, failing), enoent);
  });
  test('other errors pass through without a lookup', async () => {
    const exists = toCephError(native('EEXIST', 'rbd_create4', 'kube/pvc-1'));
    assert.ok(exists instanceof ImageExists);
    const lookups: string[] = [];
    assert.equal(await explainCreateNotFound(exists, target([], { poolExists: async (p) => { lookups.push(p); return true; } })), exists);
    assert.deepEqual(lookups, []);
  });
});

describe('a connect that times out', () => {
  test('names "monitors" and the addresses, and stays a Timeout', () => {
    const timeout = toCephError(native('ETIMEDOUT', 'rados_connect', 'client.admin'));
    assert.ok(timeout instanceof Timeout);
    const err = monitorsTimedOut(timeout, 'v2:127.0.0.1:9,10.0.0.2:6789', 2);
    assert.ok(err instanceof Timeout);
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(err.op, 'rados_connect');
    assert.equal(err.cause, timeout);
    assert.match(err.message, /^rados_connect \(client\.admin\): timed out: no monitor of "monitors" \(v2:127\.0\.0\.1:9,10\.0\.0\.2:6789\) answered within 2 s \(client_mount_timeout\)/);
  });
});

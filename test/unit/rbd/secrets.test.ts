// The admin-key cache in front of the Secret reader: one read per Secret and TTL, failures never kept, invalidation.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cachingSecretReader } from '../../../src/rbd/secrets.js';
import { SecretError } from '../../../src/rbd/provisioner.js';

const admin = { namespace: 'ceph', name: 'admin' };
const other = { namespace: 'ceph', name: 'other' };

function counting(answer: (ref: { name: string }) => Promise<string>) {
  const reads: string[] = [];
  return { reads, read: async (ref: { namespace: string; name: string }) => { reads.push(ref.name); return answer(ref); } };
}

describe('cachingSecretReader', () => {
  test('reads a Secret once per TTL; concurrent reads share one request; each Secret on its own', async () => {
    let now = 0;
    const source = counting(async (ref) => `key-${ref.name}`);
    const cache = cachingSecretReader(source.read, { ttlMs: 1000, now: () => now });
    const signal = new AbortController().signal;
    assert.deepEqual(await Promise.all([cache.read(admin, signal), cache.read(admin, signal), cache.read(other, signal)]), ['key-admin', 'key-admin', 'key-other']);
    now = 999;
    assert.equal(await cache.read(admin, signal), 'key-admin');
    assert.deepEqual(source.reads, ['admin', 'other']);
    now = 1000;
    await cache.read(admin, signal);
    assert.deepEqual(source.reads, ['admin', 'other', 'admin']);
  });

  test('a failed read is not kept: the next read asks again', async () => {
    let fail = true;
    const source = counting(async () => {
      if (fail) throw new SecretError('secret ceph/admin not found');
      return 'key';
    });
    const cache = cachingSecretReader(source.read, { ttlMs: 60_000, now: () => 0 });
    const signal = new AbortController().signal;
    await assert.rejects(cache.read(admin, signal), /secret ceph\/admin not found/);
    fail = false;
    assert.equal(await cache.read(admin, signal), 'key');
    assert.equal(source.reads.length, 2);
  });

  test('invalidate: the next read goes to the API (a key Ceph refused)', async () => {
    let version = 1;
    const source = counting(async () => `key-${version}`);
    const cache = cachingSecretReader(source.read, { ttlMs: 60_000, now: () => 0 });
    const signal = new AbortController().signal;
    assert.equal(await cache.read(admin, signal), 'key-1');
    version = 2;
    assert.equal(await cache.read(admin, signal), 'key-1');
    cache.invalidate(admin);
    assert.equal(await cache.read(admin, signal), 'key-2');
  });

  test('a caller that aborts gets its own reason at once; the shared read goes on for the others', async () => {
    let release: (key: string) => void = () => {};
    const source = counting(() => new Promise<string>((resolve) => { release = resolve; }));
    const cache = cachingSecretReader(source.read, { ttlMs: 60_000, now: () => 0 });
    const abort = new AbortController();
    const first = cache.read(admin, abort.signal);
    const second = cache.read(admin, new AbortController().signal);
    abort.abort(new Error('lost the lease'));
    await assert.rejects(first, /lost the lease/);
    release('key');
    assert.equal(await second, 'key');
    assert.equal(source.reads.length, 1);
  });
});

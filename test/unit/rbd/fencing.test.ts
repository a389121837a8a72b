// The fencing record a leader publishes, and the RBD fencer that blocklists what a record lists.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clientAddressOf, type Cluster, type ConnectOptions, ValidationError } from '../../../src/ceph/index.js';
import {
  CEPH_CLIENTS_ANNOTATION, CephClientRecord, FENCE_EXPIRE_SECONDS, FencingRecordError, RbdFencer, decodeFencingRecord, encodeFencingRecord,
  type CephClientEntry,
} from '../../../src/rbd/fencing.js';
import { SecretError } from '../../../src/rbd/provisioner.js';
import type { SecretRef } from '../../../src/rbd/parameters.js';
import { memoryLogger } from '../fakes.js';

const KEY = 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==';
const entry = (overrides: Partial<CephClientEntry> = {}): CephClientEntry => ({
  monitors: '10.0.0.1:6789', adminId: 'admin', secretNamespace: 'ceph', secretName: 'admin', address: '10.0.0.5:0/123', ...overrides,
});

describe('clientAddressOf', () => {
  for (const [input, expected] of [
    ['127.0.0.1:0/3295052206', '127.0.0.1:0/3295052206'],
    ['[v2:10.0.0.1:0/42,v1:10.0.0.1:0/42]', 'v2:10.0.0.1:0/42'],
    ['v2:10.0.0.1:0/42', 'v2:10.0.0.1:0/42'],
    ['any:[fd00::1]:0/7', 'any:[fd00::1]:0/7'],
  ] as const) {
    test(`${input} -> ${expected}`, () => assert.equal(clientAddressOf(input), expected));
  }
  for (const bad of ['', '[]', '10.0.0.1', '10.0.0.1:0', 'v3:10.0.0.1:0/1', '10.0.0.1:0/1 extra']) {
    test(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => clientAddressOf(bad), (e: unknown) => e instanceof ValidationError && e.field === 'address'));
  }
});

describe('fencing record', () => {
  test('round trip; the format is versioned JSON and never holds a key', () => {
    const clients = [entry(), entry({ address: '10.0.0.6:0/9' })];
    const text = encodeFencingRecord(clients);
    assert.deepEqual(JSON.parse(text), { version: 1, clients });
    assert.deepEqual(decodeFencingRecord(text), clients);
    assert.equal(CEPH_CLIENTS_ANNOTATION, 'rbd.provisioner.ceph.io/ceph-clients');
  });

  for (const [name, text] of [
    ['not JSON', '{'],
    ['no version', '{"clients":[]}'],
    ['a later version', '{"version":2,"clients":[]}'],
    ['clients not a list', '{"version":1,"clients":{}}'],
    ['a missing field', JSON.stringify({ version: 1, clients: [{ ...entry(), address: undefined }] })],
    ['an empty field', JSON.stringify({ version: 1, clients: [{ ...entry(), secretName: '' }] })],
  ] as const) {
    test(`a record that cannot be read is an error, not "nothing to fence": ${name}`, () => {
      assert.throws(() => decodeFencingRecord(text), FencingRecordError);
    });
  }

  test('CephClientRecord lists each connection once, with the Secret it came from; clear() empties it', () => {
    const record = new CephClientRecord();
    const target = { monitors: '10.0.0.1:6789', user: 'admin', origin: { secretNamespace: 'ceph', secretName: 'admin' } };
    record.add(target, '10.0.0.5:0/1');
    const text = record.add(target, '10.0.0.5:0/2');
    assert.deepEqual(decodeFencingRecord(text).map((c) => c.address), ['10.0.0.5:0/1', '10.0.0.5:0/2']);
    assert.deepEqual(decodeFencingRecord(record.add(target, '10.0.0.5:0/2')).length, 2);
    assert.throws(() => record.add({ monitors: 'm', user: 'admin' }, '10.0.0.5:0/3'), FencingRecordError, 'a client without a Secret could not be fenced');
    record.clear();
    assert.equal(record.size, 0);
  });
});

interface FakeCluster { address: string; blocklisted: { address: string; expire: number }[]; closed: boolean }

function fencer(options: { secrets: Record<string, string>; failBlocklist?: boolean }) {
  const connects: ConnectOptions[] = [];
  const clusters: FakeCluster[] = [];
  const { logger, text } = memoryLogger('debug');
  const f = new RbdFencer({
    readSecret: async (ref: SecretRef) => {
      const key = options.secrets[`${ref.namespace}/${ref.name}`];
      if (key === undefined) throw new SecretError(`secret ${ref.namespace}/${ref.name} not found`);
      return key;
    },
    connect: async (o) => {
      connects.push(o);
      const fake: FakeCluster = { address: '', blocklisted: [], closed: false };
      clusters.push(fake);
      return {
        async blocklist(address: string, expire: number) {
          if (options.failBlocklist) throw new Error('EPERM');
          fake.blocklisted.push({ address, expire });
        },
        async close() { fake.closed = true; },
      } as unknown as Cluster;
    },
    logger,
  });
  return { f, connects, clusters, text };
}

describe('RbdFencer', () => {
  test('blocklists every listed address, per cluster, with the listed user and the key from the named Secret', async () => {
    const { f, connects, clusters, text } = fencer({ secrets: { 'ceph/admin': KEY, 'other/admin': KEY } });
    const record = encodeFencingRecord([
      entry({ address: '10.0.0.5:0/1' }),
      entry({ address: '10.0.0.5:0/2' }),
      entry({ monitors: '10.9.9.9:6789', secretNamespace: 'other', address: '10.0.0.5:0/3' }),
    ]);
    await f.fence(record, new AbortController().signal);
    assert.deepEqual(connects.map((c) => [c.monitors, c.user, c.key === KEY]), [['10.0.0.1:6789', 'admin', true], ['10.9.9.9:6789', 'admin', true]]);
    assert.deepEqual(clusters.map((c) => c.blocklisted), [
      [{ address: '10.0.0.5:0/1', expire: FENCE_EXPIRE_SECONDS }, { address: '10.0.0.5:0/2', expire: FENCE_EXPIRE_SECONDS }],
      [{ address: '10.0.0.5:0/3', expire: FENCE_EXPIRE_SECONDS }],
    ]);
    assert.ok(clusters.every((c) => c.closed), 'fencing connections are closed');
    assert.ok(!text().includes(KEY), 'the key is never logged');
  });

  test('a deleted Secret: the next credentials listed for the same cluster are used', async () => {
    const { f, clusters } = fencer({ secrets: { 'ceph/second': KEY } });
    await f.fence(encodeFencingRecord([entry({ address: '10.0.0.5:0/1' }), entry({ secretName: 'second', address: '10.0.0.5:0/2' })]), new AbortController().signal);
    assert.deepEqual(clusters.flatMap((c) => c.blocklisted.map((b) => b.address)), ['10.0.0.5:0/1', '10.0.0.5:0/2']);
  });

  test('fails when no listed credentials work, or a blocklist fails (the runner retries and does not act)', async () => {
    await assert.rejects(fencer({ secrets: {} }).f.fence(encodeFencingRecord([entry()]), new AbortController().signal), SecretError);
    const failing = fencer({ secrets: { 'ceph/admin': KEY }, failBlocklist: true });
    await assert.rejects(failing.f.fence(encodeFencingRecord([entry()]), new AbortController().signal), /EPERM/);
    assert.ok(failing.clusters.every((c) => c.closed));
    await assert.rejects(fencer({ secrets: {} }).f.fence('garbage', new AbortController().signal), FencingRecordError);
  });

  test('an empty record fences nothing and succeeds', async () => {
    const { f, connects } = fencer({ secrets: {} });
    await f.fence(encodeFencingRecord([]), new AbortController().signal);
    assert.equal(connects.length, 0);
  });
});

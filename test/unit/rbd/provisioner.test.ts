// What the RBD provisioner decides before it reaches Ceph: no connection is opened in these tests.
import type { V1StorageClass } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Cluster, ConnectionPool } from '../../../src/ceph/index.js';
import { DeleteError, ProvisionError } from '../../../src/controllers/provision/errors.js';
import { NodeSecretError } from '../../../src/rbd/node-secret.js';
import { RbdProvisioner } from '../../../src/rbd/provisioner.js';
import { legacyPv } from '../fakes.js';

const UID = '0b5f3c4e-1111-2222-3333-444455556666';
const MALFORMED = 'c2VjcmV0LWJ1dC1ub3QtYS1jZXBoeC1rZXk=';
const quiet = { info() {}, warn() {}, debug() {} };
/** The class's user Secret as it is (node-secret.ts is tested on its own). */
const asIs = async () => undefined;
const signal = new AbortController().signal;
const storageClass: V1StorageClass = {
  metadata: { name: 'fast' },
  provisioner: 'test.rbd.provisioner',
  parameters: { monitors: '192.0.2.1:6789', adminSecretName: 'ceph-admin', adminSecretNamespace: 'ceph', userSecretName: 'u' },
};
const request = {
  pvName: `pvc-${UID}`,
  claim: { metadata: { name: 'data', namespace: 'app', uid: UID }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
  storageClass,
};

function provisionerWithKey(key: string) {
  const connects: string[] = [];
  const connections = new ConnectionPool({
    connect: async (options) => {
      connects.push(options.monitors);
      throw new Error('test: no cluster here');
    },
  });
  const provisioner = new RbdProvisioner({ name: 'test.rbd.provisioner', nodeStageSecret: asIs, connections, logger: quiet, readSecret: async () => key });
  return { provisioner, connects };
}

describe('a Secret whose key is not a cephx key', () => {
  test('provision: a final InvalidSecret naming the Secret, before any connection, without the key', async () => {
    const { provisioner, connects } = provisionerWithKey(MALFORMED);
    const err = await provisioner.provision(request, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ProvisionError, String(err));
    assert.equal(err.kind, 'final');
    assert.equal(err.reason, 'InvalidSecret');
    assert.match(err.message, /^secret ceph\/ceph-admin: its key is malformed: /);
    assert.ok(!err.message.includes(MALFORMED));
    assert.deepEqual(connects, []);
  });

  test('delete: the same, as a DeleteError', async () => {
    const { provisioner, connects } = provisionerWithKey('');
    const [location] = provisioner.volumeLocations([storageClass]);
    const err = await provisioner.listOwnedVolumes(location!, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeleteError && err.kind === 'final' && err.reason === 'InvalidSecret', String(err));
    assert.match(err.message, /^secret ceph\/ceph-admin: its key is empty/);
    assert.deepEqual(connects, []);
  });

  test('a key of the right shape goes on to connect', async () => {
    const { provisioner, connects } = provisionerWithKey('AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==');
    await assert.rejects(provisioner.provision(request, signal), /no cluster here/);
    assert.deepEqual(connects, ['192.0.2.1:6789']);
  });
});

describe('the node Secret is settled before any image exists', () => {
  test('a NodeSecretError fails the claim for good (final, its reason and message) before any connection', async () => {
    const connects: string[] = [];
    const connections = new ConnectionPool({ connect: async (options) => { connects.push(options.monitors); throw new Error('test: no cluster here'); } });
    const message = 'node secret app/u (StorageClass parameter "userSecretName") not found; fix: kubectl ...';
    const provisioner = new RbdProvisioner({
      name: 'test.rbd.provisioner', connections, logger: quiet, readSecret: async () => 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==',
      nodeStageSecret: async () => { throw new NodeSecretError('NodeSecretNotFound', 'key', message); },
    });
    const err = await provisioner.provision(request, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ProvisionError, String(err));
    assert.equal(err.kind, 'final');
    assert.equal(err.reason, 'NodeSecretNotFound');
    assert.equal(err.message, message);
    assert.deepEqual(connects, []);
  });

  test('volumeSource rbd never asks for a node Secret', async () => {
    let asked = 0;
    const connections = new ConnectionPool({ connect: async () => { throw new Error('test: no cluster here'); } });
    const provisioner = new RbdProvisioner({
      name: 'test.rbd.provisioner', connections, logger: quiet, readSecret: async () => 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==',
      nodeStageSecret: async () => { asked++; return undefined; },
    });
    const rbdClass = { ...storageClass, parameters: { ...storageClass.parameters, volumeSource: 'rbd' } };
    await assert.rejects(provisioner.provision({ ...request, storageClass: rbdClass }, signal), /no cluster here/);
    assert.equal(asked, 0);
  });
});

describe('Cluster.connect validates before any native call', () => {
  const connect = (overrides: Record<string, string>) =>
    Cluster.connect({ monitors: '192.0.2.1:6789', user: 'admin', key: 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==', ...overrides })
      .then((cluster) => cluster.close().then(() => assert.fail('connected')), (e: unknown) => e);
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ key: MALFORMED }, 'key', /^key: malformed: /],
    [{ user: 'client.admin' }, 'user', /includes the "client\." prefix/],
    [{ monitors: 'mon_a:6789' }, 'monitors', /is not a host name/],
  ];
  for (const [overrides, field, message] of cases) {
    test(`bad ${field}`, async () => {
      const err = (await connect(overrides)) as { name: string; field: string; message: string };
      assert.equal(err.name, 'ValidationError');
      assert.equal(err.field, field);
      assert.match(err.message, message);
      assert.ok(!err.message.includes(MALFORMED));
    });
  }
});

describe('deleting a PV of the retired provisioner (taken over)', () => {
  const VALID_KEY = 'AQBh3dZiAAAAABAAlQhbRLzEGG7nDQ2nb9NR5g==';
  const legacy = () => legacyPv({ phase: 'Released', className: 'old-rbd' });

  test('its class gone and no admin annotations: a final AdminCredentialsUnknown naming the class, before any Secret read or connection', async () => {
    const secretsRead: string[] = [];
    const { connects } = provisionerWithKey(VALID_KEY);
    const provisioner = new RbdProvisioner({
      name: 'test.rbd.provisioner', nodeStageSecret: asIs, logger: quiet,
      connections: new ConnectionPool({ connect: async (options) => { connects.push(options.monitors); throw new Error('test: no cluster here'); } }),
      readSecret: async (ref) => { secretsRead.push(ref.name); return VALID_KEY; },
    });
    const err = await provisioner.delete(legacy(), signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeleteError && err.kind === 'final' && err.reason === 'AdminCredentialsUnknown', String(err));
    assert.match(err.message, /its StorageClass "old-rbd", where the old provisioner kept them, no longer exists/);
    assert.deepEqual(secretsRead, []);
    assert.deepEqual(connects, []);
  });

  test('with its class: the class\'s admin Secret is read and the PV\'s monitors are connected to', async () => {
    const secretsRead: string[] = [];
    const connects: string[] = [];
    const provisioner = new RbdProvisioner({
      name: 'test.rbd.provisioner', nodeStageSecret: asIs, logger: quiet,
      connections: new ConnectionPool({ connect: async (options) => { connects.push(`${options.user}@${options.monitors}`); throw new Error('test: no cluster here'); } }),
      readSecret: async (ref) => { secretsRead.push(`${ref.namespace}/${ref.name}`); return VALID_KEY; },
    });
    const oldClass: V1StorageClass = { metadata: { name: 'old-rbd' }, provisioner: 'ceph.com/rbd', parameters: { monitors: 'x', adminId: 'ops', adminSecretName: 'old-admin', adminSecretNamespace: 'kube-system' } };
    await provisioner.delete(legacy(), signal, { storageClass: oldClass }).then(() => undefined, (e: unknown) => e);
    assert.deepEqual(secretsRead, ['kube-system/old-admin']);
    assert.deepEqual(connects, ['ops@10.0.0.1:6789,10.0.0.2:6789']);
  });
});

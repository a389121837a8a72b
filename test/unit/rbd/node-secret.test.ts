// Which Secret a CSI PV names for ceph-csi's node plugin, the managed Secret's name and content, and the messages of
// a user Secret that cannot work. Pure decisions, then NodeSecrets over the fake API.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { isKubeName, DNS_SUBDOMAIN } from '../../../src/kube/names.js';
import {
  cephCsiCredentials, decideNodeSecret, managedSecretName, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NODE_SECRET_ANNOTATIONS,
  NodeSecretError, NodeSecrets, type NodeSecretInput,
} from '../../../src/rbd/node-secret.js';
import { parseClassParameters } from '../../../src/rbd/parameters.js';
import { apiError, FakeKube } from '../fakes.js';

const KEY = 'AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==';
const OTHER_KEY = 'AQCq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==';
const MALFORMED = 'c2VjcmV0LWJ1dC1ub3QtYS1jZXBoeC1rZXk=';
const source = { namespace: 'apps', name: 'ceph-user' };
const base = { source, provisionerName: 'rbd.provisioner.ceph.io', namespace: 'rbd-provisioner' };
const decide = (userId: string, data: Record<string, string> | undefined) => decideNodeSecret({ ...base, userId, data } satisfies NodeSecretInput);
const b64 = (text: string) => Buffer.from(text).toString('base64');
const unb64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');
const signal = new AbortController().signal;
const quiet = { info() {} };

describe("cephCsiCredentials: ceph-csi's NewUserCredentialsWithMigration", () => {
  const rows: [string, Record<string, string>, ReturnType<typeof cephCsiCredentials>][] = [
    ['legacy key only: user admin', { key: KEY }, { user: 'admin', key: KEY, legacy: true }],
    ['legacy key with adminId', { key: KEY, adminId: 'kube' }, { user: 'kube', key: KEY, legacy: true }],
    ['legacy key with an empty adminId: admin', { key: KEY, adminId: '' }, { user: 'admin', key: KEY, legacy: true }],
    ['a non-empty key wins over userID/userKey', { key: KEY, userID: 'kube', userKey: OTHER_KEY }, { user: 'admin', key: KEY, legacy: true }],
    ['ceph-csi format', { userID: 'kube', userKey: KEY }, { user: 'kube', key: KEY, legacy: false }],
    ['an empty key falls through to ceph-csi format', { key: '', userID: 'kube', userKey: KEY }, { user: 'kube', key: KEY, legacy: false }],
    ['no userID', { userKey: KEY }, { missing: 'userID' }],
    ['an empty userKey', { userID: 'kube', userKey: '' }, { missing: 'userKey' }],
    ['nothing at all', {}, { missing: 'userID' }],
  ];
  for (const [what, data, expected] of rows) test(what, () => assert.deepEqual(cephCsiCredentials(data), expected));
});

describe('decideNodeSecret: which Secret the PV names', () => {
  test('ceph-csi format naming the class user: the Secret itself', () => {
    assert.deepEqual(decide('kube', { userID: 'kube', userKey: KEY }), { kind: 'direct', ref: source });
  });
  test('legacy, user admin (no adminId): the Secret itself', () => {
    assert.deepEqual(decide('admin', { key: KEY }), { kind: 'direct', ref: source });
  });
  test('legacy with adminId equal to the class user: the Secret itself', () => {
    assert.deepEqual(decide('kube', { key: KEY, adminId: 'kube' }), { kind: 'direct', ref: source });
  });

  for (const [what, data] of [
    ['legacy key only, userId kube (the retired provisioner\'s class)', { key: KEY }],
    ['legacy key with an adminId of another user', { key: KEY, adminId: 'someone' }],
    ['legacy key with a trailing newline', { key: `${KEY}\n` }],
  ] as const) {
    test(`${what}: a managed Secret in ceph-csi format in the controller's namespace`, () => {
      const decision = decide('kube', data);
      assert.equal(decision.kind, 'managed');
      if (decision.kind !== 'managed') return;
      assert.deepEqual(decision.ref, { namespace: 'rbd-provisioner', name: managedSecretName(base.provisionerName, source, 'kube') });
      assert.match(decision.ref.name, /^rbd-node-apps-ceph-user-[0-9a-f]{8}$/);
      const secret = decision.secret;
      assert.equal(secret.metadata?.name, decision.ref.name);
      assert.equal(secret.metadata?.namespace, 'rbd-provisioner');
      assert.equal(secret.metadata?.labels?.[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
      assert.deepEqual(secret.metadata?.annotations, {
        [NODE_SECRET_ANNOTATIONS.provisioner]: 'rbd.provisioner.ceph.io',
        [NODE_SECRET_ANNOTATIONS.source]: 'apps/ceph-user',
        [NODE_SECRET_ANNOTATIONS.user]: 'kube',
      });
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['userID', 'userKey']);
      assert.equal(unb64(secret.data?.['userID']), 'kube');
      assert.equal(unb64(secret.data?.['userKey']), KEY);
      // What ceph-csi derives from the managed Secret is the class's user with its key.
      assert.deepEqual(cephCsiCredentials({ userID: 'kube', userKey: unb64(secret.data?.['userKey']) }), { user: 'kube', key: KEY, legacy: false });
      assert.ok(!JSON.stringify(secret.metadata).includes(KEY), 'the key only in data');
    });
  }

  function assertFails(userId: string, data: Record<string, string> | undefined, reason: string, field: string | undefined, fragments: (string | RegExp)[]) {
    assert.throws(() => decide(userId, data), (error: unknown) => {
      assert.ok(error instanceof NodeSecretError, String(error));
      assert.equal(error.reason, reason);
      assert.equal(error.field, field);
      assert.ok(error.message.startsWith('node secret apps/ceph-user (StorageClass parameter "userSecretName")'), error.message);
      for (const fragment of fragments) {
        if (typeof fragment === 'string') assert.ok(error.message.includes(fragment), `${fragment} not in: ${error.message}`);
        else assert.match(error.message, fragment);
      }
      for (const value of Object.values(data ?? {})) if (value.length > 20) assert.ok(!error.message.includes(value), 'a key in the message');
      return true;
    });
  }

  test('a missing Secret: the field and the command that creates it', () => {
    assertFails('kube', undefined, 'NodeSecretNotFound', 'key', [
      'not found',
      'data key "key" holding client.kube\'s key',
      'fix: kubectl -n apps create secret generic ceph-user --type=kubernetes.io/rbd --from-literal=key="$(ceph auth get-key client.kube)"',
    ]);
  });
  test('neither "key" nor "userID": asks for "key", with the patch that adds it', () => {
    assertFails('kube', { adminId: 'kube' }, 'InvalidNodeSecret', 'key', [
      'has no (or an empty) data key "key"',
      'fix: kubectl -n apps patch secret ceph-user --type=merge -p "{\\"stringData\\":{\\"key\\":\\"$(ceph auth get-key client.kube)\\"}}"',
    ]);
  });
  test('an empty "key" and nothing else: the same', () => {
    assertFails('kube', { key: '' }, 'InvalidNodeSecret', 'key', ['data key "key"']);
  });
  test('"userID" without "userKey"', () => {
    assertFails('kube', { userID: 'kube' }, 'InvalidNodeSecret', 'userKey', ['no (or an empty) "userKey"', '\\"userID\\":\\"kube\\",\\"userKey\\"']);
  });
  test('ceph-csi format naming another user: refused, never copied under the class user', () => {
    assertFails('kube', { userID: 'admin', userKey: KEY }, 'InvalidNodeSecret', 'userID', [
      'data key "userID" is "admin" but the class\'s "userId" is "kube"', 'allowed: "userID" "kube"',
    ]);
  });
  test('a malformed legacy key names "key" and never quotes it', () => {
    assertFails('kube', { key: MALFORMED }, 'InvalidNodeSecret', 'key', ['data key "key" is malformed', 'allowed: ']);
  });
  test('a malformed userKey names "userKey"', () => {
    assertFails('kube', { userID: 'kube', userKey: MALFORMED }, 'InvalidNodeSecret', 'userKey', ['data key "userKey" is malformed']);
  });
});

describe('managedSecretName', () => {
  test('deterministic, and distinct per provisioner, source and user', () => {
    const name = managedSecretName('p', source, 'kube');
    assert.equal(managedSecretName('p', source, 'kube'), name);
    const others = [
      managedSecretName('q', source, 'kube'),
      managedSecretName('p', source, 'kube2'),
      managedSecretName('p', { ...source, namespace: 'apps2' }, 'kube'),
      managedSecretName('p', { ...source, name: 'ceph-user2' }, 'kube'),
      // The readable part alone would collide ("a-b" + "c" and "a" + "b-c"); the hash keeps them apart.
      managedSecretName('p', { namespace: 'a-b', name: 'c' }, 'kube'),
      managedSecretName('p', { namespace: 'a', name: 'b-c' }, 'kube'),
    ];
    assert.equal(new Set([name, ...others]).size, others.length + 1);
  });
  test('the longest namespace and name still give a valid Secret name, readable at the front', () => {
    const namespace = 'n'.repeat(63);
    for (const name of ['s'.repeat(253), `${'s'.repeat(170)}.${'t'.repeat(82)}`, `${'s'.repeat(174)}-${'t'.repeat(78)}`]) {
      const managed = managedSecretName('p', { namespace, name }, 'kube');
      assert.ok(managed.length <= 253, String(managed.length));
      assert.ok(isKubeName(DNS_SUBDOMAIN, managed), managed);
      assert.ok(managed.startsWith(`rbd-node-${namespace}-sss`));
    }
  });
});

describe('NodeSecrets over the API', () => {
  const claim: V1PersistentVolumeClaim = { metadata: { name: 'data', namespace: 'apps', uid: 'u' } };
  const params = (extra: Record<string, string> = {}) => parseClassParameters({
    monitors: '192.0.2.1:6789', adminSecretName: 'ceph-admin', userId: 'kube', userSecretName: 'ceph-user', ...extra,
  });
  const setup = () => {
    const kube = new FakeKube();
    const infos: unknown[] = [];
    const secrets = new NodeSecrets({ kube, provisionerName: base.provisionerName, namespace: 'rbd-provisioner', logger: { info: (m, meta) => infos.push([m, meta]) } });
    return { kube, secrets, infos };
  };
  const managedName = managedSecretName(base.provisionerName, source, 'kube');

  test("a legacy Secret: creates the managed one once, in the controller's namespace, and names it", async () => {
    const { kube, secrets, infos } = setup();
    kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
    const ref = await secrets.resolve(params(), claim, signal);
    assert.deepEqual(ref, { namespace: 'rbd-provisioner', name: managedName });
    const stored = await kube.readSecret('rbd-provisioner', managedName);
    assert.equal(unb64(stored?.data?.['userID']), 'kube');
    assert.equal(unb64(stored?.data?.['userKey']), KEY);
    assert.equal(stored?.metadata?.labels?.[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
    kube.calls.length = 0;
    assert.deepEqual(await secrets.resolve(params(), claim, signal), ref);
    assert.deepEqual(kube.calls, ['readSecretData', 'readSecret'], 'up to date: nothing written');
    assert.ok(!JSON.stringify(infos).includes(KEY), 'no key in log lines');
  });

  test('a changed source key replaces the managed Secret', async () => {
    const { kube, secrets } = setup();
    kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
    await secrets.resolve(params(), claim, signal);
    kube.putSecret('apps', 'ceph-user', { key: b64(OTHER_KEY) });
    await secrets.resolve(params(), claim, signal);
    assert.equal(unb64((await kube.readSecret('rbd-provisioner', managedName))?.data?.['userKey']), OTHER_KEY);
    assert.ok(kube.calls.includes('replaceSecret'));
  });

  test('a conflicting replace re-reads once and succeeds', async () => {
    const { kube, secrets } = setup();
    kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
    await secrets.resolve(params(), claim, signal);
    kube.putSecret('apps', 'ceph-user', { key: b64(OTHER_KEY) });
    kube.fail('replaceSecret', apiError(409, 'Conflict'));
    await secrets.resolve(params(), claim, signal);
    assert.equal(unb64((await kube.readSecret('rbd-provisioner', managedName))?.data?.['userKey']), OTHER_KEY);
  });

  test('a Secret of that name kept by someone else is not touched', async () => {
    const { kube, secrets } = setup();
    kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
    kube.putSecret('rbd-provisioner', managedName, { userID: b64('x') }, { annotations: { [NODE_SECRET_ANNOTATIONS.provisioner]: 'another' } });
    await assert.rejects(secrets.resolve(params(), claim, signal), (e: unknown) => e instanceof NodeSecretError && e.reason === 'NodeSecretNotOurs');
    assert.equal(unb64((await kube.readSecret('rbd-provisioner', managedName))?.data?.['userID']), 'x');
  });

  test('direct cases write nothing; the namespace defaults to the claim\'s', async () => {
    const { kube, secrets } = setup();
    kube.putSecret('apps', 'ceph-user', { userID: b64('kube'), userKey: b64(KEY) });
    assert.deepEqual(await secrets.resolve(params(), claim, signal), source);
    assert.deepEqual(kube.calls, ['readSecretData']);
  });

  test('unreadable (403): NodeSecretForbidden naming the Secret and RBAC', async () => {
    const { kube, secrets } = setup();
    kube.fail('readSecretData', apiError(403, 'Forbidden'));
    await assert.rejects(secrets.resolve(params({ userSecretNamespace: 'ceph' }), claim, signal), (e: unknown) => {
      assert.ok(e instanceof NodeSecretError && e.reason === 'NodeSecretForbidden', String(e));
      assert.match(e.message, /^node secret ceph\/ceph-user .*access denied .*RBAC.*fix: grant it "get" on that Secret/);
      return true;
    });
  });

  test('no right to create the managed Secret (403): NodeSecretForbidden naming the namespace', async () => {
    const { kube, secrets } = setup();
    kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
    kube.fail('createSecret', apiError(403, 'Forbidden'));
    await assert.rejects(secrets.resolve(params(), claim, signal), /may not create Secrets in its namespace rbd-provisioner/);
  });

  test('other API errors pass through (the controller retries them as transient)', async () => {
    const { kube, secrets } = setup();
    kube.fail('readSecretData', apiError(503, 'ServiceUnavailable'));
    await assert.rejects(secrets.resolve(params(), claim, signal), (e: unknown) => !(e instanceof NodeSecretError));
  });

  test('with cacheTtlMs, a burst resolves a user Secret once; a failure is not kept', async () => {
    const kube = new FakeKube();
    const secrets = new NodeSecrets({ kube, provisionerName: base.provisionerName, namespace: 'rbd-provisioner', logger: { info: () => undefined }, cacheTtlMs: 60_000 });
    kube.fail('readSecretData', apiError(503, 'ServiceUnavailable'));
    await assert.rejects(secrets.resolve(params(), claim, signal));
    kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
    kube.calls.length = 0;
    const refs = await Promise.all(Array.from({ length: 5 }, () => secrets.resolve(params(), claim, signal)));
    assert.ok(refs.every((ref) => ref?.name === managedName));
    assert.deepEqual(kube.calls.filter((c) => c === 'readSecretData'), ['readSecretData'], 'one read for five claims');
    await secrets.resolve(params({ userId: 'other' }), claim, signal);
    assert.equal(kube.calls.filter((c) => c === 'readSecretData').length, 2, 'another user is resolved on its own');
  });

  test('a class without a user Secret (volumeSource rbd): none, nothing read', async () => {
    const { kube, secrets } = setup();
    const rbdParams = parseClassParameters({ monitors: '192.0.2.1:6789', adminSecretName: 'ceph-admin', volumeSource: 'rbd' });
    assert.equal(await secrets.resolve(rbdParams, claim, signal), undefined);
    assert.deepEqual(kube.calls, []);
  });

  describe('refreshFor: at attach, the copy a PV names catches up with its source', () => {
    const volumeNaming = (ref: { namespace: string; name: string }): V1PersistentVolume => ({
      metadata: { name: 'pvc-u' },
      spec: { csi: { driver: 'rbd.csi.ceph.com', volumeHandle: 'pvc-u', nodeStageSecretRef: ref } },
    });

    test('a key rotated in the source Secret is copied; an up-to-date copy is not written', async () => {
      const { kube, secrets } = setup();
      kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
      const ref = (await secrets.resolve(params(), claim, signal))!;
      kube.calls.length = 0;
      await secrets.refreshFor(volumeNaming(ref), signal);
      assert.ok(!kube.calls.includes('replaceSecret'), 'nothing changed: nothing written');
      kube.putSecret('apps', 'ceph-user', { key: b64(OTHER_KEY) });
      await secrets.refreshFor(volumeNaming(ref), signal);
      assert.equal(unb64((await kube.readSecret('rbd-provisioner', managedName))?.data?.['userKey']), OTHER_KEY);
    });

    test('a PV naming a user Secret directly, or a copy that is gone or not ours: nothing read beyond it, nothing written', async () => {
      const { kube, secrets } = setup();
      await secrets.refreshFor(volumeNaming({ namespace: 'apps', name: 'ceph-user' }), signal);
      assert.deepEqual(kube.calls, [], 'a direct Secret is the user\'s own');
      await secrets.refreshFor(volumeNaming({ namespace: 'rbd-provisioner', name: managedName }), signal);
      assert.deepEqual(kube.calls, ['readSecret'], 'a copy that is gone has nothing to copy from');
      kube.putSecret('rbd-provisioner', managedName, { userID: b64('kube'), userKey: b64(KEY) });
      kube.calls.length = 0;
      await secrets.refreshFor(volumeNaming({ namespace: 'rbd-provisioner', name: managedName }), signal);
      assert.deepEqual(kube.calls, ['readSecret'], 'a Secret without our annotations is not ours');
    });

    test('a source Secret gone since: NodeSecretNotFound, the copy kept as it is', async () => {
      const { kube, secrets } = setup();
      kube.putSecret('apps', 'ceph-user', { key: b64(KEY) });
      const ref = (await secrets.resolve(params(), claim, signal))!;
      kube.deleteSecret('apps', 'ceph-user');
      await assert.rejects(secrets.refreshFor(volumeNaming(ref), signal), (e: unknown) => e instanceof NodeSecretError && e.reason === 'NodeSecretNotFound');
      assert.equal(unb64((await kube.readSecret('rbd-provisioner', managedName))?.data?.['userKey']), KEY);
    });
  });
});

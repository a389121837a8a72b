// Node credentials (issue 10, test 4): for a class whose userId is a cephx user with only `profile rbd` on the pool,
// the Secret each PV names in nodeStageSecretRef, read by ceph-csi's documented rules (test/support/ceph-csi.ts),
// opens the PV's image read-write as that user; with a legacy Secret (`key` only) and with a ceph-csi-format one. A
// missing user Secret fails the claim at provision time, with an event that says how to fix it, and leaves no image.
// A key rotated later reaches the managed copy at the next attach.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { Cluster, PermissionDenied } from '../../src/ceph/index.js';
import { cephCsiNodeCredentials, decodeSecretData } from '../support/ceph-csi.js';
import type { ControllerProcess } from '../support/controller.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { ignoreNotFound, waitFor } from '../support/kube.js';

let e2e: E2e;
let controller: ControllerProcess;
/** A cephx user of this file's own, with only what ceph-csi's node plugin needs on the test pool. */
let nodeUser: string;
let nodeKey: string;

before(async () => {
  e2e = await setupE2e('creds');
  nodeUser = `e2e-node-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`;
  await e2e.ceph.ceph(['auth', 'get-or-create', `client.${nodeUser}`, 'mon', 'profile rbd', 'osd', `profile rbd pool=${e2e.poolName}`]);
  nodeKey = (await e2e.ceph.ceph(['auth', 'get-key', `client.${nodeUser}`])).trim();
  controller = await e2e.startController();
});

after(async () => {
  await e2e?.cleanup();
  if (nodeUser !== undefined) await e2e?.ceph.ceph(['auth', 'rm', `client.${nodeUser}`]);
});

async function createSecret(name: string, type: string, stringData: Record<string, string>): Promise<void> {
  await e2e.core.createNamespacedSecret({ namespace: e2e.namespace, body: { metadata: { name }, type, stringData } });
}

/** The class: admin creates the image, the node user maps it (the retired provisioner's parameters). */
function nodeClass(userSecretName: string): Record<string, string> {
  return { ...e2e.baseParameters(), userId: nodeUser, userSecretName, userSecretNamespace: e2e.namespace };
}

/** What ceph-csi's node plugin would authenticate with for this PV. */
async function nodeCredentialsOf(pv: V1PersistentVolume): Promise<{ user: string; key: string; secret: { namespace: string; name: string } }> {
  const ref = pv.spec?.csi?.nodeStageSecretRef;
  assert.ok(ref?.name && ref.namespace, `PV ${pv.metadata?.name} names no nodeStageSecretRef`);
  const secret = await e2e.core.readNamespacedSecret({ namespace: ref.namespace, name: ref.name });
  return { ...cephCsiNodeCredentials(decodeSecretData(secret.data)), secret: { namespace: ref.namespace, name: ref.name } };
}

/** Opens the PV's image as user/key through our Ceph API, writes metadata and reads it back. */
async function writeAndReadAs(user: string, key: string, pv: V1PersistentVolume): Promise<void> {
  const cluster = await Cluster.connect({ monitors: e2e.ceph.monHost, user, key });
  try {
    const pool = await cluster.openPool(pv.spec!.csi!.volumeAttributes!['pool']!);
    try {
      const token = randomBytes(8).toString('hex');
      const read = await pool.withImage(pv.spec!.csi!.volumeHandle, async (image) => {
        await image.setMetadata('e2e.node-credentials', token);
        return image.getMetadata('e2e.node-credentials');
      });
      assert.equal(read, token);
    } finally {
      await pool.close();
    }
  } finally {
    await cluster.close();
  }
}

describe('node credentials', () => {
  test('a legacy Secret (`key` only) for a non-admin userId: the PV names a Secret that opens the image as that user', async () => {
    const legacy = 'node-legacy';
    await createSecret(legacy, 'kubernetes.io/rbd', { key: nodeKey });
    // The legacy Secret itself would make ceph-csi connect as client.admin with the node user's key: refused.
    const asIs = cephCsiNodeCredentials({ key: nodeKey });
    assert.deepEqual(asIs, { user: 'admin', key: nodeKey });
    await assert.rejects(Cluster.connect({ monitors: e2e.ceph.monHost, user: asIs.user, key: asIs.key }).then((c) => c.close()),
      (err: unknown) => err instanceof PermissionDenied, 'client.admin with the node user\'s key must be refused');

    const claim = await e2e.createClaim(await e2e.createClass(nodeClass(legacy)));
    const pv = await e2e.waitBound(claim.metadata!.name!);
    const credentials = await nodeCredentialsOf(pv);
    assert.equal(credentials.user, nodeUser);
    assert.equal(credentials.key, nodeKey);
    assert.notEqual(credentials.secret.name, legacy, 'a managed Secret, not the legacy one');
    assert.equal(credentials.secret.namespace, e2e.namespace, "in the controller's namespace (its Lease's)");
    const managed = await e2e.core.readNamespacedSecret({ namespace: credentials.secret.namespace, name: credentials.secret.name });
    assert.equal(managed.metadata?.labels?.['app.kubernetes.io/managed-by'], 'rbd-provisioner');
    assert.equal(managed.metadata?.annotations?.['rbd.provisioner.ceph.io/source-secret'], `${e2e.namespace}/${legacy}`);
    assert.equal(managed.metadata?.annotations?.['rbd.provisioner.ceph.io/user'], nodeUser);
    assert.ok(!JSON.stringify(managed.metadata).includes(nodeKey));
    await writeAndReadAs(credentials.user, credentials.key, pv);

    // A second claim of the class reuses the same managed Secret.
    const second = await e2e.createClaim(await e2e.createClass(nodeClass(legacy)));
    assert.deepEqual((await e2e.waitBound(second.metadata!.name!)).spec?.csi?.nodeStageSecretRef, pv.spec?.csi?.nodeStageSecretRef);
  });

  test('a ceph-csi-format Secret (userID, userKey) naming the userId: the PV names it as it is', async () => {
    const csiFormat = 'node-csi-format';
    await createSecret(csiFormat, 'Opaque', { userID: nodeUser, userKey: nodeKey });
    const claim = await e2e.createClaim(await e2e.createClass(nodeClass(csiFormat)));
    const pv = await e2e.waitBound(claim.metadata!.name!);
    const credentials = await nodeCredentialsOf(pv);
    assert.deepEqual(credentials.secret, { namespace: e2e.namespace, name: csiFormat });
    assert.equal(credentials.user, nodeUser);
    assert.equal(credentials.key, nodeKey);
    await writeAndReadAs(credentials.user, credentials.key, pv);
  });

  test('a missing user Secret: ProvisioningFailed naming the Secret, the field and the fix; no image', async () => {
    const missing = 'no-such-node-secret';
    const claim = await e2e.createClaim(await e2e.createClass(nodeClass(missing)));
    const name = claim.metadata!.name!;
    const event = await e2e.waitEvent(name, 'ProvisioningFailed');
    assert.equal(event.type, 'Warning');
    const message = event.message ?? '';
    assert.ok(message.includes(`node secret ${e2e.namespace}/${missing}`), message);
    assert.ok(message.includes('data key "key"'), message);
    assert.ok(message.includes(
      `fix: kubectl -n ${e2e.namespace} create secret generic ${missing} --type=kubernetes.io/rbd --from-literal=key="$(ceph auth get-key client.${nodeUser})"`,
    ), message);
    assert.equal((await e2e.readClaim(name))?.status?.phase, 'Pending');
    const image = `pvc-${claim.metadata!.uid}`;
    assert.ok(!(await e2e.images()).includes(image), 'no image');
    assert.ok(!(await e2e.pool.listTrash()).some((entry) => entry.name === image), 'nothing in the trash');
  });

  // A key rotated in Ceph and in the legacy Secret reaches the managed copy at the next attach, right before the node
  // stages the volume: the PV made with the old key still mounts. (A user of its own: rotating nodeUser's key would
  // change what the other tests check.)
  test('a key rotated since the PV was made reaches the managed copy at the next attach', async () => {
    const user = `${nodeUser}-rot`;
    const caps = ['mon', 'profile rbd', 'osd', `profile rbd pool=${e2e.poolName}`];
    const attachment = `csi-rotate-${randomBytes(4).toString('hex')}`;
    try {
      await e2e.ceph.ceph(['auth', 'get-or-create', `client.${user}`, ...caps]);
      const oldKey = (await e2e.ceph.ceph(['auth', 'get-key', `client.${user}`])).trim();
      await createSecret('node-rotate', 'kubernetes.io/rbd', { key: oldKey });
      const claim = await e2e.createClaim(await e2e.createClass({ ...nodeClass('node-rotate'), userId: user }));
      const pv = await e2e.waitBound(claim.metadata!.name!);
      assert.equal((await nodeCredentialsOf(pv)).key, oldKey);

      await e2e.ceph.ceph(['auth', 'rm', `client.${user}`]);
      await e2e.ceph.ceph(['auth', 'get-or-create', `client.${user}`, ...caps]);
      const newKey = (await e2e.ceph.ceph(['auth', 'get-key', `client.${user}`])).trim();
      assert.notEqual(newKey, oldKey);
      await e2e.core.replaceNamespacedSecret({
        namespace: e2e.namespace, name: 'node-rotate',
        body: { metadata: { name: 'node-rotate' }, type: 'kubernetes.io/rbd', stringData: { key: newKey } },
      });

      // What kube-controller-manager's attach-detach controller creates when a Pod using the claim is scheduled.
      await e2e.storage.createVolumeAttachment({
        body: { metadata: { name: attachment }, spec: { attacher: 'rbd.csi.ceph.com', nodeName: 'e2e-creds-node', source: { persistentVolumeName: pv.metadata!.name! } } },
      });
      await waitFor(`VolumeAttachment ${attachment} attached`, async () => ((await e2e.storage.readVolumeAttachment({ name: attachment })).status?.attached ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
      const credentials = await nodeCredentialsOf(pv);
      assert.equal(credentials.user, user);
      assert.equal(credentials.key, newKey, 'the copy holds the rotated key');
      await writeAndReadAs(credentials.user, credentials.key, pv);
      assert.ok(!controller.output().includes(newKey) && !controller.output().includes(oldKey), 'no key in controller output');
    } finally {
      await ignoreNotFound(e2e.storage.deleteVolumeAttachment({ name: attachment }));
      await e2e.ceph.ceph(['auth', 'rm', `client.${user}`]).catch(() => undefined);
    }
  });

  test('the node key appears in no controller output and no event', async () => {
    assert.ok(controller.output().length > 0);
    assert.ok(!controller.output().includes(nodeKey), 'key in controller output');
    const events = (await e2e.core.listNamespacedEvent({ namespace: e2e.namespace })).items;
    assert.ok(events.length > 0);
    for (const event of events) assert.ok(!JSON.stringify(event).includes(nodeKey), `key in event ${event.reason}`);
  });
});

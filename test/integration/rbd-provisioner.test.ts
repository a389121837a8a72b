// The RBD provisioner against real Ceph: the controller is not involved, the secret reader is a function.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ConnectionPool, type Pool } from '../../src/ceph/index.js';
import { DeleteError, ProvisionError } from '../../src/controllers/provision/errors.js';
import { ResizeError } from '../../src/controllers/resize/resizer.js';
import { DELETING_KEY, OWNER_KEYS, PV_MAY_EXIST_KEY, RbdProvisioner, SecretError } from '../../src/rbd/provisioner.js';
import { kubeSecretReader } from '../../src/rbd/secrets.js';
import { openTestPool, type CephTestCluster, type OpenTestPool } from '../support/ceph.js';

const MiB = 2 ** 20;
let ceph: CephTestCluster;
let pool: Pool;
let fixture: OpenTestPool;
const connections = new ConnectionPool({ idleMs: 1000 });
const quiet = { info() {}, warn() {}, debug() {} };
/** The class's user Secret as it is (node-secret.ts is tested on its own). */
const asIs = async () => undefined;
const signal = new AbortController().signal;

let provisioner: RbdProvisioner;

before(async () => {
  fixture = await openTestPool('prov');
  ({ ceph, pool } = fixture);
  provisioner = newProvisioner();
});

function newProvisioner(): RbdProvisioner {
  return new RbdProvisioner({
    name: 'test.rbd.provisioner',
    nodeStageSecret: asIs,
    connections,
    logger: quiet,
    readSecret: async (ref) => {
      if (ref.name !== 'ceph-admin') throw new SecretError(`secret ${ref.namespace}/${ref.name} not found`);
      return ceph.adminKey;
    },
  });
}

after(async () => {
  await provisioner?.drain();
  await connections.close();
  await fixture?.close();
});

function storageClass(parameters: Record<string, string> = {}): V1StorageClass {
  return {
    metadata: { name: 'fast' },
    provisioner: 'test.rbd.provisioner',
    parameters: {
      monitors: ceph.monHost, adminId: 'admin', adminSecretName: 'ceph-admin', adminSecretNamespace: 'ceph',
      pool: pool.name, userSecretName: 'ceph-user', ...parameters,
    },
  };
}

function claim(size = '10Mi', uid = randomUUID()): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'data', namespace: 'app', uid },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  };
}

const request = (c: V1PersistentVolumeClaim, sc = storageClass()) => ({ pvName: `pvc-${c.metadata!.uid}`, claim: c, storageClass: sc });
const boundTo = (pv: V1PersistentVolume, c: V1PersistentVolumeClaim): V1PersistentVolume =>
  ({ ...pv, metadata: { ...pv.metadata, name: `pvc-${c.metadata!.uid}` }, spec: { ...pv.spec, claimRef: { uid: c.metadata!.uid!, name: 'data', namespace: 'app' } } });

describe('provision', () => {
  test('creates a tagged image of the rounded-up size and returns its PV', async () => {
    const c = claim('1500Ki');
    const pv = await provisioner.provision(request(c), signal);
    const image = `pvc-${c.metadata!.uid}`;
    assert.equal(pv.spec?.capacity?.['storage'], '2Mi');
    assert.equal(pv.spec?.csi?.volumeHandle, image);
    await pool.withImage(image, async (img) => {
      assert.equal((await img.stat()).size, 2 * MiB);
      const meta = await img.listMetadata();
      assert.equal(meta[OWNER_KEYS.claimUid], c.metadata!.uid);
      assert.equal(meta[OWNER_KEYS.provisioner], 'test.rbd.provisioner');
    }, { readOnly: true });
  });

  test('a retry finds the image and adopts it; one image only', async () => {
    const c = claim();
    const first = await provisioner.provision(request(c), signal);
    const second = await provisioner.provision(request(c), signal);
    assert.deepEqual(second.spec, first.spec);
    assert.equal((await pool.listImages()).filter((n) => n.includes(c.metadata!.uid!)).length, 1);
  });

  test('an image created but never tagged (crash in between) is adopted and tagged', async () => {
    const c = claim();
    await pool.createImage(`pvc-${c.metadata!.uid}`, 10 * MiB);
    await provisioner.provision(request(c), signal);
    const uid = await pool.withImage(`pvc-${c.metadata!.uid}`, (img) => img.getMetadata(OWNER_KEYS.claimUid), { readOnly: true });
    assert.equal(uid, c.metadata!.uid);
  });

  test('an image of another claim under our name is never touched', async () => {
    const c = claim();
    const image = `pvc-${c.metadata!.uid}`;
    await pool.createImage(image, 10 * MiB);
    await pool.withImage(image, (img) => img.setMetadata(OWNER_KEYS.claimUid, 'someone-else'));
    const err = await provisioner.provision(request(c), signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ProvisionError && err.kind === 'final' && err.reason === 'ImageNotOurs', String(err));
    assert.equal(await pool.withImage(image, (img) => img.getMetadata(OWNER_KEYS.claimUid)), 'someone-else');
  });

  test('input errors are final and name the field; nothing is created', async () => {
    const cases: [V1StorageClass, V1PersistentVolumeClaim, string, RegExp][] = [
      [storageClass({ imageFeatures: 'warp' }), claim(), 'InvalidParameter', /"imageFeatures"/],
      [storageClass({ pool: 'no-such-pool' }), claim(), 'PoolNotFound', /pool does not exist/],
      [storageClass({ adminSecretName: 'nope' }), claim(), 'SecretUnavailable', /ceph\/nope not found/],
      [storageClass(), claim('lots'), 'InvalidClaim', /spec\.resources\.requests\.storage/],
    ];
    const before = await pool.listImages();
    for (const [sc, c, reason, message] of cases) {
      const err = await provisioner.provision(request(c, sc), signal).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ProvisionError, String(err));
      assert.equal(err.kind, 'final');
      assert.equal(err.reason, reason);
      assert.match(err.message, message);
      assert.ok(!err.message.includes(ceph.adminKey));
    }
    assert.deepEqual(await pool.listImages(), before);
  });

  test('an empty pool is refused, naming the field and what it allows; nothing is created in pool "rbd"', async () => {
    const c = claim();
    const err = await provisioner.provision(request(c, storageClass({ pool: '' })), signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ProvisionError, String(err));
    assert.equal(err.kind, 'final');
    assert.equal(err.reason, 'InvalidParameter');
    assert.match(err.message, /^StorageClass parameter "pool": empty; leave the key out for the default "rbd"; allowed: .*a pool name/);
    const rbdPool = await fixture.cluster.openPool('rbd');
    try {
      assert.ok(!(await rbdPool.listImages()).includes(`pvc-${c.metadata!.uid}`));
    } finally {
      await rbdPool.close();
    }
  });

  test('a missing RADOS namespace is reported as such, naming pool and namespace; a created one works', async () => {
    const namespace = `ns-${randomUUID().slice(0, 8)}`;
    const missing = await provisioner.provision(request(claim(), storageClass({ radosNamespace: namespace })), signal)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(missing instanceof ProvisionError, String(missing));
    assert.equal(missing.kind, 'final');
    assert.equal(missing.reason, 'NamespaceNotFound');
    assert.match(missing.message, new RegExp(`RADOS namespace "${namespace}" does not exist in pool "${pool.name}"`));
    assert.doesNotMatch(missing.message, /data pool/);

    await ceph.rbd(['namespace', 'create', `${pool.name}/${namespace}`]);
    const c = claim();
    const pv = await provisioner.provision(request(c, storageClass({ radosNamespace: namespace })), signal);
    assert.equal(pv.spec?.csi?.volumeAttributes?.['radosNamespace'], namespace);
    const inNamespace = await fixture.cluster.openPool(pool.name, namespace);
    try {
      assert.ok((await inNamespace.listImages()).includes(`pvc-${c.metadata!.uid}`));
      await inNamespace.removeImage(`pvc-${c.metadata!.uid}`);
    } finally {
      await inNamespace.close();
    }
  });

  test('a missing data pool is reported as such', async () => {
    const dataPool = `missing-${randomUUID().slice(0, 8)}`;
    const err = await provisioner.provision(request(claim(), storageClass({ dataPool })), signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ProvisionError && err.kind === 'final' && err.reason === 'PoolNotFound', String(err));
    assert.match(err.message, new RegExp(`data pool "${dataPool}" does not exist`));
  });

  test('a Secret whose key is not a cephx key: final, naming the Secret, never the key', async () => {
    for (const key of ['not-a-cephx-key', ceph.adminKey.slice(0, -4), `[client.admin]\n\tkey = ${ceph.adminKey}`]) {
      const secrets = { readSecretData: async () => ({ key: Buffer.from(key).toString('base64') }) };
      const withBadKey = new RbdProvisioner({ name: 'test.rbd.provisioner', nodeStageSecret: asIs, connections, logger: quiet, readSecret: kubeSecretReader(secrets) });
      const c = claim();
      const err = await withBadKey.provision(request(c), signal).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ProvisionError, String(err));
      assert.equal(err.kind, 'final');
      assert.equal(err.reason, 'InvalidSecret');
      assert.match(err.message, /^secret ceph\/ceph-admin: its key is malformed/);
      assert.ok(!err.message.includes(key) && !err.message.includes(ceph.adminKey.slice(4, 30)), err.message);
      assert.ok(!(await pool.listImages()).includes(`pvc-${c.metadata!.uid}`));
    }
  });

  test('monitors that do not answer: the error names "monitors" and the addresses, and stays a timeout', async () => {
    // Port 9 (discard) on loopback: nothing listens there, as with a closed monitor port.
    const unreachable = new ConnectionPool({ idleMs: 1000, timeouts: { mount: 2 } });
    try {
      const p = new RbdProvisioner({ name: 'test.rbd.provisioner', nodeStageSecret: asIs, connections: unreachable, logger: quiet, readSecret: async () => ceph.adminKey });
      const err = await p.provision(request(claim(), storageClass({ monitors: 'v2:127.0.0.1:9' })), signal).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ProvisionError, String(err));
      // A create that timed out may still happen; a connect that did is retried the same way, under the same name.
      assert.equal(err.kind, 'in-progress');
      assert.equal(err.reason, 'Timeout');
      assert.match(err.message, /no monitor of "monitors" \(v2:127\.0\.0\.1:9\) answered within 2 s/);
      assert.ok(!err.message.includes(ceph.adminKey));
    } finally {
      await unreachable.close();
    }
  });

  test('a pool at its quota is refused before the create, as a transient error', async () => {
    const c = claim();
    await ceph.ceph(['osd', 'pool', 'set-quota', pool.name, 'max_objects', '1']);
    try {
      // Pool statistics reach the monitors a few seconds late: wait until they show the pool's objects.
      for (let i = 0; i < 100 && (await pool.usage()).objects < 1; i++) await new Promise((resolve) => setTimeout(resolve, 200));
      // A provisioner of its own: the shared one may still hold a reading of the pool's usage from before the quota
      // (pool usage is reused for a couple of seconds across creates).
      const err = await newProvisioner().provision(request(c), signal).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ProvisionError && err.kind === 'transient' && err.reason === 'PoolQuotaReached', String(err));
    } finally {
      await ceph.ceph(['osd', 'pool', 'set-quota', pool.name, 'max_objects', '0']);
    }
  });

  test('after the signal is aborted no Ceph call is made', async () => {
    const aborted = AbortSignal.abort(new Error('lost the lease'));
    const c = claim();
    await assert.rejects(provisioner.provision(request(c), aborted), /lost the lease/);
    assert.ok(!(await pool.listImages()).includes(`pvc-${c.metadata!.uid}`));
  });
});

describe('expand', () => {
  const imageSize = (name: string) => pool.withImage(name, async (img) => (await img.stat()).size, { readOnly: true });
  const expandOf = (pv: V1PersistentVolume, c: V1PersistentVolumeClaim, size: string) =>
    provisioner.expand({ volume: boundTo(pv, c), claimUid: c.metadata!.uid!, size }, signal);

  test('grows the image to the size rounded up to whole MiB; the capacity is the rounded size', async () => {
    const c = claim('10Mi');
    const pv = await provisioner.provision(request(c), signal);
    const result = await expandOf(pv, c, '20000Ki');
    assert.deepEqual(result, { capacity: '20Mi', grown: true });
    assert.equal(await imageSize(`pvc-${c.metadata!.uid}`), 20 * MiB);
  });

  test('a retry (image already grown) does not grow again; a smaller size never shrinks it', async () => {
    const c = claim('10Mi');
    const pv = await provisioner.provision(request(c), signal);
    assert.equal((await expandOf(pv, c, '30Mi')).grown, true);
    assert.deepEqual(await expandOf(pv, c, '30Mi'), { capacity: '30Mi', grown: false });
    assert.deepEqual(await expandOf(pv, c, '20Mi'), { capacity: '30Mi', grown: false });
    assert.equal(await imageSize(`pvc-${c.metadata!.uid}`), 30 * MiB);
  });

  test('an image whose metadata names another claim is never resized: infeasible', async () => {
    const c = claim('10Mi');
    const pv = await provisioner.provision(request(c), signal);
    const image = `pvc-${c.metadata!.uid}`;
    await pool.withImage(image, (img) => img.setMetadata(OWNER_KEYS.claimUid, 'someone-else'));
    const err = await expandOf(pv, c, '20Mi').then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ResizeError && err.kind === 'infeasible' && err.reason === 'ImageNotOurs', String(err));
    assert.equal(await imageSize(image), 10 * MiB);
  });

  test('a pool quota smaller than the new size: transient, naming the quota; the image keeps its size', async () => {
    const c = claim('10Mi');
    const pv = await provisioner.provision(request(c), signal);
    await ceph.ceph(['osd', 'pool', 'set-quota', pool.name, 'max_bytes', String(15 * MiB)]);
    try {
      // The quota reaches the client through the OSD map: wait until the pool shows it.
      for (let i = 0; i < 100 && (await pool.usage()).quotaMaxBytes === 0; i++) await new Promise((resolve) => setTimeout(resolve, 200));
      const err = await expandOf(pv, c, '20Mi').then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ResizeError && err.kind === 'transient' && err.reason === 'PoolQuotaTooSmall', String(err));
      assert.match((err as Error).message, /quota of 15728640 bytes \(15Mi\)/);
      assert.equal(await imageSize(`pvc-${c.metadata!.uid}`), 10 * MiB);
    } finally {
      await ceph.ceph(['osd', 'pool', 'set-quota', pool.name, 'max_bytes', '0']);
    }
  });

  test('a missing image is infeasible, naming it', async () => {
    const c = claim('10Mi');
    const pv = await provisioner.provision(request(c), signal);
    await pool.removeImage(`pvc-${c.metadata!.uid}`);
    const err = await expandOf(pv, c, '20Mi').then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ResizeError && err.kind === 'infeasible' && err.reason === 'ImageNotFound', String(err));
  });
});

describe('delete', () => {
  async function provisioned() {
    const c = claim();
    const pv = boundTo(await provisioner.provision(request(c), signal), c);
    return { c, pv, image: pv.metadata!.name! };
  }

  test('removes the image; a second delete (image gone) succeeds too', async () => {
    const { pv, image } = await provisioned();
    await provisioner.delete(pv, signal);
    assert.ok(!(await pool.listImages()).includes(image));
    await provisioner.drain();
    assert.ok(!(await pool.listTrash()).some((e) => e.name === image), 'purged from the trash in the background');
    await provisioner.delete(pv, signal);
  });

  test('an image with a watcher is kept: DeleteError in-use', async () => {
    const { pv, image } = await provisioned();
    const held = await pool.openImage(image);
    try {
      const err = await provisioner.delete(pv, signal).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof DeleteError && err.kind === 'in-use', String(err));
      assert.ok((await pool.listImages()).includes(image));
    } finally {
      await held.close();
    }
    await provisioner.delete(pv, signal);
  });

  test('an image with snapshots is kept and its snapshots are not purged: DeleteError has-snapshots', async () => {
    const { pv, image } = await provisioned();
    await pool.withImage(image, (img) => img.createSnapshot('keep-me'));
    const err = await provisioner.delete(pv, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeleteError && err.kind === 'has-snapshots', String(err));
    assert.match(err.message, /has 1 snapshot\(s\)/);
    assert.deepEqual((await pool.withImage(image, (img) => img.listSnapshots())).map((s) => s.name), ['keep-me']);
    await pool.withImage(image, (img) => img.removeSnapshot('keep-me'));
    await provisioner.delete(pv, signal);
  });

  test('an image that belongs to another claim is not removed', async () => {
    const { pv, image } = await provisioned();
    const other = { ...pv, spec: { ...pv.spec, claimRef: { ...pv.spec!.claimRef, uid: randomUUID() } } };
    const err = await provisioner.delete(other, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeleteError && err.reason === 'ImageNotOurs', String(err));
    assert.ok((await pool.listImages()).includes(image));
    await provisioner.delete(pv, signal);
  });

  test('a PV without our annotations is a final error naming the annotation', async () => {
    const err = await provisioner.delete({ metadata: { name: 'x' }, spec: {} }, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeleteError && err.kind === 'final', String(err));
    assert.match(err.message, /rbd\.provisioner\.ceph\.io\/monitors/);
  });
});

describe('owned volumes (orphan collection)', () => {
  // A provisioner that "crashes" right after creating and tagging the image, before provision() can return the PV.
  const crashing = (): RbdProvisioner => new RbdProvisioner({
    name: 'test.rbd.provisioner',
    nodeStageSecret: asIs,
    connections,
    logger: quiet,
    readSecret: async () => ceph.adminKey,
    afterImageCreated: () => {
      throw new Error('test: crashed after creating the image');
    },
  });
  const location = () => {
    const locations = provisioner.volumeLocations([storageClass(), storageClass({ imageFeatures: 'layering' })]);
    assert.equal(locations.length, 1, 'classes differing only in image options share one location');
    return locations[0]!;
  };

  test('lists unrecorded images, images whose PV may exist, and our trash leftovers; collects only the first and the last', async () => {
    const crashed = claim();
    await assert.rejects(crashing().provision(request(crashed), signal), /crashed after creating the image/);
    const provisioned = claim();
    await provisioner.provision(request(provisioned), signal);
    // A delete interrupted between the trash move and the purge.
    const trashed = claim();
    await provisioner.provision(request(trashed), signal);
    const trashedImage = `pvc-${trashed.metadata!.uid}`;
    await pool.withImage(trashedImage, (img) => img.setMetadata(DELETING_KEY, 'true'));
    await pool.moveToTrash(trashedImage);
    await pool.createImage('not-ours', MiB);

    const owned = await provisioner.listOwnedVolumes(location(), signal);
    const find = (c: V1PersistentVolumeClaim) => owned.find((v) => v.claimUid === c.metadata!.uid);
    assert.equal(find(crashed)?.state, 'unrecorded');
    assert.equal(find(crashed)?.pvName, `pvc-${crashed.metadata!.uid}`);
    assert.equal(find(crashed)?.claimNamespace, 'app');
    assert.equal(find(crashed)?.claimName, 'data');
    assert.equal(find(crashed)?.location, location().id);
    assert.equal(find(provisioned)?.state, 'pv-may-exist');
    assert.equal(find(trashed)?.state, 'deleting');
    assert.equal(find(trashed)?.pvName, trashedImage);
    assert.ok(!owned.some((v) => v.pvName === 'not-ours'));

    const refused = await provisioner.deleteOwnedVolume(find(provisioned)!, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof DeleteError && refused.reason === 'PvMayExist', String(refused));
    await provisioner.deleteOwnedVolume(find(crashed)!, signal);
    await provisioner.deleteOwnedVolume(find(trashed)!, signal);
    await provisioner.drain();
    const images = await pool.listImages();
    assert.ok(!images.includes(`pvc-${crashed.metadata!.uid}`));
    assert.ok(images.includes(`pvc-${provisioned.metadata!.uid}`));
    assert.ok(!(await pool.listTrash()).some((e) => e.name === trashedImage));
    await pool.removeImage('not-ours');
    await pool.removeImage(`pvc-${provisioned.metadata!.uid}`);
  });

  test('provision records that a PV may exist before it returns the PV, also when it adopts', async () => {
    const c = claim();
    await assert.rejects(crashing().provision(request(c), signal));
    const image = `pvc-${c.metadata!.uid}`;
    const read = () => pool.withImage(image, (img) => img.listMetadata(), { readOnly: true });
    assert.equal((await read())[PV_MAY_EXIST_KEY], undefined);
    await provisioner.provision(request(c), signal);
    assert.equal((await read())[PV_MAY_EXIST_KEY], 'true');
    await pool.removeImage(image);
  });

  test('an unrecorded volume given a record is no longer collectable', async () => {
    const c = claim();
    await assert.rejects(crashing().provision(request(c), signal));
    const before = (await provisioner.listOwnedVolumes(location(), signal)).find((v) => v.claimUid === c.metadata!.uid)!;
    assert.equal(before.state, 'unrecorded');
    await provisioner.recordVolumeHasPv(before, signal);
    const after = (await provisioner.listOwnedVolumes(location(), signal)).find((v) => v.claimUid === c.metadata!.uid)!;
    assert.equal(after.state, 'pv-may-exist');
    // A stale listing that still says "unrecorded" cannot make it go either.
    const refused = await provisioner.deleteOwnedVolume(before, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof DeleteError && refused.reason === 'PvMayExist', String(refused));
    await pool.removeImage(`pvc-${c.metadata!.uid}`);
  });

  test('a location whose pool is missing fails on its own with PoolNotFound', async () => {
    const [missing] = provisioner.volumeLocations([storageClass({ pool: `missing-${randomUUID().slice(0, 8)}` })]);
    const err = await provisioner.listOwnedVolumes(missing!, signal).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof DeleteError && err.reason === 'PoolNotFound', String(err));
  });

  test('a trash entry someone else moved there is never listed', async () => {
    const c = claim();
    const image = `pvc-${c.metadata!.uid}`;
    await provisioner.provision(request(c), signal);
    await pool.moveToTrash(image);
    const owned = await provisioner.listOwnedVolumes(location(), signal);
    assert.ok(!owned.some((v) => v.claimUid === c.metadata!.uid));
    const entry = (await pool.listTrash()).find((e) => e.name === image)!;
    assert.equal(entry.source, 'user');
    await pool.removeFromTrash(entry.id);
  });

  test('adopting an image whose tagging was interrupted completes the tags', async () => {
    const c = claim();
    const image = `pvc-${c.metadata!.uid}`;
    await pool.createImage(image, 10 * MiB);
    await pool.withImage(image, (img) => img.setMetadata(OWNER_KEYS.provisioner, 'test.rbd.provisioner'));
    await provisioner.provision(request(c), signal);
    const meta = await pool.withImage(image, (img) => img.listMetadata(), { readOnly: true });
    assert.equal(meta[OWNER_KEYS.claimUid], c.metadata!.uid);
    assert.equal(meta[OWNER_KEYS.pvName], image);
    assert.equal(meta[OWNER_KEYS.claimNamespace], 'app');
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  adminKubeConfig,
  createNamespace,
  ensureControlPlane,
  ignoreNotFound,
  objectState,
  uniqueName,
  waitFor,
  type TestNamespace,
} from '../support/kube.js';

const wait = { timeoutMs: 30_000, intervalMs: 200 };

describe('PV binder and protection controllers', () => {
  let core: k8s.CoreV1Api;
  let storage: k8s.StorageV1Api;
  let ns: TestNamespace;
  let className: string;
  const provisioner = 'rbd.test.invalid/control-plane';
  const createdVolumes: string[] = [];

  before(async () => {
    const kc = adminKubeConfig(await ensureControlPlane());
    core = kc.makeApiClient(k8s.CoreV1Api);
    storage = kc.makeApiClient(k8s.StorageV1Api);
    ns = await createNamespace(kc, 'cp-volumes');
    className = uniqueName('cp-class');
    await storage.createStorageClass({
      body: {
        metadata: { name: className },
        provisioner,
        reclaimPolicy: 'Retain',
        volumeBindingMode: 'Immediate',
        allowVolumeExpansion: true,
      },
    });
  });

  after(async () => {
    for (const name of createdVolumes) await ignoreNotFound(core.deletePersistentVolume({ name }));
    await ignoreNotFound(storage.deleteStorageClass({ name: className }));
    await ns.cleanup();
  });

  const readClaim = (name: string) => core.readNamespacedPersistentVolumeClaim({ name, namespace: ns.name });
  const readVolume = (name: string) => core.readPersistentVolume({ name });

  async function waitUntilGone(what: string, read: () => Promise<k8s.KubernetesObject>): Promise<void> {
    await waitFor(
      `${what} to be deleted`,
      async (observe) => {
        const obj = await ignoreNotFound(read());
        if (obj === undefined) return true;
        observe(objectState(obj));
        return undefined;
      },
      wait,
    );
  }

  /** Does what an external provisioner does: a claim, then a PV pre-bound to it. */
  async function createPreBoundPair(label: string): Promise<{ claim: string; volume: string }> {
    const claim = uniqueName(`${label}-claim`);
    const created = await core.createNamespacedPersistentVolumeClaim({
      namespace: ns.name,
      body: {
        metadata: { name: claim },
        spec: {
          storageClassName: className,
          accessModes: ['ReadWriteOnce'],
          volumeMode: 'Filesystem',
          resources: { requests: { storage: '1Gi' } },
        },
      },
    });
    const volume = `pvc-${created.metadata?.uid}`;
    createdVolumes.push(volume);
    await core.createPersistentVolume({
      body: {
        metadata: { name: volume, annotations: { 'pv.kubernetes.io/provisioned-by': provisioner } },
        spec: {
          storageClassName: className,
          accessModes: ['ReadWriteOnce'],
          volumeMode: 'Filesystem',
          capacity: { storage: '1Gi' },
          persistentVolumeReclaimPolicy: 'Retain',
          claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: ns.name, name: claim, uid: created.metadata?.uid },
          csi: { driver: 'rbd.test.invalid', volumeHandle: volume },
        },
      },
    });
    return { claim, volume };
  }

  async function waitUntilBound(pair: { claim: string; volume: string }): Promise<void> {
    await waitFor(
      `claim ${ns.name}/${pair.claim} and volume ${pair.volume} to be Bound`,
      async (observe) => {
        const [claim, volume] = await Promise.all([readClaim(pair.claim), readVolume(pair.volume)]);
        observe({ claim: objectState(claim), volume: objectState(volume) });
        const bound = claim.status?.phase === 'Bound' && volume.status?.phase === 'Bound' && claim.spec?.volumeName === pair.volume;
        return bound ? true : undefined;
      },
      wait,
    );
  }

  test('the binder marks an unbound claim of an external class for its provisioner', async () => {
    const claim = uniqueName('waiting-claim');
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns.name,
      body: {
        metadata: { name: claim },
        spec: { storageClassName: className, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    });
    const annotations = await waitFor(
      `claim ${claim} to be handed to provisioner ${provisioner}`,
      async (observe) => {
        const obj = await readClaim(claim);
        observe(objectState(obj));
        const found = obj.metadata?.annotations?.['volume.kubernetes.io/storage-provisioner'];
        return found === undefined ? undefined : obj.metadata?.annotations;
      },
      wait,
    );
    assert.equal(annotations?.['volume.kubernetes.io/storage-provisioner'], provisioner);
    assert.equal((await readClaim(claim)).status?.phase, 'Pending');
  });

  test('a claim and a PV pre-bound to it become Bound, with protection finalizers', async () => {
    const pair = await createPreBoundPair('bind');
    await waitUntilBound(pair);
    const [claim, volume] = await Promise.all([readClaim(pair.claim), readVolume(pair.volume)]);
    assert.equal(claim.metadata?.annotations?.['pv.kubernetes.io/bind-completed'], 'yes');
    assert.equal(volume.spec?.claimRef?.uid, claim.metadata?.uid);
    assert.deepEqual(claim.status?.capacity, { storage: '1Gi' });
    assert.ok(claim.metadata?.finalizers?.includes('kubernetes.io/pvc-protection'), 'claim lacks kubernetes.io/pvc-protection');
    assert.ok(volume.metadata?.finalizers?.includes('kubernetes.io/pv-protection'), 'volume lacks kubernetes.io/pv-protection');
  });

  test('deleting the claim of a Retain PV leaves the PV Released, and the PV can then be deleted', async () => {
    const pair = await createPreBoundPair('retain');
    await waitUntilBound(pair);
    await core.deleteNamespacedPersistentVolumeClaim({ name: pair.claim, namespace: ns.name });
    await waitUntilGone(`claim ${ns.name}/${pair.claim}`, () => readClaim(pair.claim));
    const released = await waitFor(
      `volume ${pair.volume} to be Released`,
      async (observe) => {
        const volume = await readVolume(pair.volume);
        observe(objectState(volume));
        return volume.status?.phase === 'Released' ? volume : undefined;
      },
      wait,
    );
    assert.equal(released.spec?.persistentVolumeReclaimPolicy, 'Retain');
    assert.equal(released.spec?.claimRef?.name, pair.claim);
    await core.deletePersistentVolume({ name: pair.volume });
    await waitUntilGone(`volume ${pair.volume}`, () => readVolume(pair.volume));
  });

  test('deleting a bound PV first keeps it until its claim is gone, then both go', async () => {
    const pair = await createPreBoundPair('both');
    await waitUntilBound(pair);
    await core.deletePersistentVolume({ name: pair.volume });
    // pv-protection holds a bound volume: it must still be there, marked for deletion.
    const held = await readVolume(pair.volume);
    assert.ok(held.metadata?.deletionTimestamp, 'volume has no deletionTimestamp');
    assert.equal(held.status?.phase, 'Bound');
    await core.deleteNamespacedPersistentVolumeClaim({ name: pair.claim, namespace: ns.name });
    await waitUntilGone(`claim ${ns.name}/${pair.claim}`, () => readClaim(pair.claim));
    await waitUntilGone(`volume ${pair.volume}`, () => readVolume(pair.volume));
  });
});

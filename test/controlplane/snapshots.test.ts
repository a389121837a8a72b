// The external-snapshotter's CRDs and its snapshot-controller (the cluster-wide half; the per-driver
// csi-snapshotter sidecar that would cut and delete the snapshot does not run here).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  adminKubeConfig,
  createBoundClaim,
  createNamespace,
  ensureControlPlane,
  ignoreNotFound,
  objectState,
  uniqueName,
  waitFor,
  type BoundClaim,
  type TestNamespace,
} from '../support/kube.js';

const wait = { timeoutMs: 30_000, intervalMs: 200 };
const group = 'snapshot.storage.k8s.io';
const version = 'v1';
const contentFinalizer = 'snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection';
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

interface SnapshotObject extends k8s.KubernetesObject {
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

describe('snapshot CRDs and snapshot-controller', () => {
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let custom: k8s.CustomObjectsApi;
  let ns: TestNamespace;
  const driver = `${uniqueName('snap')}.csi.test.invalid`;
  const className = uniqueName('cp-snapclass');
  const claims: BoundClaim[] = [];
  const snapshots: string[] = [];
  const contents: string[] = [];

  before(async () => {
    kc = adminKubeConfig(await ensureControlPlane());
    core = kc.makeApiClient(k8s.CoreV1Api);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    ns = await createNamespace(kc, 'cp-snapshots');
  });

  after(async () => {
    // Snapshots first: while one is not ready, the controller keeps a finalizer on its claim.
    for (const name of snapshots) await ignoreNotFound(custom.deleteNamespacedCustomObject(snapshotRef(name)));
    // Their contents are held for the driver side, which is not here: let go as it would have.
    for (const name of contents) await releaseContent(name);
    for (const name of snapshots) await waitUntilGone(`volumesnapshot ${ns.name}/${name}`, () => readSnapshot(name));
    for (const name of contents) await waitUntilGone(`volumesnapshotcontent ${name}`, () => readContent(name));
    await ns.cleanup();
    for (const { volume } of claims) await ignoreNotFound(core.deletePersistentVolume({ name: volume.metadata!.name! }));
    await ignoreNotFound(custom.deleteClusterCustomObject({ group, version, plural: 'volumesnapshotclasses', name: className }));
  });

  const snapshotRef = (name: string) => ({ group, version, namespace: ns.name, plural: 'volumesnapshots', name });
  const readSnapshot = async (name: string) => (await custom.getNamespacedCustomObject(snapshotRef(name))) as SnapshotObject;
  const readContent = async (name: string) =>
    (await custom.getClusterCustomObject({ group, version, plural: 'volumesnapshotcontents', name })) as SnapshotObject;

  /** What the csi-snapshotter sidecar does once the driver has deleted the snapshot: drop its finalizer. */
  async function releaseContent(name: string): Promise<void> {
    await ignoreNotFound(custom.patchClusterCustomObject(
      { group, version, plural: 'volumesnapshotcontents', name, body: { metadata: { finalizers: null } } },
      mergePatch,
    ));
  }

  async function waitUntilGone(what: string, read: () => Promise<SnapshotObject>): Promise<void> {
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

  test('the VolumeSnapshot CRDs are established and served at v1', async () => {
    const extensions = kc.makeApiClient(k8s.ApiextensionsV1Api);
    for (const plural of ['volumesnapshots', 'volumesnapshotcontents', 'volumesnapshotclasses']) {
      const crd = await extensions.readCustomResourceDefinition({ name: `${plural}.${group}` });
      const established = crd.status?.conditions?.find((c) => c.type === 'Established');
      assert.equal(established?.status, 'True', `${plural} is not Established: ${JSON.stringify(crd.status?.conditions)}`);
      const served = crd.spec.versions.find((v) => v.name === version);
      assert.ok(served?.served && served.storage, `${plural} does not serve and store ${version}`);
    }
    // And the API answers for each of them.
    const listed = (await custom.listNamespacedCustomObject({ group, version, namespace: ns.name, plural: 'volumesnapshots' })) as {
      kind: string;
      items: unknown[];
    };
    assert.equal(listed.kind, 'VolumeSnapshotList');
    assert.deepEqual(listed.items, []);
    await custom.listClusterCustomObject({ group, version, plural: 'volumesnapshotcontents' });
    await custom.listClusterCustomObject({ group, version, plural: 'volumesnapshotclasses' });
  });

  test('a VolumeSnapshot of a bound claim gets a VolumeSnapshotContent for the class driver', async () => {
    await custom.createClusterCustomObject({
      group,
      version,
      plural: 'volumesnapshotclasses',
      body: { apiVersion: `${group}/${version}`, kind: 'VolumeSnapshotClass', metadata: { name: className }, driver, deletionPolicy: 'Delete' },
    });
    const claim = await createBoundClaim(kc, ns.name, 'snap-source', driver);
    claims.push(claim);
    const snapshotName = uniqueName('snap');
    snapshots.push(snapshotName);
    const created = (await custom.createNamespacedCustomObject({
      group,
      version,
      namespace: ns.name,
      plural: 'volumesnapshots',
      body: {
        apiVersion: `${group}/${version}`,
        kind: 'VolumeSnapshot',
        metadata: { name: snapshotName },
        spec: { volumeSnapshotClassName: className, source: { persistentVolumeClaimName: claim.claim.metadata!.name! } },
      },
    })) as SnapshotObject;

    const contentName = `snapcontent-${created.metadata?.uid}`;
    contents.push(contentName);
    const content = await waitFor(
      `VolumeSnapshotContent ${contentName} for snapshot ${ns.name}/${snapshotName}`,
      async (observe) => {
        observe(objectState(await readSnapshot(snapshotName)));
        return ignoreNotFound(readContent(contentName));
      },
      wait,
    );
    const volume = claim.volume;
    assert.deepEqual(content.spec, {
      deletionPolicy: 'Delete',
      driver,
      source: { volumeHandle: volume.spec!.csi!.volumeHandle },
      sourceVolumeMode: 'Filesystem',
      volumeSnapshotClassName: className,
      volumeSnapshotRef: {
        apiVersion: `${group}/${version}`,
        kind: 'VolumeSnapshot',
        name: snapshotName,
        namespace: ns.name,
        resourceVersion: (content.spec!.volumeSnapshotRef as { resourceVersion: string }).resourceVersion,
        uid: created.metadata?.uid,
      },
    });

    // The snapshot is bound to it, and stays not ready: nobody cuts the snapshot.
    const bound = await waitFor(
      `snapshot ${ns.name}/${snapshotName} to name its content`,
      async (observe) => {
        const snapshot = await readSnapshot(snapshotName);
        observe(objectState(snapshot));
        return snapshot.status?.boundVolumeSnapshotContentName === undefined ? undefined : snapshot;
      },
      wait,
    );
    assert.equal(bound.status?.boundVolumeSnapshotContentName, contentName);
    assert.notEqual(bound.status?.readyToUse, true);
    // While the snapshot is being cut, the controller keeps its source claim from being deleted.
    const source = await core.readNamespacedPersistentVolumeClaim({ name: claim.claim.metadata!.name!, namespace: ns.name });
    assert.ok(
      source.metadata?.finalizers?.includes('snapshot.storage.kubernetes.io/pvc-as-source-protection'),
      `claim finalizers: ${JSON.stringify(source.metadata?.finalizers)}`,
    );
  });

  test('deleting a VolumeSnapshot of a Delete class deletes its content, held until the driver side lets go', async () => {
    assert.equal(snapshots.length, 1, 'the snapshot test did not run');
    const snapshotName = snapshots[0]!;
    const contentName = contents[0]!;
    await custom.deleteNamespacedCustomObject(snapshotRef(snapshotName));
    const deleting = await waitFor(
      `content ${contentName} to be deleted by the controller`,
      async (observe) => {
        const content = await readContent(contentName);
        observe(objectState(content));
        return content.metadata?.deletionTimestamp === undefined ? undefined : content;
      },
      wait,
    );
    // The sign a csi-snapshotter (or our own loop) acts on: delete the snapshot on the storage, then the finalizer.
    assert.equal(deleting.metadata?.annotations?.['snapshot.storage.kubernetes.io/volumesnapshot-being-deleted'], 'yes');
    assert.deepEqual(deleting.metadata?.finalizers, [contentFinalizer]);
    // The controller drops the as-source protection on its own schedule: wait for it, then only bound protection holds.
    const held = await waitFor(
      `snapshot ${snapshotName} held by bound protection only`,
      async (observe) => {
        const snapshot = await readSnapshot(snapshotName);
        observe(objectState(snapshot));
        const finalizers = snapshot.metadata?.finalizers ?? [];
        return finalizers.length === 1 ? snapshot : undefined;
      },
      wait,
    );
    assert.ok(held.metadata?.deletionTimestamp, 'the snapshot is not marked for deletion');
    assert.deepEqual(held.metadata?.finalizers, ['snapshot.storage.kubernetes.io/volumesnapshot-bound-protection']);

    await releaseContent(contentName);
    await waitUntilGone(`volumesnapshotcontent ${contentName}`, () => readContent(contentName));
    await waitUntilGone(`volumesnapshot ${ns.name}/${snapshotName}`, () => readSnapshot(snapshotName));
  });
});

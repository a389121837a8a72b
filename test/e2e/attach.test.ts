// VolumeAttachments made by hand, exactly as kube-controller-manager's attach-detach controller creates them (pods.test.ts
// drives the real one from Pods), so each case can be set up precisely; served by the controller process.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isLeader } from '../support/controller.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { ignoreNotFound, uniqueName, waitFor } from '../support/kube.js';

const DRIVER = 'rbd.csi.ceph.com';
const ATTACHER_FINALIZER = 'external-attacher/rbd-csi-ceph-com';

let e2e: E2e;
let nodeName: string;
let storageClass: string;
const attachments = new Set<string>();
const handMadeVolumes: string[] = [];

before(async () => {
  e2e = await setupE2e('attach');
  nodeName = uniqueName('e2e-attach-node');
  // A Node object as a kubelet registers it (no kubelet runs: nothing here needs one).
  await e2e.core.createNode({ body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } } } });
  storageClass = await e2e.createClass(e2e.baseParameters());
  await e2e.startController();
});

after(async () => {
  for (const name of attachments) {
    await ignoreNotFound(e2e.storage.patchVolumeAttachment(
      { name, body: { metadata: { finalizers: null } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    ));
    await ignoreNotFound(e2e.storage.deleteVolumeAttachment({ name }));
  }
  for (const name of handMadeVolumes) await ignoreNotFound(e2e.core.deletePersistentVolume({ name }));
  if (nodeName !== undefined) await ignoreNotFound(e2e.core.deleteNode({ name: nodeName }));
  await e2e?.cleanup();
});

/** What the attach-detach controller creates for a Pod's PV on a node. */
async function createAttachment(pvName: string, options: { finalizers?: string[] } = {}): Promise<k8s.V1VolumeAttachment> {
  const name = uniqueName('csi-e2e');
  attachments.add(name);
  return e2e.storage.createVolumeAttachment({
    body: {
      metadata: { name, ...(options.finalizers === undefined ? {} : { finalizers: options.finalizers }) },
      spec: { attacher: DRIVER, nodeName, source: { persistentVolumeName: pvName } },
    },
  });
}

const readAttachment = (name: string): Promise<k8s.V1VolumeAttachment | undefined> => ignoreNotFound(e2e.storage.readVolumeAttachment({ name }));

async function waitAttached(name: string, intervalMs = 200): Promise<k8s.V1VolumeAttachment> {
  return waitFor(`VolumeAttachment ${name} attached`, async (observe) => {
    const attachment = await readAttachment(name);
    observe(attachment && { status: attachment.status, finalizers: attachment.metadata?.finalizers });
    return attachment?.status?.attached === true ? attachment : undefined;
  }, { timeoutMs: 60_000, intervalMs });
}

async function deleteAndWaitGone(name: string): Promise<void> {
  await e2e.storage.deleteVolumeAttachment({ name });
  await e2e.waitGone(`VolumeAttachment ${name}`, () => readAttachment(name));
  attachments.delete(name);
}

async function boundVolume(): Promise<k8s.V1PersistentVolume> {
  const claim = await e2e.createClaim(storageClass);
  return e2e.waitBound(claim.metadata!.name!);
}

/** A PV of the same driver that we did not provision (no provisioned-by annotation), as an admin writes one. */
async function handMadeVolume(): Promise<string> {
  const name = uniqueName('e2e-attach-static');
  handMadeVolumes.push(name);
  await e2e.core.createPersistentVolume({
    body: {
      metadata: { name },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        csi: { driver: DRIVER, volumeHandle: name, volumeAttributes: { staticVolume: 'true', pool: e2e.poolName, clusterID: 'c' } },
      },
    },
  });
  return name;
}

/** Not written to at all since it was created (the API server's own status is attached: false). */
function assertUntouched(attachment: k8s.V1VolumeAttachment | undefined, created: k8s.V1VolumeAttachment, what: string): void {
  assert.ok(attachment !== undefined, `${what} still exists`);
  assert.equal(attachment.status?.attached ?? false, false, `${what}: not marked attached`);
  assert.equal(attachment.metadata?.finalizers, undefined, `${what}: no finalizer added`);
  assert.equal(attachment.metadata?.resourceVersion, created.metadata?.resourceVersion, `${what}: never written to`);
}

describe('attach', () => {
  test('an attachment of our PV is marked attached, without a finalizer, and deleting it is instant', async (t) => {
    const pv = await boundVolume();
    assert.equal(pv.spec?.csi?.driver, DRIVER);
    const created = await createAttachment(pv.metadata!.name!);
    const attached = await waitAttached(created.metadata!.name!);
    assert.equal(attached.status?.attachError, undefined);
    // As external-attacher's handler for drivers without ControllerPublish: nothing to detach, so no finalizer.
    assert.equal(attached.metadata?.finalizers, undefined);
    const volume = await e2e.readVolume(pv.metadata!.name!);
    assert.ok(!(volume?.metadata?.finalizers ?? []).some((f) => f.startsWith('external-attacher/')), 'no attacher finalizer on the PV');
    await deleteAndWaitGone(created.metadata!.name!);

    // The median from creation to attached over 20 attachments, one after the other.
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const attachment = await createAttachment(pv.metadata!.name!);
      await waitAttached(attachment.metadata!.name!, 10);
      samples.push(performance.now() - started);
      await deleteAndWaitGone(attachment.metadata!.name!);
    }
    samples.sort((a, b) => a - b);
    const median = (samples[9]! + samples[10]!) / 2;
    t.diagnostic(`VolumeAttachment created -> status.attached: median ${median.toFixed(0)} ms over 20 (min ${samples[0]!.toFixed(0)}, max ${samples[19]!.toFixed(0)}; polled every 10 ms)`);
  });

  test('an attachment being deleted that holds the attacher finalizer is marked detached and released', async () => {
    const pv = await boundVolume();
    const created = await createAttachment(pv.metadata!.name!, { finalizers: [ATTACHER_FINALIZER] });
    const attached = await waitAttached(created.metadata!.name!);
    assert.deepEqual(attached.metadata?.finalizers, [ATTACHER_FINALIZER], 'a finalizer put there by someone else stays while it is not deleted');
    await deleteAndWaitGone(created.metadata!.name!);
  });

  test('an attachment of a PV we did not provision is never touched', async () => {
    const foreign = await createAttachment(await handMadeVolume());
    // A positive control created after it: once ours is attached, the loop has seen the foreign one too.
    const ours = await createAttachment((await boundVolume()).metadata!.name!);
    await waitAttached(ours.metadata!.name!);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assertUntouched(await readAttachment(foreign.metadata!.name!), foreign, 'the foreign attachment');
    await deleteAndWaitGone(foreign.metadata!.name!);
  });

  test('with --attacher=false nothing is touched', async () => {
    await Promise.all(e2e.controllers.map((c) => c.stop()));
    const off = await e2e.startController({ extraArgs: ['--attacher=false', '--leader-election-retry-period=500ms', '--leader-election-renew-deadline=4s', '--leader-election-lease-duration=5s'] });
    await waitFor('the --attacher=false controller leads', async () => ((await isLeader(off)) ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    const pv = await boundVolume(); // positive control: this controller's provisioning loop runs
    const created = await createAttachment(pv.metadata!.name!);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    assertUntouched(await readAttachment(created.metadata!.name!), created, 'the attachment');
    assert.doesNotMatch(off.output(), /VolumeAttachment|attach loop started/);
    await deleteAndWaitGone(created.metadata!.name!);
  });
});

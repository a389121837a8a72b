// The attach loop wired as the controller wires it, over the in-memory API server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NodeAccess } from '../../../../src/controllers/attach/loop.js';
import type { ControllerConfig } from '../../../../src/controllers/controller.js';
import { FakeKube, PROVISIONER, apiError, makeAttachment, makeCsiVolume } from '../../fakes.js';
import { runController } from '../running.js';

const FINALIZER = 'external-attacher/rbd-csi-ceph-com';

function setup(overrides: Partial<ControllerConfig> = {}, nodeAccess?: NodeAccess) {
  return runController({ config: overrides, deps: nodeAccess === undefined ? {} : { nodeAccess } });
}

describe('attach loop', () => {
  test('an attachment of our PV is marked attached, with no finalizer on it or on the PV', async () => {
    const { kube, clock, metric, metrics, shutdown } = setup();
    kube.putVolume(makeCsiVolume('pvc-u1'));
    await clock.advance(0);
    kube.putAttachment(makeAttachment('va-1'));
    await clock.advance(0);
    const stored = kube.attachments.get('va-1')!;
    assert.equal(stored.status?.attached, true);
    assert.equal(stored.metadata?.finalizers, undefined);
    assert.deepEqual(kube.attachmentPatches.map((p) => p.subresource), ['status']);
    assert.equal(kube.patches.length, 0, 'the PV is not patched');
    assert.equal(await metric('rbd_provisioner_attach_total', { result: 'success' }), 1);
    const histogram = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'rbd_provisioner_attach_duration_seconds');
    const count = histogram?.values.find((v) => (v as { metricName?: string }).metricName?.endsWith('_count') === true && v.labels['result'] === 'success');
    assert.equal(count?.value, 1);

    // Idempotent: its own update and a resync of the attached object write nothing.
    kube.putAttachment(kube.attachments.get('va-1')!);
    await clock.advance(0);
    assert.equal(kube.attachmentPatches.length, 1);

    // Deleting it is instant: nothing holds it.
    kube.removeAttachment('va-1');
    await clock.advance(0);
    assert.equal(kube.attachments.has('va-1'), false);
    assert.equal(kube.attachmentPatches.length, 1);
    await shutdown();
  });

  test('attachments that are not ours are never touched', async () => {
    const { kube, clock, shutdown, metric } = setup();
    kube.putVolume(makeCsiVolume('pvc-hand', { provisionedBy: null }));
    kube.putVolume(makeCsiVolume('pvc-theirs', { provisionedBy: 'rbd.csi.ceph.com' }));
    kube.putVolume(makeCsiVolume('pvc-ours'));
    kube.putAttachment(makeAttachment('va-hand', { pv: 'pvc-hand' }));
    kube.putAttachment(makeAttachment('va-theirs', { pv: 'pvc-theirs' }));
    kube.putAttachment(makeAttachment('va-other-driver', { pv: 'pvc-ours', attacher: 'ebs.csi.aws.com' }));
    kube.putAttachment(makeAttachment('va-inline', { inline: true }));
    kube.putAttachment(makeAttachment('va-hand-deleting', { pv: 'pvc-hand', deleting: true, finalizers: [FINALIZER] }));
    await clock.advance(0);
    await clock.advance(5_000);
    assert.deepEqual(kube.attachmentPatches, []);
    for (const [name, attachment] of kube.attachments) assert.equal(attachment.status, undefined, name);
    assert.deepEqual(kube.attachments.get('va-hand-deleting')?.metadata?.finalizers, [FINALIZER]);
    assert.equal(await metric('rbd_provisioner_attach_total', { result: 'success' }), undefined);
    await shutdown();
  });

  test('an attachment seen before its PV is attached once the PV reaches the cache', async () => {
    const { kube, clock, shutdown } = setup();
    kube.putAttachment(makeAttachment('va-1', { pv: 'pvc-late' }));
    await clock.advance(0);
    assert.equal(kube.attachments.get('va-1')?.status, undefined);
    kube.putVolume(makeCsiVolume('pvc-late'));
    await clock.advance(0);
    assert.equal(kube.attachments.get('va-1')?.status?.attached, true);
    await shutdown();
  });

  test('attachments that exist at startup are attached (restart-safe)', async () => {
    const kube = new FakeKube();
    kube.putVolume(makeCsiVolume('pvc-u1'));
    kube.putAttachment(makeAttachment('va-old', { attached: true }));
    kube.putAttachment(makeAttachment('va-new'));
    const { clock, shutdown } = runController({ kube, config: { workers: 2 } });
    await clock.advance(0);
    assert.equal(kube.attachments.get('va-new')?.status?.attached, true);
    assert.deepEqual(kube.attachmentPatches.map((p) => p.name), ['va-new']);
    await shutdown();
  });

  test('a failed status write is a Warning event and is retried with backoff', async () => {
    const { kube, clock, metric, shutdown } = setup();
    kube.putVolume(makeCsiVolume('pvc-u1'));
    kube.fail('patchAttachmentStatus', apiError(500, 'InternalError', 'etcd timeout'));
    kube.putAttachment(makeAttachment('va-1'));
    await clock.advance(0);
    assert.equal(kube.attachments.get('va-1')?.status, undefined);
    const warning = kube.events.find((e) => e.reason === 'AttachFailed');
    assert.equal(warning?.type, 'Warning');
    assert.equal(warning?.involvedObject.kind, 'VolumeAttachment');
    assert.equal(warning?.involvedObject.apiVersion, 'storage.k8s.io/v1');
    assert.match(warning?.message ?? '', /etcd timeout/);
    assert.equal(await metric('rbd_provisioner_attach_total', { result: 'failed' }), 1);
    await clock.advance(2_000);
    assert.equal(kube.attachments.get('va-1')?.status?.attached, true);
    assert.equal(await metric('rbd_provisioner_attach_total', { result: 'success' }), 1);
    await shutdown();
  });

  test('an attachment being deleted with the attacher finalizer is marked detached, then released', async () => {
    const { kube, clock, metric, shutdown } = setup();
    kube.putVolume(makeCsiVolume('pvc-u1'));
    kube.putAttachment(makeAttachment('va-1', { attached: true, finalizers: ['example.com/keep', FINALIZER] }));
    await clock.advance(0);
    assert.equal(kube.attachmentPatches.length, 0, 'attached already, and the finalizer stays while it is not deleted');
    kube.removeAttachment('va-1');
    await clock.advance(0);
    const stored = kube.attachments.get('va-1');
    assert.deepEqual(stored?.metadata?.finalizers, ['example.com/keep'], 'only the attacher finalizer goes');
    assert.equal(stored?.status?.attached, false);
    assert.deepEqual(kube.attachmentPatches.map((p) => p.subresource), ['status', '']);
    assert.deepEqual(kube.attachmentPatches[1]?.patch, [
      { op: 'test', path: '/metadata/finalizers/1', value: FINALIZER },
      { op: 'remove', path: '/metadata/finalizers/1' },
    ]);
    assert.equal(await metric('rbd_provisioner_detach_total', { result: 'success' }), 1);

    // The last finalizer going deletes it.
    kube.putAttachment(makeAttachment('va-2', { finalizers: [FINALIZER] }));
    await clock.advance(0);
    kube.removeAttachment('va-2');
    await clock.advance(0);
    assert.equal(kube.attachments.has('va-2'), false);
    await shutdown();
  });

  test('a conflicting finalizer removal is retried on the current version', async () => {
    const { kube, clock, shutdown, metric } = setup();
    kube.putVolume(makeCsiVolume('pvc-u1'));
    kube.putAttachment(makeAttachment('va-1', { finalizers: [FINALIZER], deleting: true }));
    kube.fail('patchAttachment', apiError(422, 'Invalid', 'test failed'));
    await clock.advance(0);
    assert.equal(await metric('rbd_provisioner_detach_total', { result: 'conflict' }), 1);
    assert.equal(kube.events.length, 0, 'a conflict is no failure worth an event');
    await clock.advance(2_000);
    assert.equal(kube.attachments.has('va-1'), false);
    await shutdown();
  });

  test('with --attacher=false there is no VolumeAttachment informer and nothing is touched', async () => {
    const { kube, clock, controller, metric, shutdown } = setup({ attacher: false });
    kube.putVolume(makeCsiVolume('pvc-u1'));
    kube.putAttachment(makeAttachment('va-1'));
    await clock.advance(0);
    await clock.advance(5_000);
    assert.equal(controller.isReady(), true);
    assert.deepEqual(kube.attachmentPatches, []);
    assert.equal(await metric('rbd_provisioner_informer_synced', { informer: 'attachments' }), undefined);
    assert.equal(await metric('rbd_provisioner_informer_synced', { informer: 'volumes' }), 1);
    await shutdown();
  });

  test('node access is prepared before the attachment is marked attached; a failure is a Warning and does not hold it up', async () => {
    const prepared: string[] = [];
    let failWith: Error | undefined;
    const { kube, clock, shutdown } = setup({}, {
      prepare: async (volume) => {
        prepared.push(`${volume.metadata?.name} attached=${String(kube.attachments.get('va-1')?.status?.attached ?? false)}`);
        if (failWith) throw failWith;
      },
    });
    kube.putVolume(makeCsiVolume('pvc-u1'));
    kube.putAttachment(makeAttachment('va-1'));
    await clock.advance(0);
    assert.deepEqual(prepared, ['pvc-u1 attached=false'], 'prepared first, once');
    assert.equal(kube.attachments.get('va-1')?.status?.attached, true);

    failWith = new Error('node secret apps/ceph-user not found');
    kube.putAttachment(makeAttachment('va-2'));
    await clock.advance(0);
    assert.equal(kube.attachments.get('va-2')?.status?.attached, true, 'attached all the same');
    const warning = kube.events.find((e) => e.reason === 'NodeCredentialsNotRefreshed');
    assert.equal(warning?.type, 'Warning');
    assert.equal(warning?.involvedObject.name, 'pvc-u1');
    assert.match(warning?.message ?? '', /node secret apps\/ceph-user not found/);
    await shutdown();
  });
});

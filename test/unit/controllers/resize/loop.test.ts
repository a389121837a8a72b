// The resize loop wired as the controller wires it, over the in-memory API server and a fake resizer.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ControllerConfig } from '../../../../src/controllers/controller.js';
import { ResizeError } from '../../../../src/controllers/resize/resizer.js';
import { FakeKube, FakeResizer } from '../../fakes.js';
import { runController } from '../running.js';
import { boundVolume, resizableClaim } from './decisions.test.js';

function setup(options: { config?: Partial<ControllerConfig>; block?: boolean; capacity?: string; provisionedBy?: string | null; claim?: Parameters<typeof resizableClaim>[0] } = {}) {
  const kube = new FakeKube();
  const resizer = new FakeResizer();
  kube.putVolume(boundVolume({
    ...(options.block === undefined ? {} : { block: options.block }),
    ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
    ...(options.provisionedBy === undefined ? {} : { provisionedBy: options.provisionedBy }),
  }));
  kube.putClaim(resizableClaim(options.claim));
  const running = runController({ kube, config: options.config ?? {}, deps: { resizer } });
  const claim = () => kube.claims.get('default/data')!;
  const volume = () => kube.volumes.get('pvc-u1')!;
  const reasons = () => kube.events.map((event) => event.reason);
  return { ...running, resizer, claim, volume, reasons };
}

describe('resize loop', () => {
  test('a Filesystem claim: image, then PV, then the claim left NodeResizePending for the node', async () => {
    const { clock, resizer, claim, volume, reasons, metric, shutdown } = setup();
    await clock.advance(0);
    assert.equal(resizer.grows, 1);
    assert.equal(resizer.calls[0]!.size, '2Gi');
    assert.equal(resizer.calls[0]!.claimUid, 'uid-data');
    assert.equal(volume().spec?.capacity?.['storage'], '2Gi');
    const status = claim().status!;
    assert.deepEqual(status.allocatedResources, { storage: '2Gi' });
    assert.deepEqual(status.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    assert.deepEqual(status.conditions?.map((c) => c.type), ['FileSystemResizePending']);
    assert.equal(status.capacity?.['storage'], '1Gi', 'the kubelet sets status.capacity once the filesystem has grown');
    assert.deepEqual(reasons(), ['Resizing', 'FileSystemResizeRequired']);
    assert.equal(await metric('rbd_provisioner_resize_total', { class: 'fast', result: 'success' }), 1);
    await shutdown();
  });

  test('a Block claim: status.capacity is the new size and nothing is left in progress', async () => {
    const { clock, resizer, claim, volume, reasons, shutdown } = setup({ block: true });
    await clock.advance(0);
    assert.equal(resizer.grows, 1);
    assert.equal(volume().spec?.capacity?.['storage'], '2Gi');
    const status = claim().status!;
    assert.deepEqual(status.capacity, { storage: '2Gi' });
    assert.deepEqual(status.allocatedResourceStatuses ?? {}, {});
    assert.deepEqual(status.conditions, []);
    assert.deepEqual(reasons(), ['Resizing', 'VolumeResizeSuccessful']);
    await shutdown();
  });

  test('no storage-resizer annotation (what the expand controller leaves for a CSI PV): grown all the same', async () => {
    const { clock, resizer, volume, shutdown } = setup({ claim: { resizer: null } });
    await clock.advance(0);
    assert.equal(resizer.grows, 1);
    assert.equal(volume().spec?.capacity?.['storage'], '2Gi');
    await shutdown();
  });

  test('a claim handed to another driver\'s resizer is left to it', async () => {
    const { clock, kube, resizer, shutdown } = setup({ claim: { resizer: 'other.csi.example.com' } });
    await clock.advance(0);
    assert.equal(resizer.calls.length, 0);
    assert.deepEqual(kube.claimStatusPatches, []);
    await shutdown();
  });

  test('a PV that is not ours is never touched', async () => {
    const { clock, kube, resizer, reasons, shutdown } = setup({ provisionedBy: 'rbd.csi.ceph.com' });
    await clock.advance(0);
    assert.equal(resizer.calls.length, 0);
    assert.deepEqual(kube.claimStatusPatches, []);
    assert.deepEqual(kube.patches, []);
    assert.deepEqual(reasons(), []);
    await shutdown();
  });

  test('--resizer=false: no loop, nothing touched', async () => {
    const { clock, kube, resizer, shutdown } = setup({ config: { resizer: false } });
    await clock.advance(0);
    assert.equal(resizer.calls.length, 0);
    assert.deepEqual(kube.claimStatusPatches, []);
    await shutdown();
  });

  test('a crash after the image grew: the retry finds it grown, saves the PV and does not grow again', async () => {
    const { clock, resizer, claim, volume, shutdown } = setup({ claim: { status: { allocatedResources: { storage: '2Gi' }, allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' } } } });
    resizer.sizes.set('pvc-u1', '2Gi');
    await clock.advance(0);
    assert.equal(resizer.grows, 0);
    assert.equal(volume().spec?.capacity?.['storage'], '2Gi');
    assert.deepEqual(claim().status?.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    await shutdown();
  });

  test('a crash after the PV update: only the claim status is finished, the resizer is not called', async () => {
    const { clock, kube, resizer, claim, shutdown } = setup({
      capacity: '2Gi',
      claim: { status: { allocatedResources: { storage: '2Gi' }, allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' } } },
    });
    await clock.advance(0);
    assert.equal(resizer.calls.length, 0);
    assert.deepEqual(kube.patches, []);
    assert.deepEqual(claim().status?.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    await shutdown();
  });

  test('a transient failure (pool quota): Warning event, ControllerResizeError, still in progress; the backed-off retry finishes', async () => {
    const { clock, resizer, claim, volume, reasons, metric, shutdown } = setup();
    resizer.errors.push(new ResizeError('transient', 'PoolQuotaTooSmall', 'pool rbd has a quota of 1610612736 bytes'));
    await clock.advance(0);
    assert.equal(volume().spec?.capacity?.['storage'], '1Gi');
    const failed = claim().status!;
    assert.deepEqual(failed.allocatedResourceStatuses, { storage: 'ControllerResizeInProgress' });
    assert.deepEqual(failed.conditions?.map((c) => c.type), ['Resizing', 'ControllerResizeError']);
    assert.match(failed.conditions?.[1]?.message ?? '', /quota of 1610612736 bytes/);
    assert.deepEqual(reasons(), ['Resizing', 'VolumeResizeFailed']);
    assert.equal(await metric('rbd_provisioner_resize_total', { class: 'fast', result: 'failed' }), 1);
    await clock.advance(1000);
    assert.equal(volume().spec?.capacity?.['storage'], '2Gi');
    assert.deepEqual(claim().status?.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    assert.deepEqual(claim().status?.conditions?.map((c) => c.type), ['FileSystemResizePending']);
    assert.equal(resizer.grows, 1);
    await shutdown();
  });

  test('infeasible: ControllerResizeInfeasible; the user lowers the request and that size is reached (KEP 1790)', async () => {
    const { clock, kube, resizer, claim, volume, shutdown } = setup({ claim: { request: '100Ti' } });
    resizer.errors.push(new ResizeError('infeasible', 'InvalidSize', 'too large'));
    await clock.advance(0);
    assert.deepEqual(claim().status?.allocatedResourceStatuses, { storage: 'ControllerResizeInfeasible' });
    assert.deepEqual(claim().status?.allocatedResources, { storage: '100Ti' });
    const lowered = structuredClone(claim());
    lowered.spec!.resources = { requests: { storage: '3Gi' } };
    kube.putClaim(lowered);
    await clock.advance(0);
    assert.equal(resizer.calls.at(-1)?.size, '3Gi');
    assert.equal(volume().spec?.capacity?.['storage'], '3Gi');
    assert.deepEqual(claim().status?.allocatedResources, { storage: '3Gi' });
    assert.deepEqual(claim().status?.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    await shutdown();
  });

  test('a second request while the first is in flight: ends at the second, one grow each', async () => {
    const { clock, kube, resizer, claim, volume, shutdown } = setup();
    let release!: () => void;
    resizer.gate = new Promise((resolve) => { release = resolve; });
    await clock.advance(0);
    const raised = structuredClone(kube.claims.get('default/data')!);
    raised.spec!.resources = { requests: { storage: '3Gi' } };
    kube.putClaim(raised);
    resizer.gate = undefined;
    release();
    await clock.advance(0);
    await clock.advance(1000);
    assert.equal(volume().spec?.capacity?.['storage'], '3Gi');
    assert.deepEqual(claim().status?.allocatedResources, { storage: '3Gi' });
    assert.ok(resizer.grows <= 2, `grew ${resizer.grows} times`);
    await shutdown();
  });

  test('the claim changed between reading and the status write (409): retried on the new version', async () => {
    const { clock, kube, claim, volume, shutdown } = setup();
    kube.fail('patchClaimStatus', Object.assign(new Error('conflict'), {}));
    await clock.advance(0);
    await clock.advance(1000);
    assert.equal(volume().spec?.capacity?.['storage'], '2Gi');
    assert.deepEqual(claim().status?.allocatedResourceStatuses, { storage: 'NodeResizePending' });
    await shutdown();
  });
});

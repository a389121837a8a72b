// Volume expansion end to end (issue 11): real Ceph, the real control plane with kube-controller-manager's expand
// controller (for a CSI PV it posts ExternalExpanding and leaves the claim to the driver's resizer), and the
// controller as its own process. Each test patches claims as a user would and looks at the image, the PV and the
// claim's status.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ceph } from '../support/ceph.js';
import { GiB, setupE2e, type E2e } from '../support/e2e.js';
import { scrape, metricSum } from '../support/faults.js';
import { isApiError, uniqueName, waitFor } from '../support/kube.js';

const DRIVER = 'rbd.csi.ceph.com';
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

let e2e: E2e;
let expandable: string;

before(async () => {
  e2e = await setupE2e('resize');
  expandable = await e2e.createClass(e2e.baseParameters(), { allowVolumeExpansion: true });
});

after(async () => {
  await e2e?.cleanup();
});

async function requestSize(claim: string, size: string): Promise<void> {
  await e2e.core.patchNamespacedPersistentVolumeClaim(
    { name: claim, namespace: e2e.namespace, body: { spec: { resources: { requests: { storage: size } } } } },
    mergePatch,
  );
}

async function imageSize(image: string): Promise<number> {
  return e2e.pool.withImage(image, async (img) => (await img.stat()).size, { readOnly: true });
}

async function waitCapacity(pvName: string, capacity: string, timeoutMs = 60_000): Promise<k8s.V1PersistentVolume> {
  return waitFor(`PV ${pvName} capacity ${capacity}`, async (observe) => {
    const pv = await e2e.readVolume(pvName);
    observe(pv?.spec?.capacity);
    return pv?.spec?.capacity?.['storage'] === capacity ? pv : undefined;
  }, { timeoutMs, intervalMs: 50 });
}

async function waitClaim(name: string, what: string, ok: (claim: k8s.V1PersistentVolumeClaim) => boolean, timeoutMs = 60_000): Promise<k8s.V1PersistentVolumeClaim> {
  return waitFor(`claim ${name}: ${what}`, async (observe) => {
    const claim = await e2e.readClaim(name);
    observe(claim?.status);
    return claim !== undefined && ok(claim) ? claim : undefined;
  }, { timeoutMs, intervalMs: 100 });
}

/** A bound claim of `storageClass`; its PV's name is its image's name. */
async function boundClaim(storageClass: string, options: { volumeMode?: string } = {}): Promise<{ name: string; pv: string }> {
  const claim = await e2e.createClaim(storageClass, { size: '1Gi', ...options });
  const pv = await e2e.waitBound(claim.metadata!.name!);
  return { name: claim.metadata!.name!, pv: pv.metadata!.name! };
}

/** The resize conditions (kube-controller-manager adds others of its own, e.g. Unused). */
const RESIZE_CONDITIONS = new Set(['Resizing', 'FileSystemResizePending', 'ControllerResizeError']);
const resizeConditions = (claim: k8s.V1PersistentVolumeClaim): string[][] =>
  (claim.status?.conditions ?? []).filter((c) => RESIZE_CONDITIONS.has(c.type)).map((c) => [c.type, c.status]);

const storageStatus = (claim: k8s.V1PersistentVolumeClaim): string | undefined =>
  (claim.status?.allocatedResourceStatuses as Record<string, string> | undefined)?.['storage'];

describe('with the controller running', () => {
  before(async () => {
    await e2e.startController();
  });

  test('1. Filesystem claim 1Gi -> 2Gi: image and PV 2Gi, the claim left for the node step; Block: status.capacity 2Gi', async () => {
    const fs = await boundClaim(expandable);
    const block = await boundClaim(expandable, { volumeMode: 'Block' });
    await requestSize(fs.name, '2Gi');
    await requestSize(block.name, '2Gi');

    await waitCapacity(fs.pv, '2Gi');
    assert.equal(await imageSize(fs.pv), 2 * GiB);
    const fsClaim = await waitClaim(fs.name, 'NodeResizePending', (c) => storageStatus(c) === 'NodeResizePending');
    assert.deepEqual(fsClaim.status?.allocatedResources, { storage: '2Gi' });
    assert.deepEqual(resizeConditions(fsClaim), [['FileSystemResizePending', 'True']]);
    assert.deepEqual(fsClaim.status?.capacity, { storage: '1Gi' }, 'the kubelet sets status.capacity once the filesystem has grown');
    await e2e.waitEvent(fs.name, 'ExternalExpanding');
    await e2e.waitEvent(fs.name, 'Resizing');
    await e2e.waitEvent(fs.name, 'FileSystemResizeRequired');

    await waitCapacity(block.pv, '2Gi');
    assert.equal(await imageSize(block.pv), 2 * GiB);
    const blockClaim = await waitClaim(block.name, 'status.capacity 2Gi', (c) => c.status?.capacity?.['storage'] === '2Gi');
    assert.equal(storageStatus(blockClaim), undefined, 'no resize left in progress');
    assert.deepEqual(resizeConditions(blockClaim), []);
    await e2e.waitEvent(block.name, 'VolumeResizeSuccessful');

    // Never shrink: a request below the claim's capacity is refused by the API server itself.
    const shrink = await requestSize(block.name, '1Gi').then(() => undefined, (e: unknown) => e);
    assert.ok(isApiError(shrink, 422), `expected 422, got ${String(shrink)}`);
    assert.match(String((shrink as k8s.ApiException<unknown>).body), /less than status\.capacity/);
  });

  test('2. two quick requests (2Gi then 3Gi): ends at 3Gi, at most one grow each, no error', async () => {
    const claim = await boundClaim(expandable, { volumeMode: 'Block' });
    await requestSize(claim.name, '2Gi');
    await requestSize(claim.name, '3Gi');
    await waitCapacity(claim.pv, '3Gi');
    assert.equal(await imageSize(claim.pv), 3 * GiB);
    const done = await waitClaim(claim.name, 'status.capacity 3Gi', (c) => c.status?.capacity?.['storage'] === '3Gi');
    assert.deepEqual(done.status?.allocatedResources, { storage: '3Gi' });
    const output = e2e.controllers.map((proc) => proc.output()).join('\n');
    const grows = output.split('\n').filter((line) => line.includes('image grown') && line.includes(claim.pv));
    assert.ok(grows.length >= 1 && grows.length <= 2, `grown ${grows.length} times:\n${grows.join('\n')}`);
    const events = await e2e.events(claim.name);
    assert.deepEqual(events.filter((e) => e.type === 'Warning').map((e) => `${e.reason}: ${e.message}`), []);
  });

  test('4. a pool quota smaller than the new size: a Warning naming the quota; raised, the resize finishes', async () => {
    const claim = await boundClaim(expandable);
    await ceph(['osd', 'pool', 'set-quota', e2e.poolName, 'max_bytes', String(1.5 * GiB)]);
    try {
      await requestSize(claim.name, '2Gi');
      const warning = await e2e.waitEvent(claim.name, 'VolumeResizeFailed');
      assert.equal(warning.type, 'Warning');
      assert.match(warning.message ?? '', new RegExp(`pool ${e2e.poolName} has a quota of 1610612736 bytes \\(1536Mi\\).*set-quota`));
      const failed = await waitClaim(claim.name, 'ControllerResizeError', (c) => (c.status?.conditions ?? []).some((x) => x.type === 'ControllerResizeError'));
      assert.deepEqual(resizeConditions(failed), [['Resizing', 'True'], ['ControllerResizeError', 'True']]);
      assert.equal(storageStatus(failed), 'ControllerResizeInProgress', 'a quota is not infeasible: the resize stays in progress');
      assert.equal((await e2e.readVolume(claim.pv))?.spec?.capacity?.['storage'], '1Gi');
      assert.equal(await imageSize(claim.pv), GiB);
    } finally {
      await ceph(['osd', 'pool', 'set-quota', e2e.poolName, 'max_bytes', String(64 * GiB)]);
    }
    // The backed-off retry: the first few come within about a minute.
    await waitCapacity(claim.pv, '2Gi', 120_000);
    assert.equal(await imageSize(claim.pv), 2 * GiB);
    const done = await waitClaim(claim.name, 'NodeResizePending', (c) => storageStatus(c) === 'NodeResizePending');
    assert.deepEqual(resizeConditions(done), [['FileSystemResizePending', 'True']]);
    await ceph(['osd', 'pool', 'set-quota', e2e.poolName, 'max_bytes', '0']);
  });

  test('5. a class without allowVolumeExpansion: the API server refuses the patch', async () => {
    const fixed = await e2e.createClass(e2e.baseParameters());
    const claim = await boundClaim(fixed);
    const err = await requestSize(claim.name, '2Gi').then(() => undefined, (e: unknown) => e);
    assert.ok(isApiError(err, 403), `expected 403, got ${String(err)}`);
    assert.match(String((err as k8s.ApiException<unknown>).body), /storageclass that provisions the pvc must support resize/);
    assert.equal((await e2e.readVolume(claim.pv))?.spec?.capacity?.['storage'], '1Gi');
  });

  test('6. a PV not provisioned by us, on the same driver: never touched', async () => {
    // A static PV of rbd.csi.ceph.com (as ceph-csi or an admin would make it) over an image of the same pool.
    const image = uniqueName('static');
    await e2e.pool.createImage(image, GiB);
    const claimName = uniqueName('static-claim');
    const pvName = uniqueName('static-pv');
    await e2e.core.createPersistentVolume({
      body: {
        metadata: { name: pvName },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Retain',
          storageClassName: expandable,
          volumeMode: 'Filesystem',
          claimRef: { namespace: e2e.namespace, name: claimName },
          csi: { driver: DRIVER, volumeHandle: image, volumeAttributes: { pool: e2e.poolName, imageName: image, staticVolume: 'true' } },
        },
      },
    });
    try {
      await e2e.core.createNamespacedPersistentVolumeClaim({
        namespace: e2e.namespace,
        body: {
          metadata: { name: claimName },
          spec: { storageClassName: expandable, volumeName: pvName, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
        },
      });
      await e2e.waitBound(claimName);
      // One of ours resized alongside: once it is done the loop has seen both.
      const ours = await boundClaim(expandable);
      await requestSize(claimName, '2Gi');
      await requestSize(ours.name, '2Gi');
      await e2e.waitEvent(claimName, 'ExternalExpanding');
      await waitCapacity(ours.pv, '2Gi');
      await new Promise((resolve) => setTimeout(resolve, 3000));

      assert.equal((await e2e.readVolume(pvName))?.spec?.capacity?.['storage'], '1Gi');
      assert.equal(await imageSize(image), GiB);
      const claim = await e2e.readClaim(claimName);
      assert.equal(claim?.status?.allocatedResources, undefined);
      assert.equal(storageStatus(claim!), undefined);
      const ourEvents = (await e2e.events(claimName)).filter((e) => e.source?.component === e2e.provisionerName || e.reportingComponent === e2e.provisionerName);
      assert.deepEqual(ourEvents.map((e) => e.reason), []);
    } finally {
      await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claimName, namespace: e2e.namespace }).catch(() => undefined);
      await e2e.core.deletePersistentVolume({ name: pvName }).catch(() => undefined);
      await e2e.waitGone(`PV ${pvName}`, () => e2e.readVolume(pvName)).catch(() => undefined);
      await e2e.pool.removeImage(image).catch(() => undefined);
    }
  });

  test('the time from the patch to the PV showing the new capacity, over 20 claims (a figure, not an assertion)', async (t) => {
    const claims = await Promise.all(Array.from({ length: 20 }, () => boundClaim(expandable, { volumeMode: 'Block' })));
    const times: number[] = [];
    for (const claim of claims) {
      const started = performance.now();
      await requestSize(claim.name, '2Gi');
      await waitCapacity(claim.pv, '2Gi');
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    const median = (times[9]! + times[10]!) / 2;
    const successes = metricSum(await scrape(e2e.controllers.at(-1)!), 'rbd_provisioner_resize_total', { result: 'success' });
    t.diagnostic(`patch -> PV capacity, 20 claims: median ${median.toFixed(0)} ms (min ${times[0]!.toFixed(0)}, max ${times[19]!.toFixed(0)}; polled every 50 ms); resize_total{result="success"} ${successes}`);
    assert.equal(times.length, 20);
  });
});

describe('after a crash', () => {
  test('3. the controller killed between the image resize and the PV update: after restart the PV and claim catch up', async () => {
    for (const proc of e2e.controllers) await proc.stop();
    const faulty = await e2e.startController({ fault: 'crash-after-image-resize' });
    const claim = await boundClaim(expandable);
    await requestSize(claim.name, '2Gi');
    const { signal } = await faulty.exited;
    assert.equal(signal, 'SIGKILL');
    assert.equal(await imageSize(claim.pv), 2 * GiB, 'the image grew');
    assert.equal((await e2e.readVolume(claim.pv))?.spec?.capacity?.['storage'], '1Gi', 'the PV did not');

    const restarted = await e2e.startController();
    await waitCapacity(claim.pv, '2Gi');
    const done = await waitClaim(claim.name, 'NodeResizePending', (c) => storageStatus(c) === 'NodeResizePending');
    assert.deepEqual(done.status?.allocatedResources, { storage: '2Gi' });
    assert.equal(await imageSize(claim.pv), 2 * GiB);
    assert.match(restarted.output(), /image already has the size asked for; not resizing it/);
    await e2e.audit();
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProvisionError } from '../../../../src/controllers/provision/errors.js';
import { apiError, flush, makeClaim, PROVISIONER } from '../../fakes.js';
import { harness } from './harness.js';

const F = 'external-provisioner.volume.kubernetes.io/finalizer';

describe('provisioning', () => {
  test('success: the PV is stamped and saved, with Provisioning and ProvisioningSucceeded events on the claim', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1', namespace: 'apps' }));
    const result = await h.reconciler.syncClaim('apps/data', h.signal);
    await h.flushEvents();
    assert.equal(result, undefined);
    const pv = h.kube.volumes.get('pvc-u1');
    assert.ok(pv !== undefined);
    assert.deepEqual(pv.spec?.claimRef, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'apps', name: 'data', uid: 'u1', resourceVersion: '7' });
    assert.equal(pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'], PROVISIONER);
    assert.deepEqual(pv.metadata?.finalizers, [F]);
    assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Delete');
    assert.equal(pv.spec?.storageClassName, 'fast');
    assert.deepEqual(h.eventReasons(), ['Normal/Provisioning', 'Normal/ProvisioningSucceeded']);
    const event = h.kube.events[1];
    assert.deepEqual(event?.involvedObject, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data', namespace: 'apps', uid: 'u1', resourceVersion: '7' });
    assert.equal(event?.metadata?.namespace, 'apps');
    assert.equal(event?.source?.component, PROVISIONER);
    assert.equal(event?.message, 'Successfully provisioned volume pvc-u1');
    assert.equal(await h.metric('rbd_provisioner_provision_total', { class: 'fast', result: 'success' }), 1);
    const line = h.lines.find((l) => l.message.startsWith('volume provisioned'));
    assert.equal(line?.['op'], 'provision');
    assert.equal(line?.['pvc'], 'apps/data');
    assert.equal(line?.['pv'], 'pvc-u1');
  });

  const failures: { name: string; error: unknown; retry: string; result: string; fragment: string }[] = [
    { name: 'final error: slow retry', error: new ProvisionError('final', 'InvalidParameter', 'parameter "imageFormat": 1 is not supported; allowed: 2'), retry: 'slow', result: 'final', fragment: 'parameter "imageFormat": 1 is not supported' },
    { name: 'transient error: backoff', error: new ProvisionError('transient', 'MonitorsUnreachable', 'rados_connect: ETIMEDOUT'), retry: 'backoff', result: 'transient', fragment: 'rados_connect: ETIMEDOUT' },
    { name: 'plain Error counts as transient', error: new Error('socket hang up'), retry: 'backoff', result: 'transient', fragment: 'socket hang up' },
    { name: 'in-progress: backoff, retried under the same name', error: new ProvisionError('in-progress', 'Timeout', 'rbd_create4 timed out'), retry: 'backoff', result: 'in-progress', fragment: 'retrying under the same name' },
  ];
  for (const row of failures) {
    test(row.name, async () => {
      const h = harness();
      h.addClaim(makeClaim('data', { uid: 'u1' }));
      h.provisioner.provisionErrors = [row.error];
      const result = await h.reconciler.syncClaim('default/data', h.signal);
      await h.flushEvents();
      assert.deepEqual(result, { retry: row.retry });
      assert.equal(h.kube.volumes.size, 0);
      assert.deepEqual(h.eventReasons(), ['Normal/Provisioning', 'Warning/ProvisioningFailed']);
      const message = h.kube.events[1]?.message ?? '';
      assert.match(message, /failed to provision volume with StorageClass "fast"/);
      assert.ok(message.includes(row.fragment), message);
      assert.equal(h.provisioner.count('delete'), 0, 'a failed or unfinished provision is never "cleaned up"');
      assert.equal(await h.metric('rbd_provisioner_provision_total', { class: 'fast', result: row.result }), 1);
    });
  }

  test('in-progress then success: the retry asks for the same PV name', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.provisioner.provisionErrors = [new ProvisionError('in-progress', 'Timeout', 'timed out')];
    await h.reconciler.syncClaim('default/data', h.signal);
    assert.equal(await h.reconciler.syncClaim('default/data', h.signal), undefined);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['provision:pvc-u1', 'provision:pvc-u1']);
    assert.ok(h.kube.volumes.has('pvc-u1'));
  });

  test('AlreadyExists for the same claim uid is adopted (PV cache lag after a crash)', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.kube.volumes.set('pvc-u1', { metadata: { name: 'pvc-u1' }, spec: { claimRef: { uid: 'u1', name: 'data', namespace: 'default' } } });
    const result = await h.reconciler.syncClaim('default/data', h.signal);
    await h.flushEvents();
    assert.equal(result, undefined);
    assert.deepEqual(h.eventReasons(), ['Normal/Provisioning', 'Normal/ProvisioningSucceeded']);
    assert.equal(h.provisioner.count('delete'), 0);
    assert.ok(h.lines.some((l) => l.message.includes('adopted')));
  });

  test('AlreadyExists for another claim: final error, nothing deleted', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.kube.volumes.set('pvc-u1', { metadata: { name: 'pvc-u1' }, spec: { claimRef: { uid: 'someone-else' } } });
    const result = await h.reconciler.syncClaim('default/data', h.signal);
    await h.flushEvents();
    assert.deepEqual(result, { retry: 'slow' });
    assert.match(h.kube.events[1]?.message ?? '', /already exists and belongs to another claim \(uid someone-else\)/);
    assert.equal(h.provisioner.count('delete'), 0);
  });

  test('a transient save failure is retried and then succeeds', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.kube.fail('createVolume', apiError(503, 'ServiceUnavailable'));
    const pending = h.reconciler.syncClaim('default/data', h.signal);
    await h.clock.advance(100);
    assert.equal(await pending, undefined);
    assert.equal(h.kube.calls.filter((c) => c === 'createVolume').length, 2);
    assert.equal(h.provisioner.count('delete'), 0);
  });

  test('the PV cannot be saved after N retryable failures: the volume is kept and the retry adopts what the API server stored', async () => {
    const h = harness({ saveAttempts: 3, saveRetryBaseMs: 100 });
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.kube.fail('createVolume', apiError(0, 'NoResponse', 'connect ECONNREFUSED'), apiError(500, 'InternalError'), apiError(504, 'Timeout', 'create PV: HTTP 504'));
    const pending = h.reconciler.syncClaim('default/data', h.signal);
    await h.clock.advance(100 + 200);
    const result = await pending;
    await h.flushEvents();
    assert.deepEqual(result, { retry: 'backoff' });
    assert.equal(h.kube.calls.filter((c) => c === 'createVolume').length, 3);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['provision:pvc-u1'], 'no cleanup: the PV may have been stored');
    assert.ok(h.provisioner.images.has('pvc-u1'));
    assert.deepEqual(h.eventReasons(), ['Normal/Provisioning', 'Warning/ProvisioningFailed']);
    assert.equal(
      h.kube.events[1]?.message,
      'could not save PersistentVolume "pvc-u1" yet: create PV: HTTP 504; the volume is kept and provisioning will be retried',
    );
    assert.equal(await h.metric('rbd_provisioner_provision_total', { class: 'fast', result: 'save-failed' }), 1);

    // The timed-out create had been stored after all: the retry provisions again and adopts that PV.
    h.kube.volumes.set('pvc-u1', { metadata: { name: 'pvc-u1' }, spec: { claimRef: { uid: 'u1', name: 'data', namespace: 'default' } } });
    assert.equal(await h.reconciler.syncClaim('default/data', h.signal), undefined);
    assert.deepEqual(h.provisioner.calls.map((c) => c.op), ['provision', 'provision']);
    assert.ok(h.provisioner.images.has('pvc-u1'));
  });

  const refused = 'create PV: HTTP 403: forbidden';
  const kept = `could not save PersistentVolume "pvc-u1" yet: ${refused}; the volume is kept and provisioning will be retried`;
  const refusals: { name: string; error: unknown; pvExists?: boolean; readError?: unknown; deleted: boolean; message: string }[] = [
    { name: '403, no PV: the volume is deleted', error: apiError(403, 'Forbidden', refused), deleted: true, message: `failed to save PersistentVolume "pvc-u1": ${refused}; the volume was deleted and provisioning will be retried` },
    { name: '422 Invalid, no PV: the volume is deleted', error: apiError(422, 'Invalid', 'create PV: HTTP 422: spec.capacity: Required value'), deleted: true, message: 'failed to save PersistentVolume "pvc-u1": create PV: HTTP 422: spec.capacity: Required value; the volume was deleted and provisioning will be retried' },
    { name: '403, but the live read finds the PV: kept', error: apiError(403, 'Forbidden', refused), pvExists: true, deleted: false, message: kept },
    { name: '403, and the live read fails: kept', error: apiError(403, 'Forbidden', refused), readError: apiError(503, 'ServiceUnavailable'), deleted: false, message: kept },
  ];
  for (const row of refusals) {
    test(`a definite refusal is not retried; cleanup only once a live read confirms no PV: ${row.name}`, async () => {
      const h = harness();
      h.addClaim(makeClaim('data', { uid: 'u1' }));
      h.kube.fail('createVolume', row.error);
      if (row.pvExists === true) h.kube.volumes.set('pvc-u1', { metadata: { name: 'pvc-u1' }, spec: { claimRef: { uid: 'u1' } } });
      if (row.readError !== undefined) h.kube.fail('readVolume', row.readError);
      const result = await h.reconciler.syncClaim('default/data', h.signal);
      await h.flushEvents();
      assert.deepEqual(result, { retry: 'backoff' });
      assert.deepEqual(h.kube.calls.filter((c) => c === 'createVolume' || c === 'readVolume'), ['createVolume', 'readVolume']);
      assert.equal(h.provisioner.count('delete'), row.deleted ? 1 : 0);
      assert.equal(h.provisioner.images.has('pvc-u1'), !row.deleted);
      assert.deepEqual(h.eventReasons(), ['Normal/Provisioning', 'Warning/ProvisioningFailed']);
      assert.equal(h.kube.events[1]?.message, row.message);
    });
  }

  test('save refused and cleanup failed: ProvisioningCleanupFailed', async () => {
    const h = harness({ saveAttempts: 1 });
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.kube.fail('createVolume', apiError(403, 'Forbidden'));
    h.provisioner.deleteErrors = [new Error('rbd_trash_move: EBUSY')];
    await h.reconciler.syncClaim('default/data', h.signal);
    await h.flushEvents();
    assert.deepEqual(h.eventReasons(), ['Normal/Provisioning', 'Warning/ProvisioningCleanupFailed']);
    assert.match(h.kube.events[1]?.message ?? '', /rbd_trash_move: EBUSY/);
  });

  test('losing the lease while saving: no cleanup, no failure event (the next leader adopts)', async () => {
    const h = harness({ saveAttempts: 3 });
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.kube.fail('createVolume', apiError(500, 'InternalError'));
    const pending = h.reconciler.syncClaim('default/data', h.signal);
    await flush();
    h.abort();
    assert.equal(await pending, undefined);
    await h.flushEvents();
    assert.equal(h.provisioner.count('delete'), 0);
    assert.deepEqual(h.eventReasons(), ['Normal/Provisioning']);
  });

  test('no storage call when this replica may not act; the key is kept while a renewal may still succeed', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.state.mayAct = false;
    assert.deepEqual(await h.reconciler.syncClaim('default/data', h.signal), { retry: 'backoff' });
    assert.equal(h.provisioner.calls.length, 0);
  });

  test('no storage call once the work signal has aborted, and no retry (the next leader relists)', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.state.mayAct = false;
    h.abort();
    assert.equal(await h.reconciler.syncClaim('default/data', h.signal), undefined);
    assert.equal(h.provisioner.calls.length, 0);
  });

  test('no PV is saved when provision fails (e.g. the record that a PV may exist could not be written)', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    h.provisioner.provisionErrors = [new Error('rbd_metadata_set: ETIMEDOUT')];
    assert.deepEqual(await h.reconciler.syncClaim('default/data', h.signal), { retry: 'backoff' });
    assert.equal(h.kube.volumes.size, 0);
    assert.equal(h.kube.calls.filter((c) => c === 'createVolume').length, 0);
  });

  test('a missing StorageClass gives ProvisioningFailed and a slow retry', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1', className: 'gone' }));
    assert.deepEqual(await h.reconciler.syncClaim('default/data', h.signal), { retry: 'slow' });
    await h.flushEvents();
    assert.deepEqual(h.eventReasons(), ['Warning/ProvisioningFailed']);
    assert.match(h.kube.events[0]?.message ?? '', /storageclass.storage.k8s.io "gone" not found/);
    assert.equal(h.provisioner.calls.length, 0);
  });

  test('a claim deleted while its provision is in flight ends with no image and no PV (RELIABILITY #4)', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    let release!: () => void;
    h.provisioner.provisionGate = new Promise((resolve) => (release = resolve));
    const pending = h.reconciler.syncClaim('default/data', h.signal);
    await flush();
    h.cacheClaims.delete('default/data');
    h.kube.claims.delete('default/data');
    release();
    assert.equal(await pending, undefined);
    const pv = h.kube.volumes.get('pvc-u1');
    assert.ok(pv !== undefined, 'the PV is saved, naming the deleted claim');
    // The PV controller finds the claim gone and releases the PV; our delete path removes both.
    pv.status = { phase: 'Released' };
    h.cacheVolumes.set('pvc-u1', structuredClone(pv));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.provisioner.images.size, 0);
    assert.equal(h.kube.volumes.size, 0);
  });
});

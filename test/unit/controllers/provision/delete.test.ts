import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeleteError } from '../../../../src/controllers/provision/errors.js';
import { apiError, makeClaim, makeVolume } from '../../fakes.js';
import { harness } from './harness.js';

const F = 'external-provisioner.volume.kubernetes.io/finalizer';

describe('deletion', () => {
  test('Released + Delete, claim gone: image removed, finalizer removed with test+remove by index (and uid), then the PV deleted', async () => {
    const h = harness();
    h.cacheClasses.clear(); // deletion never needs the StorageClass
    h.provisioner.images.add('pvc-u1');
    const volume = makeVolume('pvc-u1', { finalizers: ['kubernetes.io/pv-protection', F] });
    h.addVolume(volume);
    const result = await h.reconciler.syncVolume('pvc-u1', h.signal);
    assert.equal(result, undefined);
    // The finalizer first, while nothing else changes the PV's finalizers: no conflict, no re-read.
    assert.deepEqual(h.kube.calls, ['readClaim', 'patchVolume', 'deleteVolume']);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['delete:pvc-u1']);
    assert.equal(h.provisioner.images.size, 0);
    assert.deepEqual(h.kube.patches, [
      {
        name: 'pvc-u1',
        patch: [
          { op: 'test', path: '/metadata/uid', value: volume.metadata!.uid },
          { op: 'test', path: '/metadata/finalizers/1', value: F },
          { op: 'remove', path: '/metadata/finalizers/1' },
        ],
      },
    ]);
    assert.deepEqual(h.kube.volumes.get('pvc-u1')?.metadata?.finalizers, ['kubernetes.io/pv-protection']);
    assert.ok(h.kube.volumes.get('pvc-u1')?.metadata?.deletionTimestamp !== undefined);
    assert.equal(await h.metric('rbd_provisioner_delete_total', { class: 'fast', result: 'success' }), 1);
  });

  test('the live claim with the same uid blocks deletion even though the PV is Released (RELIABILITY #17)', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    h.addVolume(makeVolume('pvc-u1', { claim: { namespace: 'default', name: 'data', uid: 'uid-data' } }));
    h.kube.claims.set('default/data', makeClaim('data', { uid: 'uid-data' })); // only in the API, not in our cache
    const result = await h.reconciler.syncVolume('pvc-u1', h.signal);
    assert.deepEqual(result, { retry: 'backoff' });
    assert.equal(h.provisioner.calls.length, 0);
    assert.ok(h.kube.volumes.has('pvc-u1'));
    assert.ok(h.provisioner.images.has('pvc-u1'));
  });

  test('a live claim with the same name but another uid does not block deletion', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1', { claim: { namespace: 'default', name: 'data', uid: 'old-uid' } }));
    h.kube.claims.set('default/data', makeClaim('data', { uid: 'new-uid' }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.provisioner.count('delete'), 1);
  });

  test('the claim cannot be read: no deletion, backoff', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1'));
    h.kube.fail('readClaim', apiError(0, 'NoResponse', 'read claim: connect ECONNREFUSED'));
    assert.deepEqual(await h.reconciler.syncVolume('pvc-u1', h.signal), { retry: 'backoff' });
    assert.equal(h.provisioner.calls.length, 0);
  });

  const deleteErrors: { name: string; error: unknown; retry: string }[] = [
    { name: 'in-use (watchers)', error: new DeleteError('in-use', 'ImageBusy', 'image rbd/pvc-u1 has watchers; it is still mapped somewhere'), retry: 'backoff' },
    { name: 'has snapshots', error: new DeleteError('has-snapshots', 'ImageHasSnapshots', 'image rbd/pvc-u1 has snapshots'), retry: 'backoff' },
    { name: 'final', error: new DeleteError('final', 'PermissionDenied', 'rbd_trash_move: EACCES'), retry: 'slow' },
    { name: 'plain error', error: new Error('rados_connect: ETIMEDOUT'), retry: 'backoff' },
  ];
  for (const row of deleteErrors) {
    test(`DeleteError ${row.name}: VolumeFailedDelete Warning on the PV, PV kept, ${row.retry} retry`, async () => {
      const h = harness();
      h.addVolume(makeVolume('pvc-u1'));
      h.provisioner.deleteErrors = [row.error];
      assert.deepEqual(await h.reconciler.syncVolume('pvc-u1', h.signal), { retry: row.retry });
      await h.flushEvents();
      assert.deepEqual(h.eventReasons(), ['Warning/VolumeFailedDelete']);
      const event = h.kube.events[0];
      assert.equal(event?.involvedObject.kind, 'PersistentVolume');
      assert.equal(event?.involvedObject.name, 'pvc-u1');
      assert.equal(event?.involvedObject.namespace, undefined);
      assert.equal(event?.metadata?.namespace, 'default', 'events about cluster-scoped objects live in "default"');
      assert.equal(event?.message, (row.error as Error).message);
      assert.ok(h.kube.volumes.has('pvc-u1'));
      assert.ok(!h.kube.calls.includes('deleteVolume'));
    });
  }

  test('an image already gone counts as deleted: the PV goes away (RELIABILITY #14)', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1', { finalizers: [F] }));
    assert.equal(h.provisioner.images.has('pvc-u1'), false);
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.kube.volumes.has('pvc-u1'), false);
  });

  // The layout issue's bug: the PV's own updates re-queue it, and the lagging cache still shows it Released.
  test('a PV seen Released again from a lagging cache after its deletion: one deletion, counted once', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    const stale = makeVolume('pvc-u1', { finalizers: ['kubernetes.io/pv-protection', F] });
    h.addVolume(stale);
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['delete:pvc-u1']);
    assert.deepEqual(h.kube.calls, ['readClaim', 'patchVolume', 'deleteVolume']);
    assert.equal(await h.metric('rbd_provisioner_delete_total', { class: 'fast', result: 'success' }), 1);
    assert.equal(h.lines.filter((l) => l.message === 'deleting the volume').length, 1);
  });

  // A PV that got our finalizer just before its claim went (a migrated PV, or one made before the finalizer existed):
  // the cache still showed it without, so deleting the PV left the finalizer holding it.
  test('a finalizer the cache did not show yet when the PV was deleted is dropped once the cache shows it', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    h.addVolume(makeVolume('pvc-u1', { finalizers: [] }));
    h.kube.volumes.set('pvc-u1', makeVolume('pvc-u1', { finalizers: [F] }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.ok(h.kube.volumes.get('pvc-u1')?.metadata?.deletionTimestamp, 'deleted, held by the finalizer');
    h.addVolume(structuredClone(h.kube.volumes.get('pvc-u1')!));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.kube.volumes.has('pvc-u1'), false, 'the finalizer is dropped and the PV goes');
    assert.equal(h.provisioner.count('delete'), 1);
  });

  test('PV delete fails after the image is gone: the retry finishes the PV without deleting the volume again', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    h.addVolume(makeVolume('pvc-u1', { finalizers: [F] }));
    h.kube.fail('deleteVolume', apiError(503, 'ServiceUnavailable'));
    assert.deepEqual(await h.reconciler.syncVolume('pvc-u1', h.signal), { retry: 'backoff' });
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.kube.volumes.has('pvc-u1'), false);
    assert.equal(h.provisioner.count('delete'), 1);
    // Once the informer saw it go, nothing is remembered: the same PV (impossible in reality) would be deleted anew.
    h.reconciler.forgetVolume('uid-pvc-u1');
    h.kube.volumes.set('pvc-u1', makeVolume('pvc-u1', { finalizers: [F] }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.provisioner.count('delete'), 2);
  });

  test('PV delete fails after the image is gone: backoff, and the retry finishes (RELIABILITY #15)', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    h.addVolume(makeVolume('pvc-u1', { finalizers: [F] }));
    h.kube.fail('deleteVolume', apiError(503, 'ServiceUnavailable'));
    assert.deepEqual(await h.reconciler.syncVolume('pvc-u1', h.signal), { retry: 'backoff' });
    assert.equal(h.provisioner.images.size, 0);
    assert.ok(h.kube.volumes.has('pvc-u1'));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.kube.volumes.has('pvc-u1'), false);
  });

  test('a finalizer patch that conflicts re-reads the PV and patches the new index', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1', { finalizers: ['kubernetes.io/pv-protection', F] }));
    // Someone removed pv-protection meanwhile: our finalizer moved to index 0.
    h.kube.volumes.get('pvc-u1')!.metadata!.finalizers = [F];
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.deepEqual(
      h.kube.patches.map((p) => p.patch[1]?.path),
      ['/metadata/finalizers/1', '/metadata/finalizers/0'],
    );
    assert.equal(h.kube.volumes.has('pvc-u1'), false);
  });

  test('PV deleted before its claim, policy switched to Retain: finalizer dropped, image kept (RELIABILITY #16)', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    h.addVolume(makeVolume('pvc-u1', { phase: 'Bound', policy: 'Retain', deleting: true, finalizers: ['kubernetes.io/pv-protection', F] }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.deepEqual(h.kube.volumes.get('pvc-u1')?.metadata?.finalizers, ['kubernetes.io/pv-protection']);
    assert.equal(h.provisioner.calls.length, 0);
    assert.ok(!h.kube.calls.includes('readClaim'));
    assert.ok(h.provisioner.images.has('pvc-u1'));
  });

  test('a Bound PV that is being deleted waits (pv-protection holds it)', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1', { phase: 'Bound', deleting: true }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.deepEqual(h.kube.calls, []);
    assert.equal(h.provisioner.calls.length, 0);
  });

  test('our Bound PV without the finalizer gets it, guarded by resourceVersion', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1', { phase: 'Bound', finalizers: ['kubernetes.io/pv-protection'] }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.deepEqual(h.kube.patches[0]?.patch, [
      { op: 'test', path: '/metadata/resourceVersion', value: '11' },
      { op: 'add', path: '/metadata/finalizers/-', value: F },
    ]);
    assert.deepEqual(h.kube.volumes.get('pvc-u1')?.metadata?.finalizers, ['kubernetes.io/pv-protection', F]);
  });

  test('a PV of another provisioner is left alone', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1', { provisionedBy: 'kubernetes.io/rbd' }));
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.deepEqual(h.kube.calls, []);
  });

  test('losing the lease: no image deletion starts; the key is kept while a renewal may still succeed', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1'));
    h.state.mayAct = false;
    assert.deepEqual(await h.reconciler.syncVolume('pvc-u1', h.signal), { retry: 'backoff' });
    assert.equal(h.provisioner.calls.length, 0);
    assert.ok(h.kube.volumes.has('pvc-u1'));
  });

  test('the work signal aborted: no image deletion starts, and no retry (the next leader relists)', async () => {
    const h = harness();
    h.addVolume(makeVolume('pvc-u1'));
    h.state.mayAct = false;
    h.abort();
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.provisioner.calls.length, 0);
  });

  test('the PV name now belongs to another object: the image goes, but that PV keeps its finalizers', async () => {
    const h = harness();
    h.provisioner.images.add('pvc-u1');
    h.addVolume(makeVolume('pvc-u1', { finalizers: ['kubernetes.io/pv-protection', F] }));
    // Our PV went away and an object with the same name and other uid took its place; the cache still has ours.
    const newcomer = makeVolume('pvc-u1', { phase: 'Bound', finalizers: ['kubernetes.io/pv-protection', F] });
    newcomer.metadata!.uid = 'uid-newcomer';
    h.kube.volumes.set('pvc-u1', newcomer);
    assert.equal(await h.reconciler.syncVolume('pvc-u1', h.signal), undefined);
    assert.equal(h.provisioner.images.size, 0);
    // The uid test refuses the finalizer patch; the re-read shows another object; the delete's uid precondition fails.
    assert.deepEqual(h.kube.calls, ['readClaim', 'patchVolume', 'readVolume', 'deleteVolume']);
    assert.deepEqual(h.kube.patches.map((p) => p.patch[0]), [{ op: 'test', path: '/metadata/uid', value: 'uid-pvc-u1' }]);
    assert.deepEqual(h.kube.volumes.get('pvc-u1')?.metadata?.finalizers, ['kubernetes.io/pv-protection', F]);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OwnedVolume } from '../../../../src/controllers/provision/provisioner.js';
import { flush, makeClaim, makeVolume } from '../../fakes.js';
import { type Harness, harness } from './harness.js';

function owned(h: Harness, pvName: string, claimUid: string, options: { state?: OwnedVolume['state']; location?: string } = {}): OwnedVolume {
  const location = options.location ?? 'rbd';
  const volume: OwnedVolume = { id: `${location}/${pvName}`, location, state: options.state ?? 'unrecorded', pvName, claimUid, claimNamespace: 'default', claimName: 'data' };
  h.provisioner.owned.push(volume);
  h.provisioner.images.add(pvName);
  return volume;
}

describe('orphan collection (RELIABILITY #1, #2, #23)', () => {
  test('a volume with no PV and no claim (confirmed live) is deleted', async () => {
    const h = harness();
    owned(h, 'pvc-u1', 'u1');
    assert.equal(await h.reconciler.collectOrphans(h.signal), 1);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['listOwnedVolumes:rbd', 'deleteOwnedVolume:pvc-u1']);
    assert.deepEqual(h.kube.calls, ['readClaim', 'readVolume']);
    assert.ok(h.lines.some((l) => l.message.startsWith('collected an orphaned volume: it never had a PV') && l['pv'] === 'pvc-u1'));
  });

  test('never before every informer has synced (an empty cache is not evidence)', async () => {
    const h = harness();
    h.state.synced = false;
    owned(h, 'pvc-u1', 'u1');
    assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
    assert.equal(h.provisioner.calls.length, 0);
  });

  const kept: { name: string; setup: (h: Harness) => void }[] = [
    { name: 'its claim is in the cache', setup: (h) => h.cacheClaims.set('default/data', makeClaim('data', { uid: 'u1' })) },
    { name: 'its claim exists live (cache lag)', setup: (h) => h.kube.claims.set('default/data', makeClaim('data', { uid: 'u1' })) },
    { name: 'its PV is in the cache', setup: (h) => h.cacheVolumes.set('pvc-u1', makeVolume('pvc-u1', { phase: 'Bound' })) },
    { name: 'its PV exists live (cache lag)', setup: (h) => h.kube.volumes.set('pvc-u1', makeVolume('pvc-u1', { phase: 'Bound' })) },
    { name: 'the claim cannot be read', setup: (h) => h.kube.fail('readClaim', new Error('connect ECONNREFUSED')) },
    { name: 'this replica may not act', setup: (h) => (h.state.mayAct = false) },
    { name: 'no StorageClass is ours', setup: (h) => h.cacheClasses.clear() },
  ];
  for (const row of kept) {
    test(`kept when ${row.name}`, async () => {
      const h = harness();
      owned(h, 'pvc-u1', 'u1');
      row.setup(h);
      assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
      assert.equal(h.provisioner.count('deleteOwnedVolume'), 0);
      assert.ok(h.provisioner.images.has('pvc-u1'));
    });
  }

  // RELIABILITY #3/#4: a create interrupted half-way leaves a name that cannot be opened, with no metadata; only the
  // uid in its name ties it to a claim.
  test('a half-made volume is cleared once no claim has its uid and no PV has its name', async () => {
    const h = harness();
    const volume = owned(h, 'pvc-u1', 'u1', { state: 'half-made' });
    Object.assign(volume, { claimNamespace: '', claimName: '' });
    assert.equal(await h.reconciler.collectOrphans(h.signal), 1);
    assert.deepEqual(h.kube.calls, ['readVolume']);
    assert.ok(h.lines.some((l) => l.message.startsWith('cleared a volume a create left half-made')));
  });

  const halfMadeKept: { name: string; setup: (h: Harness) => void }[] = [
    { name: 'a claim in the cache has its uid (its provision retry clears it)', setup: (h) => h.cacheClaims.set('other/x', makeClaim('x', { uid: 'u1' })) },
    { name: 'a PV of its name exists live', setup: (h) => h.kube.volumes.set('pvc-u1', makeVolume('pvc-u1', { phase: 'Bound' })) },
    { name: 'the PV cannot be read', setup: (h) => h.kube.fail('readVolume', new Error('connect ECONNREFUSED')) },
  ];
  for (const row of halfMadeKept) {
    test(`a half-made volume is kept when ${row.name}`, async () => {
      const h = harness();
      const volume = owned(h, 'pvc-u1', 'u1', { state: 'half-made' });
      Object.assign(volume, { claimNamespace: '', claimName: '' });
      row.setup(h);
      assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
      assert.equal(h.provisioner.count('deleteOwnedVolume'), 0);
    });
  }

  test('a claim of the same name but another uid does not protect the volume', async () => {
    const h = harness();
    owned(h, 'pvc-u1', 'u1');
    h.kube.claims.set('default/data', makeClaim('data', { uid: 'u2' }));
    assert.equal(await h.reconciler.collectOrphans(h.signal), 1);
  });

  test('a volume whose provision is in flight is never collected, even after its claim is gone', async () => {
    const h = harness();
    h.addClaim(makeClaim('data', { uid: 'u1' }));
    let release!: () => void;
    h.provisioner.provisionGate = new Promise((resolve) => (release = resolve));
    const provisioning = h.reconciler.syncClaim('default/data', h.signal);
    await flush();
    owned(h, 'pvc-u1', 'u1');
    h.cacheClaims.delete('default/data');
    h.kube.claims.delete('default/data');
    assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
    release();
    await provisioning;
    assert.ok(h.provisioner.images.has('pvc-u1'));
  });

  // RELIABILITY #24: the data-loss defect. The evidence "no PV now" is not enough: a Retain PV deleted by an admin
  // leaves no PV behind, and its image is the user's data.
  test('a volume whose PV may have existed is never collected, even with no PV and no claim (confirmed live)', async () => {
    const h = harness();
    owned(h, 'pvc-u1', 'u1', { state: 'pv-may-exist' });
    assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
    assert.equal(h.provisioner.count('deleteOwnedVolume'), 0);
    assert.ok(h.provisioner.images.has('pvc-u1'));
    assert.equal(await h.metric('rbd_provisioner_orphans_unsure', {}), 1);
    assert.ok(h.lines.some((l) => l.level === 'warn' && l.message.includes('a PV may have existed') && l['pv'] === 'pvc-u1'));
  });

  test('an unrecorded volume whose PV exists (made by an earlier version) gets the record, and is kept', async () => {
    const h = harness();
    const volume = owned(h, 'pvc-u1', 'u1');
    h.cacheVolumes.set('pvc-u1', makeVolume('pvc-u1', { phase: 'Bound', policy: 'Retain' }));
    assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['listOwnedVolumes:rbd', 'recordVolumeHasPv:pvc-u1']);
    assert.equal(volume.state, 'pv-may-exist');
    // The admin deletes the Retain PV and the claim is gone: the volume stays.
    h.cacheVolumes.delete('pvc-u1');
    assert.equal(await h.reconciler.collectOrphans(h.signal), 0);
    assert.ok(h.provisioner.images.has('pvc-u1'));
  });

  test('an interrupted delete is finished', async () => {
    const h = harness();
    owned(h, 'pvc-u1', 'u1', { state: 'deleting' });
    assert.equal(await h.reconciler.collectOrphans(h.signal), 1);
    assert.ok(h.lines.some((l) => l.message === 'finished an interrupted delete'));
  });

  // RELIABILITY #25: one broken class must not stop collection everywhere.
  test('a location that cannot be scanned is reported; the others are still collected', async () => {
    const h = harness();
    h.provisioner.locations = ['broken', 'rbd', 'other'];
    h.provisioner.failingLocations.set('broken', new Error('rados_connect: timed out (ETIMEDOUT)'));
    owned(h, 'pvc-u1', 'u1');
    owned(h, 'pvc-u2', 'u2', { location: 'other' });
    assert.equal(await h.reconciler.collectOrphans(h.signal), 2);
    assert.ok(!h.provisioner.images.has('pvc-u1') && !h.provisioner.images.has('pvc-u2'));
    const warning = h.lines.find((l) => l.level === 'warn' && l['location'] === 'broken');
    assert.match(String(warning?.message), /^scanning broken for orphaned volumes failed; other locations go on/);
    assert.equal(await h.metric('rbd_provisioner_orphan_scans_total', { location: 'broken', result: 'failed' }), 1);
    assert.equal(await h.metric('rbd_provisioner_orphan_scans_total', { location: 'rbd', result: 'ok' }), 1);
  });

  test('a scan that hangs past its timeout counts as failed and holds up no other location', async () => {
    const h = harness({ orphanScanTimeoutMs: 20 });
    h.provisioner.locations = ['hung', 'rbd'];
    const original = h.provisioner.listOwnedVolumes.bind(h.provisioner);
    h.provisioner.listOwnedVolumes = async (location, signal) => {
      if (location.id !== 'hung') return original(location, signal);
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    };
    owned(h, 'pvc-u1', 'u1');
    const collecting = h.reconciler.collectOrphans(h.signal);
    await h.clock.advance(20);
    assert.equal(await collecting, 1);
    assert.ok(h.lines.some((l) => l.level === 'warn' && l['location'] === 'hung' && String(l.message).includes('(timed out after 20 ms)')));
  });
});

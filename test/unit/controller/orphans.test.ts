import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OwnedVolume } from '../../../src/controller/provisioner.js';
import { flush, makeClaim, makeVolume } from './fakes.js';
import { type Harness, harness } from './harness.js';

function owned(h: Harness, pvName: string, claimUid: string, claimName = 'data'): OwnedVolume {
  const volume = { id: `rbd/${pvName}`, pvName, claimUid, claimNamespace: 'default', claimName };
  h.provisioner.owned.push(volume);
  h.provisioner.images.add(pvName);
  return volume;
}

describe('orphan collection (RELIABILITY #1, #2, #23)', () => {
  test('a volume with no PV and no claim (confirmed live) is deleted', async () => {
    const h = harness();
    owned(h, 'pvc-u1', 'u1');
    assert.equal(await h.reconciler.collectOrphans(h.signal), 1);
    assert.deepEqual(h.provisioner.calls.map((c) => `${c.op}:${c.name}`), ['listOwnedVolumes:', 'deleteOwnedVolume:pvc-u1']);
    assert.deepEqual(h.kube.calls, ['readClaim', 'readVolume']);
    assert.ok(h.lines.some((l) => l.message.startsWith('collected an orphaned volume') && l['pv'] === 'pvc-u1'));
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
});

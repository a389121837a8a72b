// The kube-apiserver frozen (SIGSTOP, then SIGCONT) or crashed (SIGKILL, then started again), against the real
// controller process (RELIABILITY 27, 5, 8). While it is down the tests read only the controller's own HTTP port
// and the Ceph pool, never the API. Each test ends with an audit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setupE2e, type E2e } from '../support/e2e.js';
import { freezeApiServer, freezeCephDaemon, httpGet, leading, metricSum, pauseApiServer, scrape, sleep } from '../support/faults.js';
import { crashApiServer, waitFor } from '../support/kube.js';

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('fapi');
});

after(async () => {
  await e2e?.cleanup();
});

async function assertOneImageEach(claims: { metadata?: { uid?: string } }[]): Promise<void> {
  const images = await e2e.images();
  for (const claim of claims) {
    const uid = claim.metadata!.uid!;
    assert.deepEqual(images.filter((name) => name.includes(uid)), [`pvc-${uid}`], `one image for claim uid ${uid}`);
  }
}

test('an API-server outage past the renew deadline: the process stays, /readyz says so, it leads again and binds the claims (RELIABILITY 27)', async (t) => {
  const controller = await e2e.startController({
    extraArgs: ['--leader-election-lease-duration=6s', '--leader-election-renew-deadline=4s', '--leader-election-retry-period=1s'],
  });
  try {
    await waitFor('the controller leading', async () => ((await leading(controller)) ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const claims = await Promise.all(Array.from({ length: 3 }, () => e2e.createClaim(storageClass)));

    let apiBack = false;
    const outage = pauseApiServer(e2e.controlPlane, 25_000).finally(() => {
      apiBack = true;
    });
    const readyz: { status: number; body: string }[] = [];
    const leaderDuringOutage: boolean[] = [];
    try {
      while (!apiBack) {
        readyz.push(await httpGet(controller, '/readyz', 5_000));
        leaderDuringOutage.push(await leading(controller));
        await sleep(500);
      }
    } finally {
      await outage;
    }
    t.diagnostic(`/readyz during the outage: ${[...new Set(readyz.map((r) => `${r.status} ${r.body.trim()}`))].join(' | ')}`);
    assert.equal(controller.child.exitCode, null, 'the controller process did not exit');
    assert.equal(controller.child.signalCode, null, 'the controller process was not killed');
    assert.ok(readyz.some((r) => r.status === 503 && /API server/.test(r.body)), '/readyz answered 503 naming the API server during the outage');
    // The outage outlasted the renew deadline: the leader stood down (and stayed in the same process).
    assert.ok(leaderDuringOutage.includes(false), 'the controller stopped leading during the outage');

    await waitFor('the controller leading again', async () => ((await leading(controller)) ? true : undefined), { timeoutMs: 120_000, intervalMs: 500 });
    assert.ok(metricSum(await scrape(controller), 'rbd_provisioner_leader_lost_total') >= 1, 'the lost lease was counted');
    await waitFor('/readyz 200 again', async () => ((await httpGet(controller, '/readyz')).status === 200 ? true : undefined), { timeoutMs: 60_000, intervalMs: 500 });
    for (const claim of claims) await e2e.waitBound(claim.metadata!.name!, 180_000);
    await assertOneImageEach(claims);
    assert.equal(controller.child.exitCode, null, 'the controller process is still the same one');
    await e2e.audit();
  } finally {
    await controller.stop();
  }
});

// Deterministic from outside: the OSD is frozen while the controller starts the creates, so they wait in Ceph (seen in
// its Ceph call metrics); the API
// server is frozen next and the OSD resumed, so the images are created while nothing answers the PV saves. The API
// stays frozen past the controller's request timeout (30 s), so the saves fail and are retried.
test('the API server frozen while PVs are being saved: every claim ends Bound with exactly one image (RELIABILITY 5)', async (t) => {
  // A long lease, so the outage hits the PV saves, not leadership.
  const controller = await e2e.startController({
    extraArgs: ['--leader-election-lease-duration=120s', '--leader-election-renew-deadline=90s', '--leader-election-retry-period=2s'],
  });
  try {
    await waitFor('the controller leading', async () => ((await leading(controller)) ? true : undefined), { timeoutMs: 60_000, intervalMs: 200 });
    const storageClass = await e2e.createClass(e2e.baseParameters());
    // A first claim, so the connection to Ceph is made before the OSD stops.
    await e2e.waitBound((await e2e.createClaim(storageClass)).metadata!.name!, 120_000);

    const osd = await freezeCephDaemon('osd.0');
    let api: Awaited<ReturnType<typeof freezeApiServer>> | undefined;
    let claims;
    try {
      claims = await Promise.all(Array.from({ length: 6 }, () => e2e.createClaim(storageClass)));
      const names = claims.map((c) => c.metadata!.name!);
      // Every claim's provisioning waits in a Ceph call (past the secret read and everything else that needs the API).
      await waitFor('a Ceph call of every claim waiting for the frozen OSD', async (observe) => {
        const metrics = await scrape(controller);
        const waiting = metricSum(metrics, 'rbd_provisioner_ceph_calls_in_flight') + metricSum(metrics, 'rbd_provisioner_ceph_calls_queued');
        const started = controller.output().split('\n').filter((line) => line.includes('provisioning a volume'));
        const missing = names.filter((name) => !started.some((line) => line.includes(`/${name}"`)));
        observe({ waiting, missing });
        return missing.length === 0 && waiting >= names.length ? true : undefined;
      }, { timeoutMs: 60_000, intervalMs: 100 });
      api = await freezeApiServer(e2e.controlPlane);
      const frozenAt = Date.now();
      osd.resume();
      const uids = claims.map((c) => c.metadata!.uid!);
      await waitFor('every image created while the API server is frozen', async (observe) => {
        const images = await e2e.images();
        const missing = uids.filter((uid) => !images.includes(`pvc-${uid}`));
        observe(missing);
        return missing.length === 0 ? true : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200 });
      await sleep(Math.max(0, frozenAt + 40_000 - Date.now()));
    } finally {
      osd.resume();
      api?.resume();
    }

    for (const claim of claims) await e2e.waitBound(claim.metadata!.name!, 240_000);
    await assertOneImageEach(claims);
    const output = controller.output();
    const retries = output.split('could not save the PV').length - 1;
    t.diagnostic(`save failures logged: ${retries}; refused-and-deleted: ${output.split('the PV was refused and does not exist').length - 1}`);
    assert.ok(retries >= 1, 'the outage hit PV saves (the controller logged failed saves)');
    assert.equal(controller.child.exitCode, null, 'the controller is still running');
    await e2e.audit();
  } finally {
    await controller.stop();
  }
});

// A crashed API server cuts every watch (a connection reset), and the one that comes back has a new watch cache that
// no longer serves the resource versions the informers held. The informers do not resume from those: after any failed
// watch they list again (so a 410 Gone can only come as a watch's ERROR event, covered in unit/kube/informer.test.ts).
// Work asked for after the restart (a claim made, a claim deleted) is done from the relisted caches.
test('the API server crashed and restarted: every watch cut, the informers relist and the work gets done (RELIABILITY 8)', async () => {
  const controller = await e2e.startController();
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const before = await e2e.createClaim(storageClass);
  const beforeVolume = await e2e.waitBound(before.metadata!.name!);

  await crashApiServer();
  const after = await e2e.createClaim(storageClass);
  await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: before.metadata!.name!, namespace: e2e.namespace });
  await e2e.waitBound(after.metadata!.name!, 120_000);
  await e2e.waitGone(`PV ${beforeVolume.metadata!.name}`, () => e2e.readVolume(beforeVolume.metadata!.name!), 120_000);

  const informerLines = controller.output().split('\n').filter((line) => / informer: /.test(line));
  for (const informer of ['claims', 'volumes', 'storageClasses']) {
    assert.ok(informerLines.some((line) => line.includes(`${informer} informer: list/watch failed; will relist`)), `the ${informer} watch was cut and relisted:\n${informerLines.join('\n')}`);
  }
  assert.equal(controller.child.exitCode, null, 'the controller process stayed up');
  await e2e.audit();
  await controller.stop();
});

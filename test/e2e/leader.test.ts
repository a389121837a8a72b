// Two replicas: only the leader acts; killing it hands over; no claim gets two images.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isLeader, type ControllerProcess } from '../support/controller.js';
import { setupE2e, type E2e } from '../support/e2e.js';

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('lead');
});

after(async () => {
  await e2e?.cleanup();
});

async function leaderOf(replicas: ControllerProcess[], timeoutMs: number): Promise<ControllerProcess> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leaders = [];
    for (const r of replicas) if (r.child.exitCode === null && (await isLeader(r))) leaders.push(r);
    assert.ok(leaders.length <= 1, `${leaders.length} leaders at once`);
    if (leaders.length === 1) return leaders[0]!;
    if (Date.now() > deadline) throw new Error(`no leader after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('only the leader acts; killing it hands over; every claim gets exactly one image', async (t) => {
  // Default lease settings (15 s lease, 2 s retry), as the chart deploys them.
  const replicas = [await e2e.startController(), await e2e.startController()];
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const first = await leaderOf(replicas, 30_000);
  const standby = replicas.find((r) => r !== first)!;

  const before = await e2e.createClaim(storageClass);
  await e2e.waitBound(before.metadata!.name!);
  assert.match(first.output(), new RegExp(before.metadata!.uid!));
  assert.doesNotMatch(standby.output(), new RegExp(`ProvisioningSucceeded|"pvc":"${e2e.namespace}/${before.metadata!.name}"`));

  const killedAt = performance.now();
  first.child.kill('SIGKILL');
  const claims = await Promise.all(Array.from({ length: 5 }, () => e2e.createClaim(storageClass)));
  const second = await leaderOf([standby], 60_000);
  t.diagnostic(`new leader ${((performance.now() - killedAt) / 1000).toFixed(1)} s after the old one was killed`);
  assert.equal(second, standby);
  for (const claim of claims) await e2e.waitBound(claim.metadata!.name!);
  const images = await e2e.images();
  for (const claim of [before, ...claims]) {
    assert.deepEqual(images.filter((name) => name.includes(claim.metadata!.uid!)), [`pvc-${claim.metadata!.uid}`]);
  }
});

// RELIABILITY #26: a deposed leader (SIGSTOPped past its lease, then resumed) lands no Ceph operation after the new
// leader starts acting, because the new leader blocklists the old one's RADOS clients first; and it posts no event.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { ceph } from '../support/ceph.js';
import { isLeader, type ControllerProcess } from '../support/controller.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { apiServerLink } from '../support/faults.js';

const ANNOTATION = 'rbd.provisioner.ceph.io/ceph-clients';
// Short leases so the test does not wait long; generous enough for a loaded 2-core machine.
const LEASE_FLAGS = ['--leader-election-lease-duration=6s', '--leader-election-renew-deadline=4s', '--leader-election-retry-period=1s'];

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('fence');
});

after(async () => {
  await e2e?.cleanup();
});

async function waitLeader(replicas: ControllerProcess[], timeoutMs: number): Promise<ControllerProcess> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const r of replicas) if (r.child.exitCode === null && (await isLeader(r))) return r;
    if (Date.now() > deadline) throw new Error(`no leader after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Ceph calls this process made, by result, from its own metrics. */
async function cephCalls(proc: ControllerProcess): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${proc.httpPort}/metrics`)).text();
  const byResult: Record<string, number> = {};
  for (const match of text.matchAll(/^rbd_provisioner_ceph_call_duration_seconds_count\{([^}]*)\} (\d+)$/gm)) {
    const result = /result="([^"]*)"/.exec(match[1]!)?.[1] ?? '?';
    byResult[result] = (byResult[result] ?? 0) + Number(match[2]);
  }
  return byResult;
}

async function leaseAnnotation(): Promise<string | undefined> {
  const coordination = e2e.kc.makeApiClient(k8s.CoordinationV1Api);
  const leases = await coordination.listNamespacedLease({ namespace: e2e.namespace });
  return leases.items[0]?.metadata?.annotations?.[ANNOTATION];
}

test('a leader paused past its lease is fenced in Ceph before the new leader acts, and posts no event after', async (t) => {
  const replicas = [await e2e.startController({ extraArgs: LEASE_FLAGS }), await e2e.startController({ extraArgs: LEASE_FLAGS })];
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const first = await waitLeader(replicas, 60_000);
  const second = replicas.find((r) => r !== first)!;

  const early = await Promise.all(Array.from({ length: 3 }, () => e2e.createClaim(storageClass)));
  for (const claim of early) await e2e.waitBound(claim.metadata!.name!, 120_000);
  const record = JSON.parse((await leaseAnnotation()) ?? '{}') as { version?: number; clients?: { address: string; monitors: string; adminId: string; secretName: string }[] };
  assert.equal(record.version, 1, `the leader published its clients: ${JSON.stringify(record)}`);
  assert.ok((record.clients ?? []).length >= 1);
  assert.ok(record.clients!.every((c) => c.adminId === 'admin' && c.secretName === e2e.adminSecret && c.address !== ''));
  assert.doesNotMatch(JSON.stringify(record), new RegExp(e2e.ceph.adminKey.replace(/[+/=]/g, '\\$&')), 'no key in the lease');
  const oldAddresses = record.clients!.map((c) => c.address);

  // Pause the leader with work arriving, past its lease.
  const beforePause = await cephCalls(first);
  const pausedAt = Date.now();
  first.child.kill('SIGSTOP');
  const late = await Promise.all(Array.from({ length: 3 }, () => e2e.createClaim(storageClass)));
  const newLeader = await waitLeader([second], 120_000);
  const tookOverMs = Date.now() - pausedAt;
  for (const claim of late) await e2e.waitBound(claim.metadata!.name!, 180_000);
  const boundMs = Date.now() - pausedAt;
  assert.match(newLeader.output(), /previous leader fenced/);
  const blocklist = await ceph(['osd', 'blocklist', 'ls']);
  for (const address of oldAddresses) assert.ok(blocklist.includes(address), `${address} is blocklisted:\n${blocklist}`);

  // Resume the old leader; let it run into whatever it had going.
  // It returns to standby in the same process: its own metrics, scraped for 8 s, show what its late calls did.
  first.child.kill('SIGCONT');
  let afterResume: Record<string, number> | undefined;
  for (const until = Date.now() + 8000; Date.now() < until && first.child.exitCode === null;) {
    afterResume = await cephCalls(first).catch(() => afterResume);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.diagnostic(`old leader after resuming: ${first.output().split('\n').filter((l) => l.includes('"level"')).slice(-6).map((l) => (JSON.parse(l) as { message: string }).message).join(' | ')}`);
  t.diagnostic(`old leader paused; new leader ${(tookOverMs / 1000).toFixed(1)} s later, late claims Bound ${(boundMs / 1000).toFixed(1)} s after the pause`);
  t.diagnostic(`old leader's Ceph calls by result before the pause ${JSON.stringify(beforePause)}, after resuming ${JSON.stringify(afterResume ?? 'no answer')}; ok calls after the new leader acted: ${(afterResume?.['ok'] ?? 0) - (beforePause['ok'] ?? 0)}`);

  // (a) nothing the old leader sent after the pause succeeded.
  assert.equal(first.child.exitCode, null, 'the old leader stays up, as a standby');
  assert.ok(afterResume !== undefined, 'the old leader answered /metrics after resuming');
  {
    assert.equal(afterResume['ok'] ?? 0, beforePause['ok'] ?? 0, 'no Ceph call of the old leader succeeded after it was deposed');
    for (const [result, count] of Object.entries(afterResume)) {
      if (result === 'ok') continue;
      const added = count - (beforePause[result] ?? 0);
      if (added > 0) assert.ok(['ESHUTDOWN', 'refused'].includes(result), `old leader's late calls fail fenced or refused, not ${result} (${added})`);
    }
  }
  assert.doesNotMatch(first.output(), /fatal/, 'the old leader did not crash');

  // (b) no event from the old replica after it lost the lease.
  for (const claim of [...early, ...late]) {
    const events = await e2e.events(claim.metadata!.name!);
    const stale = events.filter((e) => e.reportingInstance === first.identity && new Date(e.lastTimestamp ?? e.eventTime ?? 0).getTime() > pausedAt);
    assert.deepEqual(stale.map((e) => `${e.reason}: ${e.message}`), [], `events from the deposed replica on ${claim.metadata!.name}`);
  }

  // (c) every claim Bound with exactly one image.
  const images = await e2e.images();
  for (const claim of [...early, ...late]) {
    const pv = await e2e.waitBound(claim.metadata!.name!);
    assert.ok(pv);
    assert.deepEqual(images.filter((name) => name.includes(claim.metadata!.uid!)), [`pvc-${claim.metadata!.uid}`]);
  }
  for (const address of oldAddresses) await ceph(['osd', 'blocklist', 'rm', address]).catch(() => undefined);
});

// RELIABILITY 6 with three replicas, the leader cut off from the API server (a partition, not a pause: it keeps
// running and can still reach Ceph). It must stop acting by its renew deadline, a standby must take over and fence
// it, and once the link is back it must stay up as a standby.
test('three replicas, the leader cut off from the API server: another leads, fences it, binds the claims; the old one stays a standby', async (t) => {
  const link = await apiServerLink(e2e.controlPlane, e2e.controlPlane.stateDir);
  t.after(() => link.close());
  const first = await e2e.startController({ kubeconfigPath: link.kubeconfigPath, extraArgs: LEASE_FLAGS });
  const storageClass = await e2e.createClass(e2e.baseParameters());
  assert.equal(await waitLeader([first], 60_000), first);
  const others = [await e2e.startController({ extraArgs: LEASE_FLAGS }), await e2e.startController({ extraArgs: LEASE_FLAGS })];
  const early = await Promise.all(Array.from({ length: 3 }, () => e2e.createClaim(storageClass)));
  for (const claim of early) await e2e.waitBound(claim.metadata!.name!, 120_000);
  const oldAddresses = (JSON.parse((await leaseAnnotation()) ?? '{}') as { clients?: { address: string }[] }).clients?.map((c) => c.address) ?? [];
  assert.ok(oldAddresses.length >= 1, 'the leader published its Ceph clients');

  const cutAt = Date.now();
  link.cut();
  const late = await Promise.all(Array.from({ length: 3 }, () => e2e.createClaim(storageClass)));
  const newLeader = await waitLeader(others, 120_000);
  const tookOverMs = Date.now() - cutAt;
  const atTakeOver = await cephCalls(first);
  for (const claim of late) await e2e.waitBound(claim.metadata!.name!, 180_000);
  assert.match(newLeader.output(), /previous leader fenced/);
  const blocklist = await ceph(['osd', 'blocklist', 'ls']);
  for (const address of oldAddresses) assert.ok(blocklist.includes(address), `${address} is blocklisted:\n${blocklist}`);
  assert.equal((await Promise.all(others.map((r) => isLeader(r)))).filter(Boolean).length, 1, 'exactly one of the other two leads');
  const readyWhileCut = await fetch(`http://127.0.0.1:${first.httpPort}/readyz`).then((r) => r.status, () => 0);

  link.restore();
  // Back on the network: it must find the lease taken and stay a standby, in the same process.
  await new Promise((resolve) => setTimeout(resolve, 8_000));
  const afterRestore = await cephCalls(first);
  t.diagnostic(`leader cut off; another replica led ${(tookOverMs / 1000).toFixed(1)} s later; the cut-off one's /readyz said ${readyWhileCut} while cut`);
  t.diagnostic(`cut-off replica's Ceph calls by result at the take-over ${JSON.stringify(atTakeOver)}, after the link came back ${JSON.stringify(afterRestore)}`);
  assert.equal(first.child.exitCode, null, 'the cut-off replica stays up');
  assert.equal(await isLeader(first), false, 'and does not lead');
  assert.notEqual(readyWhileCut, 200, '/readyz says it cannot reach the API server');
  assert.equal(afterRestore['ok'] ?? 0, atTakeOver['ok'] ?? 0, 'no Ceph call of the cut-off replica succeeded after another took over');

  const images = await e2e.images();
  for (const claim of [...early, ...late]) {
    assert.deepEqual(images.filter((name) => name.includes(claim.metadata!.uid!)), [`pvc-${claim.metadata!.uid}`], 'one image per claim');
  }
  await e2e.audit();
  for (const address of oldAddresses) await ceph(['osd', 'blocklist', 'rm', address]).catch(() => undefined);
});

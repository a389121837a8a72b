// RELIABILITY #26: a new leader fences what the previous holder published before any loop acts, and does not act
// while fencing fails.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ControllerConfig, createController } from '../../../src/controllers/controller.js';
import type { Fencer } from '../../../src/controllers/fencing.js';
import { createMetrics } from '../../../src/controllers/metrics.js';
import { FakeClock, FakeKube, FakeProvisioner, PROVISIONER, makeClaim, makeClass, memoryLogger } from '../fakes.js';

const ANNOTATION = 'example.com/clients';
const LEASE = 'kube-system/rbd-provisioner-ceph-io';

function config(identity: string): ControllerConfig {
  return {
    provisionerName: PROVISIONER, workers: 2, resyncPeriodMs: 600_000, leaderElect: true,
    leaderElectionNamespace: 'kube-system', leaderElectionLeaseName: 'rbd-provisioner-ceph-io',
    leaderElectionLeaseDurationMs: 15_000, leaderElectionRenewDeadlineMs: 10_000, leaderElectionRetryPeriodMs: 2_000, identity,
  };
}

class FakeFencer implements Fencer {
  calls: { data: string; at: number }[] = [];
  failuresLeft = 0;
  constructor(private readonly clock: FakeClock, private readonly provisioner: FakeProvisioner) {}
  async fence(data: string): Promise<void> {
    this.calls.push({ data, at: this.clock.now() });
    assert.equal(this.provisioner.count('provision'), 0, 'no loop acted before the fence');
    if (this.failuresLeft-- > 0) throw new Error('monitors unreachable');
  }
}

/** A lease left by a paused leader "old": expired from the new replica's point of view once it has watched it. */
function leaseLeftBy(kube: FakeKube, data: string | undefined): void {
  const past = new Date(0);
  kube.leases.set(LEASE, {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
    metadata: { name: 'rbd-provisioner-ceph-io', namespace: 'kube-system', resourceVersion: '1', ...(data === undefined ? {} : { annotations: { [ANNOTATION]: data } }) },
    spec: { holderIdentity: 'old', leaseDurationSeconds: 15, renewTime: past as never, acquireTime: past as never, leaseTransitions: 3 },
  });
}

function setup(kube: FakeKube, clock: FakeClock) {
  const provisioner = new FakeProvisioner();
  const fencer = new FakeFencer(clock, provisioner);
  const onLeading: boolean[] = [];
  const { logger, lines } = memoryLogger('debug');
  const controller = createController({
    config: config('new'), kube, provisioner, logger, metrics: createMetrics(), clock,
    tuning: { shutdownGraceMs: 1000, fenceRetryBaseMs: 1000, fenceRetryMaxMs: 4000 },
    fencing: { fencer, holderDataAnnotation: ANNOTATION },
    onLeading: (leading) => onLeading.push(leading),
  });
  return { provisioner, fencer, controller, lines, onLeading };
}

describe('runner: fencing the previous leader', () => {
  test('fences before any loop starts, retries with backoff without acting while it fails, then acts', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    kube.putClass(makeClass('fast'));
    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    leaseLeftBy(kube, '{"version":1,"clients":["old-client"]}');
    const { provisioner, fencer, controller, lines } = setup(kube, clock);
    fencer.failuresLeft = 3;
    const stop = new AbortController();
    const running = controller.run(stop.signal);
    await clock.advance(20_000);
    assert.equal(kube.leases.get(LEASE)?.spec?.holderIdentity, 'new');
    const firstAt = fencer.calls[0]!.at;
    // 3 failures: retried after 1 s, 2 s, 4 s; nothing acts meanwhile.
    await clock.advance(0);
    assert.ok(fencer.calls.length >= 1 && fencer.calls.length <= 4);
    await clock.advance(8_000);
    assert.equal(fencer.calls.length, 4, JSON.stringify(fencer.calls));
    assert.deepEqual(fencer.calls.map((c) => c.at - firstAt), [0, 1000, 3000, 7000]);
    assert.ok(fencer.calls.every((c) => c.data === '{"version":1,"clients":["old-client"]}'));
    assert.ok(lines.some((l) => /could not fence the previous leader; not acting/.test(l.message)));
    await clock.advance(0);
    assert.equal(provisioner.count('provision'), 1, 'acts once fenced');
    assert.equal(kube.leases.get(LEASE)?.metadata?.annotations?.[ANNOTATION], undefined, 'the fenced record is replaced by ours (empty)');
    stop.abort();
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
  });

  test('while fencing keeps failing, no loop ever starts', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    kube.putClass(makeClass('fast'));
    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    leaseLeftBy(kube, '{"version":1,"clients":["old-client"]}');
    const { provisioner, fencer, controller, lines } = setup(kube, clock);
    fencer.failuresLeft = Number.POSITIVE_INFINITY;
    const stop = new AbortController();
    const running = controller.run(stop.signal);
    await clock.advance(120_000);
    assert.equal(controller.isLeader(), true, 'it holds the lease');
    assert.ok(fencer.calls.length >= 5, `${fencer.calls.length} attempts`);
    assert.equal(provisioner.count('provision'), 0);
    assert.ok(!lines.some((l) => /loops started/.test(l.message)));
    assert.equal(kube.leases.get(LEASE)?.metadata?.annotations?.[ANNOTATION], '{"version":1,"clients":["old-client"]}', 'the record stays for whoever leads next');
    stop.abort();
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
  });

  test('no record, nothing to fence: the loops start at once; published data goes into the lease', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    kube.putClass(makeClass('fast'));
    leaseLeftBy(kube, undefined);
    const { provisioner, fencer, controller, onLeading } = setup(kube, clock);
    const stop = new AbortController();
    const running = controller.run(stop.signal);
    await clock.advance(20_000);
    assert.equal(fencer.calls.length, 0);
    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    await clock.advance(0);
    assert.equal(provisioner.count('provision'), 1);
    await controller.setHolderData('{"version":1,"clients":["mine"]}');
    assert.equal(kube.leases.get(LEASE)?.metadata?.annotations?.[ANNOTATION], '{"version":1,"clients":["mine"]}');
    stop.abort();
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
    assert.deepEqual(onLeading, [true, false]);
    await assert.rejects(controller.setHolderData('x'), /not the leader/);
  });
});

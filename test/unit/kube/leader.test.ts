import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaderLostError } from '../../../src/kube/leader.js';
import { LeaderElector, type LeaderElectionOutcome } from '../../../src/kube/leader.js';
import { FakeClock, FakeKube, apiError, memoryLogger } from '../fakes.js';

interface Replica {
  elector: LeaderElector;
  stop: AbortController;
  outcome: Promise<LeaderElectionOutcome>;
  leading: AbortSignal | undefined;
  startedAt: number | undefined;
  lostAt: number | undefined;
  stopped: string[];
  endSession: () => void;
}

function start(kube: FakeKube, clock: FakeClock, identity: string): Replica {
  const { logger } = memoryLogger('error');
  const elector = new LeaderElector({
    client: kube,
    namespace: 'kube-system',
    name: 'rbd-provisioner-ceph-io',
    identity,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    clock,
    logger,
    random: () => 0,
  });
  const stop = new AbortController();
  let endSession!: () => void;
  const replica: Replica = {
    elector,
    stop,
    leading: undefined,
    startedAt: undefined,
    lostAt: undefined,
    stopped: [],
    endSession: () => endSession(),
    outcome: Promise.resolve('stopped'),
  };
  replica.outcome = elector.run(
    {
      onStartedLeading: (signal) => {
        replica.leading = signal;
        replica.startedAt = clock.now();
        return new Promise<void>((resolve) => {
          endSession = resolve;
          signal.addEventListener(
            'abort',
            () => {
              replica.lostAt = clock.now();
              resolve();
            },
            { once: true },
          );
          stop.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      },
      onStoppedLeading: (reason) => replica.stopped.push(reason),
    },
    stop.signal,
  );
  return replica;
}

const lease = (kube: FakeKube): V1Lease | undefined => kube.leases.get('kube-system/rbd-provisioner-ceph-io');

describe('leader election', () => {
  test('acquires a missing lease, then renews it every retry period', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    assert.ok(a.leading !== undefined && !a.leading.aborted);
    assert.equal(lease(kube)?.spec?.holderIdentity, 'a');
    assert.equal(lease(kube)?.spec?.leaseDurationSeconds, 15);
    assert.equal(lease(kube)?.spec?.leaseTransitions, 0);
    assert.ok(a.elector.isLeaseCurrent());
    const firstRenew = String(lease(kube)?.spec?.renewTime?.toISOString());
    await clock.advance(2_000);
    assert.notEqual(String(lease(kube)?.spec?.renewTime?.toISOString()), firstRenew);
    const wire = JSON.parse(kube.leaseWrites.at(-1) ?? '{}') as { spec: { renewTime: string; acquireTime: string } };
    assert.match(wire.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime goes out with six fractional digits');
    await clock.advance(60_000);
    assert.equal(a.leading.aborted, false);
    assert.equal(kube.calls.filter((c) => c === 'replaceLease').length, 31);
    a.stop.abort();
    assert.equal(await a.outcome, 'stopped');
  });

  test('a standby does not take a lease that its holder keeps renewing', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const b = start(kube, clock, 'b');
    await clock.advance(120_000);
    assert.equal(b.leading, undefined);
    assert.equal(lease(kube)?.spec?.holderIdentity, 'a');
    a.stop.abort();
    b.stop.abort();
    await clock.advance(10_000);
    await Promise.all([a.outcome, b.outcome]);
  });

  test('renewals failing past the renew deadline abort the work signal before the lease expires', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const acquiredAt = clock.now();
    let apiDown = true;
    kube.hook('readLease', () => {
      if (apiDown) throw apiError(0, 'NoResponse', 'connect ECONNREFUSED');
    });
    await clock.advance(9_999);
    assert.equal(a.leading?.aborted, false);
    await clock.advance(1);
    assert.equal(a.leading?.aborted, true);
    assert.ok(a.leading?.reason instanceof LeaderLostError);
    assert.equal(clock.now() - acquiredAt, 10_000, 'given up at the renew deadline, 5 s before anyone may take over');
    assert.equal(a.elector.isLeaseCurrent(), false);
    assert.equal(await a.outcome, 'lost');
    assert.deepEqual(a.stopped, ['lost']);
    apiDown = false;
  });

  test('a standby takes over an expired lease and counts the transition', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const b = start(kube, clock, 'b');
    await clock.advance(1000);
    // The leader dies silently: its renewals stop reaching the API.
    kube.hook('replaceLease', () => {
      if (lease(kube)?.spec?.holderIdentity === 'a' && a.leading !== undefined && !a.leading.aborted) throw apiError(0, 'NoResponse', 'partitioned');
    });
    const diedAt = clock.now();
    await clock.advance(30_000);
    assert.equal(a.leading?.aborted, true);
    assert.ok(b.startedAt !== undefined);
    const handover = b.startedAt - diedAt;
    assert.ok(handover >= 15_000 && handover <= 15_000 + 2 * 2_000 + 1_000, `took over after ${handover} ms`);
    assert.equal(lease(kube)?.spec?.holderIdentity, 'b');
    assert.equal(lease(kube)?.spec?.leaseTransitions, 1);
    assert.ok(a.lostAt !== undefined && a.lostAt <= diedAt + 10_000 && a.lostAt < b.startedAt, 'the old leader stopped before the new one started');
    b.stop.abort();
    await clock.advance(5000);
    await Promise.all([a.outcome, b.outcome]);
  });

  test('another holder in the lease while we lead: we stop at the renew deadline', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const current = lease(kube)!;
    kube.leases.set('kube-system/rbd-provisioner-ceph-io', { ...current, spec: { ...current.spec, holderIdentity: 'intruder' }, metadata: { ...current.metadata, resourceVersion: '999' } });
    await clock.advance(10_000);
    assert.equal(a.leading?.aborted, true);
    assert.equal(await a.outcome, 'lost');
  });

  test('a graceful stop releases the lease so the next replica acquires at once', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const b = start(kube, clock, 'b');
    await clock.advance(1000);
    a.stop.abort();
    await clock.advance(0);
    assert.equal(await a.outcome, 'stopped');
    assert.deepEqual(a.stopped, ['released']);
    assert.equal(lease(kube)?.spec?.holderIdentity, '');
    await clock.advance(2_000);
    assert.ok(b.leading !== undefined, 'b acquired within one retry period');
    b.stop.abort();
    await clock.advance(1000);
    await b.outcome;
  });

  test('the session keeps the lease renewed until it finishes (shutdown drains while still leading)', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    await clock.advance(30_000);
    assert.equal(lease(kube)?.spec?.holderIdentity, 'a');
    a.endSession();
    assert.equal(await a.outcome, 'stopped');
  });

  test('after a pause past the renew deadline the lease is not current even before any timer fires', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    assert.equal(a.elector.isLeaseCurrent(), true);
    clock.jump(10_000);
    assert.equal(a.elector.isLeaseCurrent(), false);
    await clock.advance(0);
    assert.equal(a.leading?.aborted, true);
    assert.equal(await a.outcome, 'lost');
  });
});

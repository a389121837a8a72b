import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ControllerConfig, createController } from '../../../src/controllers/controller.js';
import { LeaderLostError } from '../../../src/kube/leader.js';
import { createMetrics } from '../../../src/controllers/metrics.js';
import { FakeClock, FakeKube, FakeProvisioner, PROVISIONER, apiError, flush, makeClaim, makeClass, memoryLogger } from '../fakes.js';
import { testConfig } from './running.js';

const config = testConfig;

function setup(kube = new FakeKube(), clock = new FakeClock(), overrides: Partial<ControllerConfig> = {}) {
  const provisioner = new FakeProvisioner();
  const { logger, lines } = memoryLogger('debug');
  const metrics = createMetrics();
  const controller = createController({ config: config(overrides), kube, provisioner, logger, metrics, clock, tuning: { shutdownGraceMs: 5000 } });
  return { kube, clock, provisioner, controller, lines, metrics };
}

describe('controller', () => {
  test('a claim is provisioned, and after its release the volume and PV are removed', async () => {
    const { kube, clock, provisioner, controller, metrics } = setup();
    kube.putClass(makeClass('fast'));
    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    const stop = new AbortController();
    const running = controller.run(stop.signal);
    await clock.advance(0);
    assert.equal(controller.isReady(), true);
    assert.equal(controller.isLeader(), true);
    assert.ok(kube.volumes.has('pvc-u1'));
    assert.ok(provisioner.images.has('pvc-u1'));
    const gauges = await metrics.registry.getMetricsAsJSON();
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      gauges.find((m) => m.name === name)?.values.find((v) => Object.entries(labels).every(([k, w]) => v.labels[k] === w))?.value;
    assert.equal(value('rbd_provisioner_leader'), 1);
    assert.equal(value('rbd_provisioner_informer_synced', { informer: 'claims' }), 1);
    assert.equal(value('rbd_provisioner_provision_total', { class: 'fast', result: 'success' }), 1);

    // The binder binds, then the user deletes the claim and the PV controller releases the PV.
    const pv = structuredClone(kube.volumes.get('pvc-u1')!);
    kube.putClaim({ ...makeClaim('data', { uid: 'u1' }), spec: { ...makeClaim('data').spec, volumeName: 'pvc-u1' } });
    kube.putVolume({ ...pv, status: { phase: 'Bound' } });
    await clock.advance(0);
    kube.removeClaim('default', 'data');
    kube.putVolume({ ...structuredClone(kube.volumes.get('pvc-u1')!), status: { phase: 'Released' } });
    await clock.advance(0);
    assert.equal(provisioner.images.size, 0);
    assert.equal(kube.volumes.size, 0);
    assert.equal(provisioner.count('provision'), 1);

    stop.abort();
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
  });

  test('nothing acts before every informer has synced (RELIABILITY #23)', async () => {
    const kube = new FakeKube();
    const { clock, provisioner, controller } = setup(kube);
    kube.putClass(makeClass('fast'));
    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    kube.fail('list', apiError(503, 'ServiceUnavailable')); // the first informer's list fails
    const stop = new AbortController();
    const running = controller.run(stop.signal);
    await clock.advance(500);
    assert.equal(controller.isReady(), false);
    assert.equal(provisioner.calls.length, 0);
    await clock.advance(2_000);
    assert.equal(controller.isReady(), true);
    assert.equal(provisioner.count('provision'), 1);
    stop.abort();
    await clock.advance(0);
    await running;
  });

  test('with leader election only the leader acts; losing the lease aborts work at once and returns to standby', async () => {
    const kube = new FakeKube();
    const clock = new FakeClock();
    kube.putClass(makeClass('fast'));
    const a = setup(kube, clock, { leaderElect: true, identity: 'a' });
    const b = setup(kube, clock, { leaderElect: true, identity: 'b' });
    let release!: () => void;
    a.provisioner.provisionGate = new Promise((resolve) => (release = resolve));
    const stopA = new AbortController();
    const stopB = new AbortController();
    const runningA = a.controller.run(stopA.signal);
    await clock.advance(0);
    const runningB = b.controller.run(stopB.signal);
    await clock.advance(0);
    assert.equal(a.controller.isLeader(), true);
    assert.equal(b.controller.isLeader(), false);
    assert.equal(b.controller.isReady(), true, 'a synced standby is ready');
    assert.throws(() => b.controller.assertLeading(), LeaderLostError);

    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    await clock.advance(0);
    assert.equal(a.provisioner.count('provision'), 1);
    assert.equal(a.provisioner.lastSignal?.aborted, false);

    // a is cut off from the API: renewals fail.
    const replaceLease = kube.replaceLease.bind(kube);
    kube.replaceLease = async (namespace, name, lease, signal) => {
      if (lease.spec?.holderIdentity === 'a') throw apiError(0, 'NoResponse', 'partitioned');
      return replaceLease(namespace, name, lease, signal);
    };
    await clock.advance(10_000);
    assert.equal(a.provisioner.lastSignal?.aborted, true, 'in-flight work sees the abort');
    assert.throws(() => a.controller.assertLeading(), LeaderLostError);
    let aEnded = false;
    void runningA.then(() => (aEnded = true));
    release();
    await flush();
    assert.equal(kube.volumes.size, 0, 'the old leader saved nothing after losing the lease');
    assert.equal(aEnded, false, 'a stands by in the same process instead of exiting');
    assert.equal(a.controller.isLeader(), false);
    assert.equal(a.controller.isReady(), true, 'its caches stay warm');

    // b takes over once the lease has not been renewed for its duration (plus jittered retry periods).
    await clock.advance(20_000);
    assert.equal(b.controller.isLeader(), true);
    assert.equal(b.provisioner.count('provision'), 1);
    assert.ok(kube.volumes.has('pvc-u1'));
    kube.replaceLease = replaceLease;
    stopB.abort();
    await clock.advance(0);
    assert.equal(await runningB, 'shutdown');

    // b released the lease on shutdown: a, still campaigning, leads again.
    await clock.advance(10_000);
    assert.equal(a.controller.isLeader(), true);
    stopA.abort();
    await clock.advance(0);
    assert.equal(await runningA, 'shutdown');
  });

  test('graceful shutdown lets work in flight finish, then releases the lease', async () => {
    const { kube, clock, a, running, release } = await leaderStoppedWithProvisionInFlight();
    await clock.advance(1000);
    assert.equal(a.provisioner.lastSignal?.aborted, false, 'draining, not aborting');
    release();
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
    assert.ok(kube.volumes.has('pvc-u1'), 'the in-flight provision finished and saved its PV');
    assert.equal(kube.leases.get('kube-system/rbd-provisioner-ceph-io')?.spec?.holderIdentity, '');
  });

  test('shutdown: work that does not stop after the abort keeps the lease from being released (it expires)', async () => {
    const { kube, clock, a, running, release } = await leaderStoppedWithProvisionInFlight();
    await clock.advance(5000);
    assert.equal(a.provisioner.lastSignal?.aborted, true, 'aborted after the grace period');
    await clock.advance(10_000);
    assert.equal(await running, 'shutdown');
    assert.equal(kube.leases.get('kube-system/rbd-provisioner-ceph-io')?.spec?.holderIdentity, 'a', 'not released while the old call may run');
    assert.ok(a.lines.some((l) => l.message === 'aborted work has not stopped; leaving the lease to expire'));
    release();
    await flush();
  });

  test('shutdown: work that stops after the abort is waited for, then the lease is released', async () => {
    const { kube, clock, a, running: run, release } = await leaderStoppedWithProvisionInFlight();
    let finished = false;
    const running = run.finally(() => (finished = true));
    await clock.advance(5000 + 3000);
    assert.equal(a.provisioner.lastSignal?.aborted, true);
    assert.equal(finished, false, 'still waiting for the aborted call');
    assert.equal(kube.leases.get('kube-system/rbd-provisioner-ceph-io')?.spec?.holderIdentity, 'a');
    release(); // the storage call returns, seeing the abort
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
    assert.equal(kube.leases.get('kube-system/rbd-provisioner-ceph-io')?.spec?.holderIdentity, '');
    assert.equal(kube.volumes.size, 0);
  });
});

/** A leader whose provision of claim u1 is held in the provisioner when shutdown is asked for. */
async function leaderStoppedWithProvisionInFlight() {
  const kube = new FakeKube();
  const clock = new FakeClock();
  kube.putClass(makeClass('fast'));
  const a = setup(kube, clock, { leaderElect: true, identity: 'a' });
  let release!: () => void;
  a.provisioner.provisionGate = new Promise((resolve) => (release = resolve));
  const stop = new AbortController();
  const running = a.controller.run(stop.signal);
  await clock.advance(0);
  kube.putClaim(makeClaim('data', { uid: 'u1' }));
  await clock.advance(0);
  stop.abort();
  return { kube, clock, a, running, release };
}

// The leader elector's holder data: what a holder publishes on the Lease, and what its successor finds there.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Handover, LeaderElector, LeaderLostError } from '../../../src/kube/leader.js';
import { FakeClock, FakeKube, apiError, memoryLogger } from '../fakes.js';

const ANNOTATION = 'example.com/holder-data';
const LEASE = 'kube-system/lease';

function start(kube: FakeKube, clock: FakeClock, identity: string) {
  const { logger } = memoryLogger('error');
  const elector = new LeaderElector({
    client: kube, namespace: 'kube-system', name: 'lease', identity,
    leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, clock, logger, random: () => 0,
    holderDataAnnotation: ANNOTATION,
  });
  const stop = new AbortController();
  const state: { handover?: Handover; leading?: AbortSignal } = {};
  const outcome = elector.run({
    onStartedLeading: (signal, handover) => {
      state.handover = handover;
      state.leading = signal;
      return new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => resolve(), { once: true });
        stop.signal.addEventListener('abort', () => resolve(), { once: true });
      });
    },
  }, stop.signal);
  return { elector, stop, state, outcome };
}

const annotation = (kube: FakeKube): string | undefined => kube.leases.get(LEASE)?.metadata?.annotations?.[ANNOTATION];

describe('leader election: holder data', () => {
  test('written at once, kept by renewals, handed to the next holder, inherited until it sets its own', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    assert.deepEqual(a.state.handover, { previousHolder: '', previousData: undefined });
    await a.elector.setHolderData('{"clients":["x"]}');
    assert.equal(annotation(kube), '{"clients":["x"]}', 'written at once, not at the next renewal');
    await clock.advance(6_000);
    assert.equal(annotation(kube), '{"clients":["x"]}', 'renewals keep it');
    assert.ok(kube.leaseWrites.at(-1)?.includes(ANNOTATION), 'the annotation goes over the wire');

    // a is cut off (as if paused): its renewals fail; b takes over after the lease duration.
    const replaceLease = kube.replaceLease.bind(kube);
    kube.replaceLease = async (namespace, name, lease, signal) => {
      if (lease.spec?.holderIdentity === 'a') throw apiError(0, 'NoResponse', 'partitioned');
      return replaceLease(namespace, name, lease, signal);
    };
    const b = start(kube, clock, 'b');
    await clock.advance(30_000);
    assert.equal(a.state.leading?.aborted, true);
    await assert.rejects(a.elector.setHolderData('late'), LeaderLostError);
    assert.equal(kube.leases.get(LEASE)?.spec?.holderIdentity, 'b');
    assert.deepEqual(b.state.handover, { previousHolder: 'a', previousData: '{"clients":["x"]}' });
    assert.equal(annotation(kube), '{"clients":["x"]}', 'inherited until the new holder sets its own');
    await clock.advance(4_000);
    assert.equal(annotation(kube), '{"clients":["x"]}', 'renewals by the new holder keep it too');

    await b.elector.setHolderData('');
    assert.equal(annotation(kube), undefined, 'empty data removes the annotation');
    await b.elector.setHolderData('{"clients":["y"]}');
    assert.equal(annotation(kube), '{"clients":["y"]}');
    a.stop.abort();
    b.stop.abort();
    await clock.advance(0);
    await Promise.all([a.outcome, b.outcome]);
  });

  test('setHolderData rejects on a replica that is not leading, and writes nothing', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const b = start(kube, clock, 'b');
    await clock.advance(0);
    await assert.rejects(b.elector.setHolderData('mine'), LeaderLostError);
    assert.equal(annotation(kube), undefined);
    a.stop.abort();
    b.stop.abort();
    await clock.advance(0);
  });

  test('a holder-data write that conflicts is retried within the renew deadline', async () => {
    const clock = new FakeClock();
    const kube = new FakeKube();
    const a = start(kube, clock, 'a');
    await clock.advance(0);
    const replaceLease = kube.replaceLease.bind(kube);
    let conflicts = 2;
    kube.replaceLease = async (namespace, name, lease, signal) => {
      if (conflicts-- > 0) throw apiError(409, 'Conflict', 'the object has been modified');
      return replaceLease(namespace, name, lease, signal);
    };
    const written = a.elector.setHolderData('data');
    await clock.advance(2_000);
    await written;
    assert.equal(annotation(kube), 'data');
    a.stop.abort();
    await clock.advance(0);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { trackApiHealth } from '../../../src/kube/health.js';
import { FakeClock, FakeKube, apiError, makeClaim } from '../fakes.js';

describe('API server health, from the outcome of every request', () => {
  test('unreachable after a request gets no answer; reachable again after one is answered', async () => {
    const fake = new FakeKube();
    const clock = new FakeClock();
    const { kube, health } = trackApiHealth(fake, clock);
    assert.equal(health.reachable(), true);
    fake.fail('readClaim', apiError(0, 'NoResponse', 'connect ECONNREFUSED 127.0.0.1:6443'));
    clock.jump(1);
    await assert.rejects(kube.readClaim('default', 'data'));
    assert.equal(health.reachable(), true, 'within the grace period one failure is not an outage');
    clock.jump(5000);
    assert.equal(health.reachable(), false);
    assert.match(health.lastProblem() ?? '', /ECONNREFUSED/);
    fake.claims.set('default/data', makeClaim('data'));
    clock.jump(1);
    assert.ok(await kube.readClaim('default', 'data'));
    assert.equal(health.reachable(), true);
    assert.equal(health.lastProblem(), undefined);
  });

  test('a refusal (4xx) is an answer; a 5xx is not', async () => {
    const fake = new FakeKube();
    const clock = new FakeClock();
    const { kube, health } = trackApiHealth(fake, clock);
    fake.fail('createVolume', apiError(403, 'Forbidden', 'forbidden'));
    await assert.rejects(kube.createVolume({ metadata: { name: 'pv' } }));
    assert.equal(health.reachable(), true);
    clock.jump(1);
    fake.fail('createVolume', apiError(503, 'ServiceUnavailable', 'etcd is down'));
    await assert.rejects(kube.createVolume({ metadata: { name: 'pv' } }));
    clock.jump(5000);
    assert.equal(health.reachable(), false);
  });

  test('a request aborted by this process (shutdown, a lost lease) says nothing about the API server', async () => {
    const fake = new FakeKube();
    const clock = new FakeClock();
    const { kube, health } = trackApiHealth(fake, clock);
    const lost = new Error('leadership lost: the renew deadline passed');
    lost.name = 'LeaderLostError';
    fake.fail('readClaim', lost);
    await assert.rejects(kube.readClaim('default', 'data'));
    clock.jump(10_000);
    assert.equal(health.reachable(), true);
  });
});

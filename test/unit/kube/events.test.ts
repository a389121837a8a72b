import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEventRecorder, truncateUtf8 } from '../../../src/kube/events.js';
import { FakeClock, FakeKube, PROVISIONER, apiError, memoryLogger } from '../fakes.js';

const claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data', namespace: 'apps', uid: 'u1' };

function recorder() {
  const clock = new FakeClock();
  const kube = new FakeKube();
  const { logger, lines } = memoryLogger('debug');
  const events = createEventRecorder({ kube, component: PROVISIONER, instance: 'pod-0', clock, logger });
  return { clock, kube, events, lines };
}

describe('event recorder', () => {
  test('creates a core/v1 Event with involvedObject, reason, type, source and count', async () => {
    const { kube, events } = recorder();
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'parameter "pool" is required');
    await events.flush();
    assert.equal(kube.events.length, 1);
    const event = kube.events[0]!;
    assert.equal(event.metadata?.namespace, 'apps');
    assert.match(event.metadata?.name ?? '', /^data\.[0-9a-f]+$/);
    assert.deepEqual(event.involvedObject, claimRef);
    assert.equal(event.reason, 'ProvisioningFailed');
    assert.equal(event.type, 'Warning');
    assert.equal(event.message, 'parameter "pool" is required');
    assert.deepEqual(event.source, { component: PROVISIONER });
    assert.equal(event.reportingComponent, PROVISIONER);
    assert.equal(event.reportingInstance, 'pod-0');
    assert.equal(event.count, 1);
  });

  test('an identical event within the window bumps the count instead of creating another', async () => {
    const { kube, events } = recorder();
    for (let i = 0; i < 3; i++) events.event(claimRef, 'Warning', 'ProvisioningFailed', 'same');
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'different');
    await events.flush();
    assert.equal(kube.events.length, 2);
    assert.deepEqual(kube.eventPatches.map((p) => (p.patch as { count: number }).count), [2, 3]);
    assert.equal(kube.events[0]?.count, 3);
  });

  test('after the aggregation window a new event is created', async () => {
    const { clock, kube, events } = recorder();
    events.event(claimRef, 'Normal', 'Provisioning', 'x');
    await events.flush();
    clock.jump(10 * 60_000 + 1);
    events.event(claimRef, 'Normal', 'Provisioning', 'x');
    await events.flush();
    assert.equal(kube.events.length, 2);
    assert.equal(kube.eventPatches.length, 0);
  });

  test('an aggregated event that disappeared is created again', async () => {
    const { kube, events } = recorder();
    events.event(claimRef, 'Normal', 'Provisioning', 'x');
    await events.flush();
    kube.events.length = 0;
    events.event(claimRef, 'Normal', 'Provisioning', 'x');
    await events.flush();
    assert.equal(kube.events.length, 1);
    assert.equal(kube.events[0]?.count, 1);
  });

  test('a failed event is logged, never thrown', async () => {
    const { kube, events, lines } = recorder();
    kube.fail('createEvent', apiError(403, 'Forbidden', 'create event: HTTP 403'));
    events.event(claimRef, 'Normal', 'Provisioning', 'x');
    await events.flush();
    assert.ok(lines.some((l) => l.message === 'could not record event' && l.level === 'warn'));
  });

  test('messages are cut to 1 KiB of UTF-8 and cephx keys are redacted', async () => {
    const { kube, events } = recorder();
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'é'.repeat(2000));
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'auth failed for key AQBzbD1lAAAAABAAk7ZpUbTwDSa0Xjbi3bVVAw==');
    await events.flush();
    const long = kube.events[0]?.message ?? '';
    assert.ok(Buffer.byteLength(long, 'utf8') <= 1024);
    assert.ok(long.endsWith('...'));
    assert.doesNotMatch(long, /\uFFFD/);
    assert.equal(kube.events[1]?.message, 'auth failed for key [redacted]');
  });

  test('truncateUtf8 keeps short text as is', () => {
    assert.equal(truncateUtf8('short'), 'short');
    assert.equal(truncateUtf8('abcdef', 5), 'ab...');
  });
});

// RELIABILITY #26: a replica that may not act (not leading, or its lease may have expired) posts no event.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEventRecorder } from '../../../src/kube/events.js';
import { FakeClock, FakeKube, PROVISIONER, memoryLogger } from '../fakes.js';

const claimRef = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'data', namespace: 'apps', uid: 'u1' };

function recorder(mayEmit: () => boolean) {
  const kube = new FakeKube();
  const { logger, lines } = memoryLogger('debug');
  const events = createEventRecorder({ kube, component: PROVISIONER, instance: 'pod-0', clock: new FakeClock(), logger, mayEmit });
  return { kube, events, lines };
}

describe('event recorder: mayEmit', () => {
  test('records while allowed, drops while not', async () => {
    let allowed = true;
    const { kube, events, lines } = recorder(() => allowed);
    events.event(claimRef, 'Normal', 'Provisioning', 'one');
    await events.flush();
    allowed = false;
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'this replica is not the leader');
    await events.flush();
    assert.deepEqual(kube.events.map((e) => e.message), ['one']);
    assert.ok(lines.some((l) => /not recording event/.test(l.message)), JSON.stringify(lines));
    allowed = true;
    events.event(claimRef, 'Normal', 'Provisioning', 'two');
    await events.flush();
    assert.deepEqual(kube.events.map((e) => e.message), ['one', 'two']);
  });

  test('an event recorded while allowed is dropped if the replica may no longer act when it would be sent', async () => {
    let allowed = true;
    const { kube, events } = recorder(() => allowed);
    const createEvent = kube.createEvent.bind(kube);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    kube.createEvent = async (namespace, event, signal) => {
      if (first) {
        first = false;
        await gate;
      }
      return createEvent(namespace, event, signal);
    };
    // The second identical event waits behind the first; by the time it is sent the lease is gone.
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'same');
    events.event({ ...claimRef, uid: 'u2', name: 'other' }, 'Warning', 'ProvisioningFailed', 'queued');
    events.event(claimRef, 'Warning', 'ProvisioningFailed', 'same');
    allowed = false;
    release();
    await events.flush();
    assert.equal(kube.events.length, 0, kube.events.map((e) => e.message).join(', '));
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHttpServer } from '../../src/http.js';
import { createMetrics } from '../../src/controllers/metrics.js';
import { memoryLogger } from './fakes.js';

describe('HTTP endpoints', () => {
  test('/healthz, /readyz, /metrics', async () => {
    const metrics = createMetrics();
    metrics.cephCallDuration.observe({ op: 'rbd_create4', result: 'ok' }, 0.003);
    metrics.cephCallsInFlight.inc();
    let why: string | undefined = 'informers not synced';
    const server = await startHttpServer({ address: '127.0.0.1:0', registry: metrics.registry, notReadyBecause: () => why, logger: memoryLogger('error').logger });
    const base = `http://127.0.0.1:${server.port}`;
    try {
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      const notReady = await fetch(`${base}/readyz`);
      assert.equal(notReady.status, 503);
      assert.equal(await notReady.text(), 'informers not synced\n');
      why = 'API server unreachable: connect ECONNREFUSED';
      assert.equal(await (await fetch(`${base}/readyz`)).text(), 'API server unreachable: connect ECONNREFUSED\n');
      why = undefined;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const body = await (await fetch(`${base}/metrics`)).text();
      for (const name of [
        'rbd_provisioner_provision_total',
        'rbd_provisioner_provision_duration_seconds',
        'rbd_provisioner_delete_total',
        'rbd_provisioner_workqueue_depth',
        'rbd_provisioner_workqueue_adds_total',
        'rbd_provisioner_workqueue_queue_duration_seconds',
        'rbd_provisioner_workqueue_work_duration_seconds',
        'rbd_provisioner_workqueue_unfinished_work_seconds',
        'rbd_provisioner_workqueue_longest_running_processor_seconds',
        'rbd_provisioner_workqueue_retries_total',
        'rbd_provisioner_build_info',
        'rbd_provisioner_informer_restarts_total',
        'rbd_provisioner_leader',
      ]) {
        assert.match(body, new RegExp(`# TYPE ${name} `));
      }
      assert.match(body, /rbd_provisioner_ceph_call_duration_seconds_count\{op="rbd_create4",result="ok"\} 1/);
      assert.match(body, /rbd_provisioner_ceph_calls_in_flight 1/);
      assert.equal((await fetch(`${base}/nothing`)).status, 404);
      assert.equal((await fetch(`${base}/healthz`, { method: 'POST' })).status, 405);
    } finally {
      await server.close();
    }
  });

  test('a bad address is refused', async () => {
    await assert.rejects(
      startHttpServer({ address: 'nonsense', registry: createMetrics().registry, notReadyBecause: () => undefined, logger: memoryLogger('error').logger }),
      /invalid HTTP address "nonsense"/,
    );
  });
});

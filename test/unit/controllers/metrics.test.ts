// The metrics users scrape: names stock dashboards expect, and build_info.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../../src/controllers/metrics.js';

describe('metrics', () => {
  test('Node\'s process metrics keep prom-client\'s own names (process_*, nodejs_*), not ours', async () => {
    const metrics = createMetrics({ defaultMetrics: true });
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(names.includes(name), `${name} is registered`);
    }
    assert.deepEqual(names.filter((name) => /^rbd_provisioner_(process|nodejs)_/.test(name)), []);
    assert.deepEqual(names.filter((name) => !/^(rbd_provisioner|process|nodejs)_/.test(name)), []);
  });

  test('without defaultMetrics only ours are registered (tests make many registries)', async () => {
    const names = (await createMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    assert.deepEqual(names.filter((name) => !name.startsWith('rbd_provisioner_')), []);
  });

  test('rbd_provisioner_build_info is 1, labelled with the versions', async () => {
    const metrics = createMetrics({ buildInfo: { version: '1.2.3', nodeVersion: 'v24.22.3' } });
    const text = await metrics.registry.metrics();
    assert.match(text, /^# TYPE rbd_provisioner_build_info gauge$/m);
    assert.match(text, /^rbd_provisioner_build_info\{version="1\.2\.3",node_version="v24\.22\.3"\} 1$/m);
  });
});

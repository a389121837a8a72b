// The metrics users scrape: names stock dashboards expect, build_info, and the work-queue metrics of a running
// controller (client-go's set, by loop) read at scrape time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../../src/controllers/metrics.js';
import { FakeProvisioner, makeClaim, makeClass } from '../fakes.js';
import { runController } from './running.js';

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

  test('unfinished work and the longest run are read from each loop\'s queue when scraped', async () => {
    const metrics = createMetrics();
    let running = { unfinishedSeconds: 3, longestSeconds: 2 };
    metrics.queueProgress.set('provision', () => running);
    const scrape = async (): Promise<string> => metrics.registry.metrics();
    assert.match(await scrape(), /^rbd_provisioner_workqueue_unfinished_work_seconds\{loop="provision"\} 3$/m);
    running = { unfinishedSeconds: 7.5, longestSeconds: 6 };
    const text = await scrape();
    assert.match(text, /^rbd_provisioner_workqueue_unfinished_work_seconds\{loop="provision"\} 7\.5$/m);
    assert.match(text, /^rbd_provisioner_workqueue_longest_running_processor_seconds\{loop="provision"\} 6$/m);
  });

  test('a running controller reports adds, queue and work durations, and a stuck run, by loop', async () => {
    // Hold the provision in flight, as a hung Ceph call would.
    const provisioner = new FakeProvisioner();
    let release!: () => void;
    provisioner.provisionGate = new Promise<void>((resolve) => (release = resolve));
    const run = runController({ deps: { provisioner } });
    const { kube, clock } = run;
    // One sample of the exposition text, as Prometheus reads it (histograms have _count and _sum lines).
    const metric = async (name: string, labels: Record<string, string>): Promise<number | undefined> => {
      const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
      const line = (await run.metrics.registry.metrics()).split('\n')
        .find((l) => l.startsWith(`${name}{`) && wanted.every((label) => l.slice(0, l.indexOf('}')).includes(label)));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    kube.putClass(makeClass('fast'));
    await clock.advance(0);
    kube.putClaim(makeClaim('data', { uid: 'u1' }));
    await clock.advance(0);
    assert.equal(await metric('rbd_provisioner_workqueue_adds_total', { loop: 'provision' }), 1);
    assert.equal(await metric('rbd_provisioner_workqueue_queue_duration_seconds_count', { loop: 'provision' }), 1);
    clock.jump(42_000);
    assert.equal(await metric('rbd_provisioner_workqueue_longest_running_processor_seconds', { loop: 'provision' }), 42);
    assert.equal(await metric('rbd_provisioner_workqueue_unfinished_work_seconds', { loop: 'provision' }), 42);
    assert.equal(await metric('rbd_provisioner_workqueue_depth', { loop: 'provision' }), 0);
    release();
    await clock.advance(0);
    assert.equal(await metric('rbd_provisioner_workqueue_longest_running_processor_seconds', { loop: 'provision' }), 0);
    // The claim's run took 42 s of the clock; the new PV's own key ran after it, in no time.
    const runs = await metric('rbd_provisioner_workqueue_work_duration_seconds_count', { loop: 'provision' });
    assert.ok(runs !== undefined && runs >= 1);
    assert.equal(await metric('rbd_provisioner_workqueue_work_duration_seconds_sum', { loop: 'provision' }), 42);
    assert.equal(await metric('rbd_provisioner_workqueue_work_duration_seconds_bucket', { loop: 'provision', le: '30' }), runs - 1, 'one run over 30 s');
    assert.ok(kube.volumes.has('pvc-u1'));
    await run.shutdown();
  });
});

// The whole controller as main.ts wires it, running over the in-memory API server and a fake clock: for the tests
// of one loop that want everything around it real (informers, runner, queues, metrics).
import assert from 'node:assert/strict';
import { type ControllerConfig, type ControllerDeps, createController } from '../../../src/controllers/controller.js';
import { createMetrics } from '../../../src/controllers/metrics.js';
import { FakeClock, FakeKube, FakeProvisioner, PROVISIONER, memoryLogger } from '../fakes.js';

/** A single replica (no leader election) with the defaults the flags give. */
export function testConfig(overrides: Partial<ControllerConfig> = {}): ControllerConfig {
  return {
    provisionerName: PROVISIONER,
    workers: 4,
    resyncPeriodMs: 600_000,
    leaderElect: false,
    leaderElectionNamespace: 'kube-system',
    leaderElectionLeaseName: 'rbd-provisioner-ceph-io',
    leaderElectionLeaseDurationMs: 15_000,
    leaderElectionRenewDeadlineMs: 10_000,
    leaderElectionRetryPeriodMs: 2_000,
    identity: 'replica-a',
    ...overrides,
  };
}

/** Starts the controller at once; shutdown() stops it and checks that it ended by the shutdown. */
export function runController(options: {
  config?: Partial<ControllerConfig>;
  deps?: Partial<Omit<ControllerDeps, 'config' | 'kube'>>;
  /** The API server's objects before the controller starts. */
  kube?: FakeKube;
} = {}) {
  const kube = options.kube ?? new FakeKube();
  const clock = new FakeClock();
  const { logger, lines } = memoryLogger('debug');
  const metrics = createMetrics();
  const controller = createController({
    config: testConfig(options.config),
    kube, provisioner: new FakeProvisioner(), logger, metrics, clock,
    tuning: { shutdownGraceMs: 5000, retryBaseDelayMs: 100, retryMaxDelayMs: 1000 },
    ...options.deps,
  });
  const stop = new AbortController();
  const running = controller.run(stop.signal);
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number | undefined> =>
    (await metrics.registry.getMetricsAsJSON())
      .find((m) => m.name === name)?.values.find((v) => Object.entries(labels).every(([k, w]) => v.labels[k] === w))?.value;
  const shutdown = async (): Promise<void> => {
    stop.abort();
    await clock.advance(0);
    assert.equal(await running, 'shutdown');
  };
  return { kube, clock, controller, lines, metric, metrics, shutdown };
}

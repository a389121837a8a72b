// A Reconciler wired to fakes, with a cache that is separate from the fake API server so tests can model lag.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { createEventRecorder } from '../../../../src/kube/events.js';
import { createMetrics, type Metrics } from '../../../../src/controllers/metrics.js';
import { Reconciler } from '../../../../src/controllers/provision/reconciler.js';
import { FakeClock, FakeKube, FakeProvisioner, type LogLine, PROVISIONER, makeClass, memoryLogger } from '../../fakes.js';

export interface Harness {
  clock: FakeClock;
  kube: FakeKube;
  provisioner: FakeProvisioner;
  metrics: Metrics;
  lines: LogLine[];
  logText: () => string;
  reconciler: Reconciler;
  cacheClaims: Map<string, V1PersistentVolumeClaim>;
  cacheVolumes: Map<string, V1PersistentVolume>;
  cacheClasses: Map<string, V1StorageClass>;
  state: { synced: boolean; mayAct: boolean };
  signal: AbortSignal;
  abort: () => void;
  /** Puts the claim in both the cache and the API. */
  addClaim(claim: V1PersistentVolumeClaim): void;
  addVolume(volume: V1PersistentVolume): void;
  flushEvents(): Promise<void>;
  eventReasons(): string[];
  metric(name: string, labels: Record<string, string>): Promise<number | undefined>;
}

export function harness(tuning: { saveAttempts?: number; saveRetryBaseMs?: number; orphanScanTimeoutMs?: number } = {}): Harness {
  const clock = new FakeClock();
  const kube = new FakeKube();
  const provisioner = new FakeProvisioner();
  const metrics = createMetrics();
  const { logger, lines, text } = memoryLogger('debug');
  const events = createEventRecorder({ kube, component: PROVISIONER, instance: 'test-0', clock, logger });
  const cacheClaims = new Map<string, V1PersistentVolumeClaim>();
  const cacheVolumes = new Map<string, V1PersistentVolume>();
  const cacheClasses = new Map<string, V1StorageClass>([['fast', makeClass('fast')]]);
  const state = { synced: true, mayAct: true };
  const controller = new AbortController();
  const reconciler = new Reconciler({
    provisionerName: PROVISIONER,
    kube,
    provisioner,
    cache: {
      claim: (key) => cacheClaims.get(key),
      volume: (name) => cacheVolumes.get(name),
      storageClass: (name) => cacheClasses.get(name),
      claims: () => [...cacheClaims.values()],
      volumes: () => [...cacheVolumes.values()],
      storageClasses: () => [...cacheClasses.values()],
      synced: () => state.synced,
    },
    events,
    metrics,
    logger,
    clock,
    mayAct: () => state.mayAct,
    tuning: {
      saveAttempts: tuning.saveAttempts ?? 3,
      saveRetryBaseMs: tuning.saveRetryBaseMs ?? 100,
      patchAttempts: 3,
      ...(tuning.orphanScanTimeoutMs === undefined ? {} : { orphanScanTimeoutMs: tuning.orphanScanTimeoutMs }),
    },
  });
  return {
    clock,
    kube,
    provisioner,
    metrics,
    lines,
    logText: text,
    reconciler,
    cacheClaims,
    cacheVolumes,
    cacheClasses,
    state,
    signal: controller.signal,
    abort: () => controller.abort(new Error('lost')),
    addClaim(claim) {
      cacheClaims.set(`${claim.metadata?.namespace}/${claim.metadata?.name}`, claim);
      kube.claims.set(`${claim.metadata?.namespace}/${claim.metadata?.name}`, structuredClone(claim));
    },
    addVolume(volume) {
      cacheVolumes.set(volume.metadata?.name ?? '', volume);
      kube.volumes.set(volume.metadata?.name ?? '', structuredClone(volume));
    },
    flushEvents: () => events.flush(),
    eventReasons: () => kube.events.map((e) => `${e.type}/${e.reason}`),
    async metric(name, labels) {
      const metric = await metrics.registry.getSingleMetric(name)?.get();
      const value = metric?.values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
      return value?.value;
    },
  };
}

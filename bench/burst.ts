// Bursts of claims through the real controller process (RELIABILITY 21): every claim Bound, Ceph calls in flight
// within the configured bound, memory flat from one burst to the next; then every claim deleted. Prints figures;
// asserts nothing.
//
//   npm run bench:burst            (CLAIMS=500 per burst, ROUNDS=2; starts the test Ceph and control plane if needed)
import { setupE2e, type E2e } from '../test/support/e2e.js';

const CLAIMS = Number(process.env['CLAIMS'] ?? 500);
const ROUNDS = Number(process.env['ROUNDS'] ?? 2);
const MAX_INFLIGHT = 16;
const MiB = 2 ** 20;

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 15 * 60_000;
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`${what}: not done after 15 minutes`);
    await sleep(200);
  }
}

async function burst(e2e: E2e, storageClass: string): Promise<void> {
  const mine = async () => (await e2e.core.listPersistentVolume()).items.filter((pv) => pv.spec?.claimRef?.namespace === e2e.namespace);
  const started = performance.now();
  const created = new Map<string, number>();
  for (let i = 0; i < CLAIMS; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, CLAIMS - i) }, () => e2e.createClaim(storageClass, { size: '1Gi' })));
    for (const claim of batch) created.set(claim.metadata!.name!, performance.now());
  }
  const boundAt = new Map<string, number>();
  let allPvsAt: number | undefined;
  await until('all Bound', async () => {
    for (const claim of (await e2e.core.listNamespacedPersistentVolumeClaim({ namespace: e2e.namespace })).items) {
      if (claim.status?.phase === 'Bound' && !boundAt.has(claim.metadata!.name!)) boundAt.set(claim.metadata!.name!, performance.now());
    }
    if (allPvsAt === undefined && (await mine()).length >= CLAIMS) allPvsAt = performance.now();
    return boundAt.size >= CLAIMS;
  });
  const seconds = (at: number) => (at - started) / 1000;
  const latencies = [...created].map(([name, at]) => boundAt.get(name)! - at);
  console.log(`  all ${CLAIMS} images + PVs made   ${seconds(allPvsAt ?? performance.now()).toFixed(1)} s (${(CLAIMS / seconds(allPvsAt ?? performance.now())).toFixed(1)}/s; the provisioner's part)`);
  console.log(`  all ${CLAIMS} Bound              ${seconds(performance.now()).toFixed(1)} s (binding is kube-controller-manager's)`);
  console.log(`  create -> Bound latency     p50 ${(percentile(latencies, 50) / 1000).toFixed(2)} s, p99 ${(percentile(latencies, 99) / 1000).toFixed(2)} s`);
  console.log(`  images in the pool          ${(await e2e.images()).length}`);

  const deleting = performance.now();
  await e2e.core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace: e2e.namespace });
  await until('all deleted', async () => (await e2e.images()).length === 0 && (await mine()).length === 0);
  console.log(`  all images and PVs deleted  ${((performance.now() - deleting) / 1000).toFixed(1)} s`);
}

async function main(): Promise<void> {
  const e2e = await setupE2e('burst');
  try {
    const controller = await e2e.startController({ extraArgs: [`--ceph-max-inflight=${MAX_INFLIGHT}`, '--kube-api-qps=200', '--kube-api-burst=400'] });
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const memory = async () => ({
      rss: await metric(controller.httpPort, 'process_resident_memory_bytes'),
      heap: await metric(controller.httpPort, 'nodejs_heap_size_used_bytes'),
    });
    const show = (label: string, m: { rss: number; heap: number }) =>
      console.log(`  memory ${label.padEnd(20)} RSS ${(m.rss / MiB).toFixed(0)} MiB, JS heap used ${(m.heap / MiB).toFixed(0)} MiB`);
    let peakInflight = 0;
    let peakRss = 0;
    const sampler = setInterval(() => {
      void metric(controller.httpPort, 'rbd_provisioner_ceph_calls_in_flight').then((v) => { peakInflight = Math.max(peakInflight, v); }, () => {});
      void metric(controller.httpPort, 'process_resident_memory_bytes').then((v) => { peakRss = Math.max(peakRss, v); }, () => {});
    }, 50);
    console.log(`# ${ROUNDS} bursts of ${CLAIMS} claims, --ceph-max-inflight=${MAX_INFLIGHT}`);
    show('at start', await memory());
    for (let round = 1; round <= ROUNDS; round++) {
      console.log(`round ${round}`);
      await burst(e2e, storageClass);
      // Idle a little so V8's idle-time GC has run before we read the heap.
      await sleep(15_000);
      show(`after round ${round}`, await memory());
    }
    clearInterval(sampler);
    console.log(`peak Ceph calls in flight     ${peakInflight} (bound ${MAX_INFLIGHT}; sampled every 50 ms); peak RSS ${(peakRss / MiB).toFixed(0)} MiB`);
  } finally {
    await e2e.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

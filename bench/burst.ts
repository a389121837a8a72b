// A burst of claims through the real controller process (RELIABILITY 21): every claim Bound, Ceph calls in flight
// within the configured bound, memory flat; then every claim deleted. Prints figures; asserts nothing.
//
//   npm run bench:burst            (CLAIMS=500 by default; starts the test Ceph and control plane if needed)
import { setupE2e } from '../test/support/e2e.js';

const CLAIMS = Number(process.env['CLAIMS'] ?? 500);
const MAX_INFLIGHT = 16;

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : NaN;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

async function main(): Promise<void> {
  const e2e = await setupE2e('burst');
  try {
    const controller = await e2e.startController({ extraArgs: [`--ceph-max-inflight=${MAX_INFLIGHT}`, '--kube-api-qps=200', '--kube-api-burst=400'] });
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const rss = () => metric(controller.httpPort, 'rbd_provisioner_process_resident_memory_bytes');
    const rssBefore = await rss();
    const heapBefore = await metric(controller.httpPort, 'rbd_provisioner_nodejs_heap_size_used_bytes');
    let peakInflight = 0;
    let peakRss = rssBefore;
    const sampler = setInterval(() => {
      void metric(controller.httpPort, 'rbd_provisioner_ceph_calls_in_flight').then((v) => { peakInflight = Math.max(peakInflight, v); }, () => {});
      void rss().then((v) => { peakRss = Math.max(peakRss, v); }, () => {});
    }, 50);

    console.log(`# burst of ${CLAIMS} claims, --ceph-max-inflight=${MAX_INFLIGHT}`);
    const started = performance.now();
    const created = new Map<string, number>();
    const names: string[] = [];
    for (let i = 0; i < CLAIMS; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, CLAIMS - i) }, () => e2e.createClaim(storageClass, { size: '1Gi' })));
      for (const claim of batch) {
        names.push(claim.metadata!.name!);
        created.set(claim.metadata!.name!, performance.now());
      }
    }
    const boundAt = new Map<string, number>();
    let allPvsAt: number | undefined;
    while (boundAt.size < CLAIMS) {
      const list = await e2e.core.listNamespacedPersistentVolumeClaim({ namespace: e2e.namespace });
      for (const claim of list.items) {
        if (claim.status?.phase === 'Bound' && !boundAt.has(claim.metadata!.name!)) boundAt.set(claim.metadata!.name!, performance.now());
      }
      if (allPvsAt === undefined) {
        const pvs = (await e2e.core.listPersistentVolume()).items.filter((pv) => pv.spec?.claimRef?.namespace === e2e.namespace);
        if (pvs.length >= CLAIMS) allPvsAt = performance.now();
      }
      if (performance.now() - started > 15 * 60_000) throw new Error(`only ${boundAt.size}/${CLAIMS} Bound after 15 minutes`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const allBoundS = (performance.now() - started) / 1000;
    const latencies = names.map((n) => boundAt.get(n)! - created.get(n)!);
    const rssBound = await rss();
    const allPvsS = ((allPvsAt ?? performance.now()) - started) / 1000;
    console.log(`all ${CLAIMS} images + PVs made  ${allPvsS.toFixed(1)} s (${(CLAIMS / allPvsS).toFixed(1)} claims/s; the provisioner's part)`);
    console.log(`all ${CLAIMS} Bound after        ${allBoundS.toFixed(1)} s (${(CLAIMS / allBoundS).toFixed(1)} claims/s; binding is kube-controller-manager's)`);
    console.log(`create -> Bound latency       p50 ${(percentile(latencies, 50) / 1000).toFixed(2)} s  p99 ${(percentile(latencies, 99) / 1000).toFixed(2)} s`);
    console.log(`images in the pool            ${(await e2e.images()).length}`);

    const deleting = performance.now();
    await e2e.core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace: e2e.namespace });
    for (;;) {
      const left = (await e2e.images()).length;
      const pvs = (await e2e.core.listPersistentVolume()).items.filter((pv) => pv.spec?.claimRef?.namespace === e2e.namespace).length;
      if (left === 0 && pvs === 0) break;
      if (performance.now() - deleting > 15 * 60_000) throw new Error(`${left} images and ${pvs} PVs left after 15 minutes`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const allGoneS = (performance.now() - deleting) / 1000;
    clearInterval(sampler);
    console.log(`all images and PVs gone after ${allGoneS.toFixed(1)} s (${(CLAIMS / allGoneS).toFixed(1)} claims/s)`);
    console.log(`peak Ceph calls in flight     ${peakInflight} (bound ${MAX_INFLIGHT}; sampled every 50 ms)`);
    console.log(`controller RSS                ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ${(rssBound / 2 ** 20).toFixed(0)} MiB all Bound, ${(peakRss / 2 ** 20).toFixed(0)} MiB peak, ${((await rss()) / 2 ** 20).toFixed(0)} MiB after delete`);
    const heap = await metric(controller.httpPort, 'rbd_provisioner_nodejs_heap_size_used_bytes');
    console.log(`controller JS heap used       ${(heapBefore / 2 ** 20).toFixed(0)} MiB before, ${(heap / 2 ** 20).toFixed(0)} MiB after delete`);
  } finally {
    await e2e.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

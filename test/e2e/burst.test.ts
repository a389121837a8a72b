// RELIABILITY 21: a burst of claims created at once. Ceph calls in flight never exceed --ceph-max-inflight, every
// claim is Bound with exactly one image, and deleting them all leaves nothing. The controller's memory is printed
// (figures belong to benchmarks: bench/burst.ts), not asserted.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { setupE2e, type E2e } from '../support/e2e.js';
import { metricSum, scrape } from '../support/faults.js';
import { waitFor } from '../support/kube.js';

const CLAIMS = 100;
const MAX_INFLIGHT = 4;

let e2e: E2e;

before(async () => {
  e2e = await setupE2e('burst');
});

after(async () => {
  await e2e?.cleanup();
});

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

test(`a burst of ${CLAIMS} claims with --ceph-max-inflight=${MAX_INFLIGHT}: the bound holds, all Bound, all deleted, nothing left (RELIABILITY 21)`, async (t) => {
  const storageClass = await e2e.createClass(e2e.baseParameters());
  const controller = await e2e.startController({ extraArgs: [`--ceph-max-inflight=${MAX_INFLIGHT}`, '--workers=32'] });
  const rssBefore = rssMiB(controller.child.pid!);
  const names = (await Promise.all(Array.from({ length: CLAIMS }, () => e2e.createClaim(storageClass, { size: '64Mi' })))).map((c) => c.metadata!.name!);
  await waitFor(`${CLAIMS} claims Bound`, async (observe) => {
    const claims = (await e2e.core.listNamespacedPersistentVolumeClaim({ namespace: e2e.namespace })).items;
    const bound = claims.filter((c) => c.status?.phase === 'Bound').length;
    observe({ bound });
    return bound === CLAIMS ? true : undefined;
  }, { timeoutMs: 300_000, intervalMs: 500 });
  const rssBound = rssMiB(controller.child.pid!);
  await e2e.audit();
  const images = (await e2e.images()).filter((image) => image.startsWith('pvc-'));
  assert.equal(images.length, CLAIMS, 'one image per claim');

  for (const name of names) await e2e.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: e2e.namespace });
  await waitFor('every PV and image gone', async (observe) => {
    const left = (await e2e.images()).filter((image) => images.includes(image));
    const trash = (await e2e.pool.listTrash()).filter((entry) => images.includes(entry.name));
    observe({ images: left.length, trash: trash.length });
    return left.length === 0 && trash.length === 0 ? true : undefined;
  }, { timeoutMs: 300_000, intervalMs: 500 });
  await e2e.audit();

  const metrics = await scrape(controller);
  const peak = metricSum(metrics, 'rbd_provisioner_ceph_calls_in_flight_peak');
  assert.ok(peak >= 1 && peak <= MAX_INFLIGHT, `peak Ceph calls in flight: ${peak}, bound ${MAX_INFLIGHT}`);
  t.diagnostic(`peak Ceph calls in flight ${peak} (bound ${MAX_INFLIGHT}); controller RSS ${rssBefore.toFixed(0)} MiB at start, ` +
    `${rssBound.toFixed(0)} MiB with ${CLAIMS} Bound, ${rssMiB(controller.child.pid!).toFixed(0)} MiB after deleting them`);
});

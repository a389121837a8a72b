// RELIABILITY 10 and 25: a cluster that never answers (its monitor address accepts connections and then says
// nothing, as a host that hangs) holds up nothing elsewhere. Its claims wait with a Warning naming `monitors`; the
// claims of a working class are Bound meanwhile, /healthz answers, and orphan collection still scans the working pool.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setupE2e, type E2e } from '../support/e2e.js';
import { httpGet, metricSum, scrape } from '../support/faults.js';
import { waitFor } from '../support/kube.js';

let e2e: E2e;
let silent: Server;
const held = new Set<Socket>();

before(async () => {
  e2e = await setupE2e('iso');
  // Accepts and never answers: librados waits on it until its own timeouts.
  silent = createServer((socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  for (const socket of held) socket.destroy();
  silent?.close();
  await e2e?.cleanup();
});

test('a cluster that never answers holds up no other: claims elsewhere are Bound, its own wait with a Warning (RELIABILITY 10, 25)', async (t) => {
  const { port } = silent.address() as { port: number };
  const controller = await e2e.startController({ extraArgs: ['--ceph-mount-timeout=5s', '--resync-period=3s'] });
  const hung = await e2e.createClass({ ...e2e.baseParameters(), monitors: `127.0.0.1:${port}` });
  const working = await e2e.createClass(e2e.baseParameters());
  const stuck = await Promise.all(Array.from({ length: 20 }, () => e2e.createClaim(hung)));
  const started = Date.now();
  const fine = await Promise.all(Array.from({ length: 5 }, () => e2e.createClaim(working)));
  for (const claim of fine) await e2e.waitBound(claim.metadata!.name!, 120_000);
  const boundMs = Date.now() - started;

  assert.equal((await httpGet(controller, '/healthz')).status, 200, '/healthz answers');
  const warning = await e2e.waitEvent(stuck[0]!.metadata!.name!, 'ProvisioningFailed', 120_000);
  assert.match(warning.message ?? '', /monitors/, 'the Warning names the monitors');
  for (const claim of stuck) assert.equal((await e2e.readClaim(claim.metadata!.name!))?.status?.phase, 'Pending');
  await waitFor('both locations scanned by orphan collection, the silent one failing', async (observe) => {
    const text = await scrape(controller);
    observe(text.split('\n').filter((line) => line.startsWith('rbd_provisioner_orphan_scans_total')));
    const failed = metricSum(text, 'rbd_provisioner_orphan_scans_total', { result: 'failed' });
    const ok = metricSum(text, 'rbd_provisioner_orphan_scans_total', { result: 'ok' });
    return failed > 0 && ok > 0 ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500 });
  t.diagnostic(`5 claims of the working class Bound ${(boundMs / 1000).toFixed(1)} s after 20 claims of the silent cluster's class were made`);

  for (const claim of stuck) await e2e.core.deleteNamespacedPersistentVolumeClaim({ name: claim.metadata!.name!, namespace: e2e.namespace });
  await e2e.audit();
});

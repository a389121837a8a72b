// Image create/remove through the addon versus one `rbd` CLI process per image (what the retired
// external-storage rbd-provisioner did), the three ways to delete a 1 TiB image, and what each Ceph call of the
// claim paths costs in CPU (the whole process: librados and librbd threads included). Prints figures; asserts nothing.
//
//   npm run bench            (starts the test Ceph if needed)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, setMaxInflight, type Pool } from '../src/ceph/index.js';
import { createTestPool, ensureCeph, uniqueName } from '../test/support/ceph.js';

const run = promisify(execFile);
const GiB = 2 ** 30;
const TiB = 2 ** 40;

interface Figures { label: string; ops: number; seconds: number; latenciesMs: number[] }

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function report(f: Figures): { opsPerSecond: number; p50: number; p99: number } {
  const sorted = [...f.latenciesMs].sort((a, b) => a - b);
  const r = { opsPerSecond: f.ops / f.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  console.log(`${f.label.padEnd(38)} ${String(f.ops).padStart(5)} ops  ${r.opsPerSecond.toFixed(1).padStart(8)} ops/s  p50 ${r.p50.toFixed(2).padStart(8)} ms  p99 ${r.p99.toFixed(2).padStart(8)} ms`);
  return r;
}

/** Runs op(i) for i < count with at most `concurrency` in flight; per-op latencies. */
async function measure(label: string, count: number, concurrency: number, op: (i: number) => Promise<void>): Promise<Figures> {
  const latenciesMs: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await op(i);
      latenciesMs.push(performance.now() - t0);
    }
  }));
  return { label, ops: count, seconds: (performance.now() - started) / 1000, latenciesMs };
}

async function timeOnce(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** CPU milliseconds per call of fn over count runs, 8 in flight: user + system of this whole process. */
async function cpuPer(label: string, count: number, op: (i: number) => Promise<void>): Promise<void> {
  const before = process.cpuUsage();
  const figures = await measure(label, count, 8, op);
  const used = process.cpuUsage(before);
  console.log(`${label.padEnd(52)} ${((used.user + used.system) / 1000 / count).toFixed(2).padStart(6)} ms CPU per call  (p50 ${percentile([...figures.latenciesMs].sort((a, b) => a - b), 50).toFixed(2)} ms)`);
}

/** The Ceph calls a claim's create and delete make, each on its own: where the CPU per claim goes on our side. */
async function cpuPerCall(cluster: Cluster, pool: Pool, poolName: string): Promise<void> {
  console.log('\n# CPU per Ceph call of the claim paths (200 images, 8 in flight)');
  const count = 200;
  const names = Array.from({ length: count }, () => uniqueName('cpu'));
  const ids: string[] = [];
  await cpuPer('rbd_create4 (1 GiB)', count, (i) => pool.createImage(names[i]!, GiB));
  await cpuPer('rados_exec (cls rbd get_id)', count, async (i) => { ids[i] = await pool.imageId(names[i]!); });
  await cpuPer('rados_write_op_exec (cls rbd metadata_set)', count, (i) => pool.writeMetadataToHeader(ids[i]!, { 'bench.key': 'value' }));
  await cpuPer('rados_ioctx_create + rados_ioctx_destroy', count, async () => (await cluster.openPool(poolName)).close());
  await cpuPer('rbd_open_read_only + watchers + rbd_close', count, (i) => pool.withImage(names[i]!, async (image) => { await image.watchers(); }, { readOnly: true }));
  await cpuPer('rbd_trash_move', count, (i) => pool.moveToTrash(names[i]!));
  for (const id of ids) await pool.removeFromTrash(id);
}

async function main(): Promise<void> {
  const ceph = await ensureCeph();
  const { pool: poolName, remove } = await createTestPool('bench');
  setMaxInflight(32);
  const cluster = await Cluster.connect({ monitors: ceph.monHost, user: 'admin', key: ceph.adminKey });
  const pool: Pool = await cluster.openPool(poolName);
  const cli = (args: string[]) => run('rbd', ['-c', ceph.confPath, ...args]);
  const perCreate: Record<string, number> = {};
  const perRemove: Record<string, number> = {};
  try {
    console.log(`# rbd-provisioner benchmark: create/remove of 1 GiB images, pool ${poolName}`);
    for (const concurrency of [1, 8, 32]) {
      const count = concurrency === 1 ? 200 : 300;
      const names = Array.from({ length: count }, () => uniqueName('b'));
      const c = report(await measure(`addon create  (1 conn, concurrency ${concurrency})`, count, concurrency, (i) => pool.createImage(names[i]!, GiB)));
      const r = report(await measure(`addon remove  (1 conn, concurrency ${concurrency})`, count, concurrency, (i) => pool.removeImage(names[i]!)));
      perCreate[`addon c=${concurrency}`] = c.opsPerSecond;
      perRemove[`addon c=${concurrency}`] = r.opsPerSecond;
    }
    const count = 50;
    const names = Array.from({ length: count }, () => uniqueName('cli'));
    const c = report(await measure('rbd CLI create (process per image)', count, 1, async (i) => { await cli(['create', '--size', '1G', `${poolName}/${names[i]}`]); }));
    const r = report(await measure('rbd CLI rm     (process per image)', count, 1, async (i) => { await cli(['rm', '--no-progress', `${poolName}/${names[i]}`]); }));
    perCreate['cli'] = c.opsPerSecond;
    perRemove['cli'] = r.opsPerSecond;
    console.log('\n# throughput relative to the CLI path     create   remove (1 GiB, no object-map: OSD-bound)');
    for (const label of Object.keys(perCreate)) {
      if (label === 'cli') continue;
      const ratio = (table: Record<string, number>) => `${(table[label]! / table['cli']!).toFixed(1)}x`.padStart(8);
      console.log(`${label.padEnd(40)} ${ratio(perCreate)} ${ratio(perRemove)}`);
    }

    await cpuPerCall(cluster, pool, poolName);

    console.log('\n# deleting an empty 1 TiB image');
    const trashName = uniqueName('tib-trash');
    await pool.createImage(trashName, TiB);
    const id = await pool.withImage(trashName, (image) => image.id());
    const moveMs = await timeOnce(() => pool.moveToTrash(trashName));
    console.log(`trash move (what a delete waits for)          ${moveMs.toFixed(1)} ms`);
    const purgeMs = await timeOnce(() => pool.removeFromTrash(id));
    console.log(`  then purge from trash, no object-map (background) ${purgeMs.toFixed(1)} ms`);
    const omName = uniqueName('tib-om');
    await pool.createImage(omName, TiB, { features: ['layering', 'exclusive-lock', 'object-map', 'fast-diff'] });
    console.log(`rbd_remove with object-map                    ${(await timeOnce(() => pool.removeImage(omName))).toFixed(1)} ms`);
    const plainName = uniqueName('tib-plain');
    await pool.createImage(plainName, TiB);
    console.log(`rbd_remove without object-map                 ${(await timeOnce(() => pool.removeImage(plainName))).toFixed(1)} ms`);
  } finally {
    await pool.close();
    await cluster.close();
    await remove();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

// Bursts of claims through the real controller process (RELIABILITY 21, issue 13): the efficiency table of issue 13
// for ours. Prints figures; asserts nothing; not part of `npm test`.
//
//   npm run bench:burst
//     BURSTS=100,500   burst sizes; each burst is created at once by one creator, then deleted at once
//     ROUNDS=3         repetitions of each burst size (medians and ranges are printed)
//     SINGLE=20        single claims created one after the other first (create-to-Bound p50)
//     EXTRA_ARGS=...   extra controller flags, space-separated (e.g. "--kube-api-qps=200 --kube-api-burst=400")
//     CPU_PROF=dir     run the controller under `node --cpu-prof`; the profile is written there when it stops
//     CONTROLLER_ENV=  extra environment of the controller, space-separated NAME=value (e.g. "MALLOC_ARENA_MAX=2")
//     HEAP_SNAPSHOT=dir  write a heap snapshot of the controller there once each burst is all Bound (what holds memory
//                      per claim; it stops the controller for seconds, so the figures of that run are not comparable)
//     CONTROLLER_NICE=n  run the controller at this nice value (negative needs root): does the event-loop lag follow
//                      the wait for a core, or our own long tasks?
//   CLAIMS=n is read as BURSTS=n (the older spelling).
//
// Measured from outside the controller: CPU seconds from /proc/<pid>/stat (robust to a loaded machine, unlike wall
// times), peak RSS from VmHWM, API requests from the API server's apiserver_request_total (every client: ours, the
// creator's POSTs and kube-controller-manager's binding), Ceph calls from our rbd_provisioner_ceph_call_duration_seconds
// counts, event-loop delay p99 from prom-client's monitorEventLoopDelay (nodejs_eventloop_lag_p99_seconds, reset on
// every scrape; the worst one-second window is kept), and how long the controller's threads waited for a core from
// /proc/<pid>/task/*/schedstat (a lag that is only that wait is the machine's, not a long task of ours). Bound is seen
// through a watch, not by polling.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { request } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { setupE2e, type E2e } from '../test/support/e2e.js';

const BURSTS = (process.env['BURSTS'] ?? process.env['CLAIMS'] ?? '100,500').split(',').map(Number);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const SINGLE = Number(process.env['SINGLE'] ?? 20);
const EXTRA_ARGS = (process.env['EXTRA_ARGS'] ?? '').split(' ').filter((a) => a !== '');
const CPU_PROF = process.env['CPU_PROF'];
const HEAP_SNAPSHOT = process.env['HEAP_SNAPSHOT'];
/** Extra environment of the controller process, space-separated NAME=value (e.g. "MALLOC_ARENA_MAX=2"). */
const CONTROLLER_ENV = Object.fromEntries((process.env['CONTROLLER_ENV'] ?? '').split(' ').filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
const CONTROLLER_NICE = process.env['CONTROLLER_NICE'] === undefined ? undefined : Number(process.env['CONTROLLER_NICE']);
const MiB = 2 ** 20;
const TICKS = 100; // USER_HZ on Linux

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
}

/** CPU seconds (user + system) of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Nanoseconds the process's threads spent runnable but waiting for a core: its main thread, and all of them. */
function runQueueWait(pid: number): { mainNs: number; allNs: number } {
  const waitOf = (tid: string): number => {
    try {
      return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      return 0; // the thread ended between the listing and the read
    }
  };
  const all = readdirSync(`/proc/${pid}/task`).reduce((sum, tid) => sum + waitOf(tid), 0);
  return { mainNs: waitOf(String(pid)), allNs: all };
}

/** Asks the controller (started with --heapsnapshot-signal) for a heap snapshot and waits until it is written. */
async function heapSnapshot(pid: number, dir: string): Promise<void> {
  const snapshots = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
  const before = new Set(snapshots());
  process.kill(pid, 'SIGUSR2');
  for (let lastSize = -1; ; await sleep(1000)) {
    const written = snapshots().find((f) => !before.has(f));
    if (written === undefined) continue;
    const size = statSync(`${dir}/${written}`).size;
    if (size > 0 && size === lastSize) return console.log(`heap snapshot: ${dir}/${written}`);
    lastSize = size;
  }
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}

function peakRssBytes(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}

/** Prometheus text lines of one metric family as label-string -> value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(name.length, space), Number(line.slice(space + 1)));
  }
  return out;
}

const label = (labels: string, key: string): string => new RegExp(`[{,]${key}="([^"]*)"`).exec(labels)?.[1] ?? '';

async function controllerMetrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

async function apiServerMetrics(kc: k8s.KubeConfig): Promise<string> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const options: import('node:https').RequestOptions = { hostname: server.hostname, port: server.port, path: '/metrics', method: 'GET' };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s)).on('end', () => resolve(body)).on('error', reject);
    });
    req.on('error', reject).end();
  });
}

/** verb resource[/subresource] -> count. */
function apiRequests(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [labels, value] of samples(text, 'apiserver_request_total')) {
    const sub = label(labels, 'subresource');
    const key = `${label(labels, 'verb')} ${label(labels, 'resource')}${sub === '' ? '' : `/${sub}`}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** Ceph op -> calls. */
function cephCalls(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [labels, value] of samples(text, 'rbd_provisioner_ceph_call_duration_seconds_count')) {
    const op = label(labels, 'op');
    out.set(op, (out.get(op) ?? 0) + value);
  }
  return out;
}

function delta(after: Map<string, number>, before: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) if (value - (before.get(key) ?? 0) > 0) out.set(key, value - (before.get(key) ?? 0));
  return out;
}

/**
 * Claims of the namespace seen Bound (through watches), with when; and, to tell whose time a claim's wait is, when
 * each was first seen asking for a provisioner (kube-controller-manager's annotation, our cue) and when its PV appeared.
 */
class BoundWatcher {
  readonly boundAt = new Map<string, number>();
  readonly askedAt = new Map<string, number>();
  readonly volumeAt = new Map<string, number>();
  readonly seen = new Set<string>();
  private waiters: (() => void)[] = [];
  private readonly controllers: AbortController[] = [];
  constructor(private readonly e2e: E2e) {}
  private stopped = false;
  async start(): Promise<void> {
    await this.follow<k8s.V1PersistentVolumeClaim>(
      `/api/v1/namespaces/${this.e2e.namespace}/persistentvolumeclaims`,
      async () => this.e2e.core.listNamespacedPersistentVolumeClaim({ namespace: this.e2e.namespace }),
      (type, claim) => this.observe(type, claim),
    );
    await this.follow<k8s.V1PersistentVolume>(
      '/api/v1/persistentvolumes',
      async () => this.e2e.core.listPersistentVolume(),
      (type, volume) => {
        const ref = volume.spec?.claimRef;
        if (type === 'ADDED' && ref?.namespace === this.e2e.namespace && !this.volumeAt.has(ref.name ?? '')) this.volumeAt.set(ref.name ?? '', performance.now());
      },
    );
  }
  /** Lists, then watches from the list; a watch that ends (server timeout, error) is started again the same way. */
  private async follow<T>(path: string, list: () => Promise<{ items: T[]; metadata?: k8s.V1ListMeta }>, observe: (type: string, object: T) => void): Promise<void> {
    const listed = await list();
    for (const object of listed.items) observe('ADDED', object);
    const watch = new k8s.Watch(this.e2e.kc);
    this.controllers.push(await watch.watch(
      path,
      { resourceVersion: listed.metadata?.resourceVersion, allowWatchBookmarks: false, timeoutSeconds: 120 },
      observe,
      () => {
        if (this.stopped) return;
        void this.follow(path, list, observe).catch((error: unknown) => console.error(`bench: could not watch ${path} again:`, error));
      },
    ));
  }
  private observe(type: string, claim: k8s.V1PersistentVolumeClaim): void {
    const name = claim.metadata?.name ?? '';
    if (type === 'DELETED') this.seen.delete(name);
    else this.seen.add(name);
    if (type !== 'DELETED' && claim.status?.phase === 'Bound' && !this.boundAt.has(name)) this.boundAt.set(name, performance.now());
    const annotations = claim.metadata?.annotations ?? {};
    const asking = 'volume.kubernetes.io/storage-provisioner' in annotations || 'volume.beta.kubernetes.io/storage-provisioner' in annotations;
    if (type !== 'DELETED' && asking && !this.askedAt.has(name)) this.askedAt.set(name, performance.now());
    for (const wake of this.waiters.splice(0)) wake();
  }
  async until(what: string, done: () => boolean, timeoutMs = 15 * 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      if (performance.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs / 1000} s`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 500);
      });
    }
  }
  stop(): void {
    this.stopped = true;
    for (const controller of this.controllers) controller.abort();
  }
}

/**
 * Deletes every claim of the namespace at once. The API server gives a collection delete its request timeout (60 s)
 * and stops where it got to (seen at 5,000 claims): asked again until no claim is left undeleted.
 */
async function deleteAllClaims(e2e: E2e): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await e2e.core.deleteCollectionNamespacedPersistentVolumeClaim({ namespace: e2e.namespace });
    } catch (error) {
      if (attempt >= 10) throw error;
    }
    const claims = await e2e.core.listNamespacedPersistentVolumeClaim({ namespace: e2e.namespace });
    if (claims.items.every((claim) => claim.metadata?.deletionTimestamp != null)) return;
  }
}

interface BurstFigures {
  claims: number;
  allBoundS: number;
  /** When the last PV of the burst was saved (whole seconds: creationTimestamp), from the burst's start. */
  lastSavedS: number;
  /** The controller's RSS once every claim of the burst was Bound (its PVs and claims in the informer caches). */
  boundRssBytes: number;
  boundHeapBytes: number;
  /** The same just before the burst: the difference over the claims is what a Bound claim costs to hold. */
  rssBeforeBytes: number;
  heapBeforeBytes: number;
  p50S: number;
  p99S: number;
  deleteS: number;
  cpuCreateMs: number;
  cpuDeleteMs: number;
  /** Seconds the create and the delete CPU figures span (idle work accrues over them too). */
  createWindowS: number;
  deleteWindowS: number;
  lagP99Ms: number;
  /** Seconds the controller's main thread (the event loop), and all its threads together, waited for a core. */
  mainWaitS: number;
  allWaitS: number;
  api: Map<string, number>;
  ceph: Map<string, number>;
  apiDelete: Map<string, number>;
  cephDelete: Map<string, number>;
}

async function burst(e2e: E2e, storageClass: string, pid: number, port: number, watcher: BoundWatcher, claims: number): Promise<BurstFigures> {
  const mine = async () => (await e2e.core.listPersistentVolume()).items.filter((pv) => pv.spec?.claimRef?.namespace === e2e.namespace).length;
  let worstLag = 0;
  const lagSampler = setInterval(() => {
    void controllerMetrics(port).then((text) => {
      worstLag = Math.max(worstLag, samples(text, 'nodejs_eventloop_lag_p99_seconds').get('') ?? 0);
    }, () => {});
  }, 1000);
  const apiBefore = apiRequests(await apiServerMetrics(e2e.kc));
  const metricsBefore = await controllerMetrics(port);
  const cephBefore = cephCalls(metricsBefore);
  const heapBeforeBytes = samples(metricsBefore, 'nodejs_heap_size_used_bytes').get('') ?? NaN;
  const rssBeforeBytes = rssBytes(pid);
  worstLag = 0;
  const cpuBefore = cpuSeconds(pid);
  const waitBefore = runQueueWait(pid);
  watcher.boundAt.clear();
  const started = performance.now();
  const startedWall = Date.now();
  const created = new Map<string, number>();
  // One creator, at most 50 requests in flight: every row of the table creates its claims this same way.
  for (let i = 0; i < claims; i += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, claims - i) }, () => e2e.createClaim(storageClass, { size: '1Gi' })));
    for (const claim of batch) created.set(claim.metadata!.name!, performance.now());
  }
  await watcher.until(`all ${claims} Bound`, () => [...created.keys()].every((name) => watcher.boundAt.has(name)));
  const allBound = performance.now();
  // Ours ends when a claim's PV is saved; binding it is kube-controller-manager's (one claim at a time). The PVs'
  // creation times (whole seconds) show where the time to all Bound went.
  const savedAt = (await e2e.core.listPersistentVolume()).items
    .filter((pv) => pv.spec?.claimRef?.namespace === e2e.namespace && created.has(pv.spec.claimRef.name ?? ''))
    .map((pv) => new Date(pv.metadata?.creationTimestamp ?? 0).getTime());
  const lastSavedS = (Math.max(...savedAt) - startedWall) / 1000;
  const boundRssBytes = rssBytes(pid);
  const boundHeapBytes = samples(await controllerMetrics(port), 'nodejs_heap_size_used_bytes').get('') ?? NaN;
  const lagCreate = worstLag;
  if (HEAP_SNAPSHOT !== undefined) await heapSnapshot(pid, HEAP_SNAPSHOT);
  await sleep(1000); // the last events and status writes
  const cpuCreated = cpuSeconds(pid);
  const waitCreated = runQueueWait(pid);
  const apiCreated = apiRequests(await apiServerMetrics(e2e.kc));
  const cephCreated = cephCalls(await controllerMetrics(port));
  const latencies = [...created].map(([name, at]) => watcher.boundAt.get(name)! - at);

  const deleting = performance.now();
  await deleteAllClaims(e2e);
  const deadline = performance.now() + 15 * 60_000;
  while ((await mine()) > 0 || (await e2e.images()).length > 0) {
    if (performance.now() > deadline) throw new Error('delete: not done after 15 minutes');
    await sleep(250);
  }
  const deleted = performance.now();
  await sleep(1000);
  const cpuDeleted = cpuSeconds(pid);
  clearInterval(lagSampler);
  const apiAfter = apiRequests(await apiServerMetrics(e2e.kc));
  const cephAfter = cephCalls(await controllerMetrics(port));
  return {
    claims,
    allBoundS: (allBound - started) / 1000,
    lastSavedS,
    boundRssBytes,
    boundHeapBytes,
    rssBeforeBytes,
    heapBeforeBytes,
    p50S: percentile(latencies, 50) / 1000,
    p99S: percentile(latencies, 99) / 1000,
    deleteS: (deleted - deleting) / 1000,
    cpuCreateMs: ((cpuCreated - cpuBefore) * 1000) / claims,
    cpuDeleteMs: ((cpuDeleted - cpuCreated) * 1000) / claims,
    createWindowS: (deleting - started) / 1000,
    deleteWindowS: (performance.now() - deleting) / 1000,
    lagP99Ms: Math.max(lagCreate, worstLag) * 1000,
    mainWaitS: (waitCreated.mainNs - waitBefore.mainNs) / 1e9,
    allWaitS: (waitCreated.allNs - waitBefore.allNs) / 1e9,
    api: delta(apiCreated, apiBefore),
    ceph: delta(cephCreated, cephBefore),
    apiDelete: delta(apiAfter, apiCreated),
    cephDelete: delta(cephAfter, cephCreated),
  };
}

function spread(values: number[], digits: number): string {
  const median = percentile(values, 50);
  const text = median.toFixed(digits);
  if (values.length < 2) return text;
  return `${text} (${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)})`;
}

function perClaim(rounds: BurstFigures[], pick: (f: BurstFigures) => Map<string, number>): string {
  const keys = new Set(rounds.flatMap((f) => [...pick(f).keys()]));
  const rows = [...keys]
    .map((key) => ({ key, value: percentile(rounds.map((f) => (pick(f).get(key) ?? 0) / f.claims), 50) }))
    .filter((row) => row.value >= 0.01)
    .sort((a, b) => b.value - a.value);
  const total = rows.reduce((sum, row) => sum + row.value, 0);
  return `${total.toFixed(1)}: ${rows.map((row) => `${row.key} ${row.value.toFixed(2)}`).join(', ')}`;
}

async function main(): Promise<void> {
  const e2e = await setupE2e('burst');
  const watcher = new BoundWatcher(e2e);
  try {
    const nodeOptions = [
      CONTROLLER_ENV['NODE_OPTIONS'] ?? '',
      CPU_PROF === undefined ? '' : `--cpu-prof --cpu-prof-dir=${CPU_PROF}`,
      HEAP_SNAPSHOT === undefined ? '' : `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${HEAP_SNAPSHOT}`,
    ].filter((o) => o !== '').join(' ');
    const controller = await e2e.startController({
      extraArgs: EXTRA_ARGS,
      env: { ...CONTROLLER_ENV, ...(nodeOptions === '' ? {} : { NODE_OPTIONS: nodeOptions }) },
    });
    const pid = controller.child.pid!;
    // Every thread: on Linux a nice value is a thread's, and librados and libuv threads already run.
    if (CONTROLLER_NICE !== undefined) for (const tid of readdirSync(`/proc/${pid}/task`)) setPriority(Number(tid), CONTROLLER_NICE);
    const port = controller.httpPort;
    const storageClass = await e2e.createClass(e2e.baseParameters());
    await watcher.start();
    console.log(`# controller flags: ${EXTRA_ARGS.join(' ') || '(defaults)'}${Object.keys(CONTROLLER_ENV).length === 0 ? '' : `; environment ${process.env['CONTROLLER_ENV']}`}${CONTROLLER_NICE === undefined ? '' : `; nice ${CONTROLLER_NICE}`}; ${ROUNDS} rounds of bursts of ${BURSTS.join(', ')}; ${SINGLE} single claims`);

    // Single claims, one after the other: create to Bound.
    const single: number[] = [];
    const phases = { asked: [] as number[], ours: [] as number[], binding: [] as number[] };
    const cpuSingle = cpuSeconds(pid);
    for (let i = 0; i < SINGLE; i++) {
      const at = performance.now();
      const claim = await e2e.createClaim(storageClass, { size: '1Gi' });
      const name = claim.metadata!.name!;
      await watcher.until('single claim Bound', () => watcher.boundAt.has(name), 120_000);
      const [asked, saved, bound] = [watcher.askedAt.get(name) ?? NaN, watcher.volumeAt.get(name) ?? NaN, watcher.boundAt.get(name)!];
      single.push(bound - at);
      phases.asked.push(asked - at);
      phases.ours.push(saved - asked);
      phases.binding.push(bound - saved);
    }
    const cpuSingleMs = ((cpuSeconds(pid) - cpuSingle) * 1000) / Math.max(1, SINGLE);
    if (SINGLE > 0) {
      await deleteAllClaims(e2e);
      while ((await e2e.images()).length > 0) await sleep(250);
      console.log(`single claim, create to Bound: p50 ${(percentile(single, 50) / 1000).toFixed(3)} s, p99 ${(percentile(single, 99) / 1000).toFixed(3)} s (CPU ${cpuSingleMs.toFixed(0)} ms per claim incl. idle work)`);
      console.log(
        `  of which (p50): created -> kube-controller-manager asks for a provisioner ${percentile(phases.asked, 50).toFixed(0)} ms, ` +
          `asked -> our PV seen ${percentile(phases.ours, 50).toFixed(0)} ms, PV -> Bound (kube-controller-manager) ${percentile(phases.binding, 50).toFixed(0)} ms`,
      );
    }

    // What the controller spends doing nothing for claims (lease renewals, resyncs, and this benchmark's scrape every
    // second, as during a burst): over a burst's window it is part of the CPU per claim, shown net of it as well.
    await sleep(2000);
    const idleFrom = cpuSeconds(pid);
    const idleStarted = performance.now();
    for (let i = 0; i < 10; i++) {
      await controllerMetrics(port);
      await sleep(1000);
    }
    const idleMsPerS = ((cpuSeconds(pid) - idleFrom) * 1000) / ((performance.now() - idleStarted) / 1000);
    console.log(`idle: ${idleMsPerS.toFixed(1)} ms of CPU per second`);
    const net = (f: BurstFigures, ms: number, windowS: number): number => ms - (idleMsPerS * windowS) / f.claims;

    const results = new Map<number, BurstFigures[]>();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const claims of BURSTS) {
        const figures = await burst(e2e, storageClass, pid, port, watcher, claims);
        results.set(claims, [...(results.get(claims) ?? []), figures]);
        const rss = Number(samples(await controllerMetrics(port), 'process_resident_memory_bytes').get('') ?? NaN);
        console.log(
          `round ${round} burst ${claims}: all PVs saved by ${figures.lastSavedS.toFixed(0)} s, all Bound ${figures.allBoundS.toFixed(1)} s, p50 ${figures.p50S.toFixed(2)} s, p99 ${figures.p99S.toFixed(2)} s, ` +
            `delete ${figures.deleteS.toFixed(1)} s, CPU ${figures.cpuCreateMs.toFixed(1)} / ${figures.cpuDeleteMs.toFixed(1)} ms per claim ` +
            `(net of idle ${net(figures, figures.cpuCreateMs, figures.createWindowS).toFixed(1)} / ${net(figures, figures.cpuDeleteMs, figures.deleteWindowS).toFixed(1)}), ` +
            `lag p99 ${figures.lagP99Ms.toFixed(0)} ms, waited for a core ${figures.mainWaitS.toFixed(1)} s (main thread) / ${figures.allWaitS.toFixed(1)} s (all threads) of ${figures.createWindowS.toFixed(0)} s, RSS ${(figures.boundRssBytes / MiB).toFixed(0)} MiB (JS heap ${(figures.boundHeapBytes / MiB).toFixed(0)}) all Bound, ` +
            `${((figures.boundRssBytes - figures.rssBeforeBytes) / figures.claims / 1024).toFixed(1)} KiB RSS and ${((figures.boundHeapBytes - figures.heapBeforeBytes) / figures.claims / 1024).toFixed(1)} KiB heap more per Bound claim, ` +
            `${(rss / MiB).toFixed(0)} MiB after the delete (peak ${(peakRssBytes(pid) / MiB).toFixed(0)})`,
        );
      }
    }

    console.log('\n| burst | all PVs saved by (s) | all Bound (s) | create->Bound p50 / p99 (s) | delete all (s) | CPU per claim create / delete (ms) | the same net of idle (ms) | event-loop lag p99 (ms) | event loop waited for a core (s) |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const [claims, rounds] of results) {
      console.log(
        `| ${claims} | ${spread(rounds.map((f) => f.lastSavedS), 0)} | ${spread(rounds.map((f) => f.allBoundS), 1)} | ${spread(rounds.map((f) => f.p50S), 2)} / ${spread(rounds.map((f) => f.p99S), 2)} | ` +
          `${spread(rounds.map((f) => f.deleteS), 1)} | ${spread(rounds.map((f) => f.cpuCreateMs), 1)} / ${spread(rounds.map((f) => f.cpuDeleteMs), 1)} | ` +
          `${spread(rounds.map((f) => net(f, f.cpuCreateMs, f.createWindowS)), 1)} / ${spread(rounds.map((f) => net(f, f.cpuDeleteMs, f.deleteWindowS)), 1)} | ` +
          `${spread(rounds.map((f) => f.lagP99Ms), 0)} | ${spread(rounds.map((f) => f.mainWaitS), 1)} |`,
      );
    }
    console.log(`peak RSS ${(peakRssBytes(pid) / MiB).toFixed(0)} MiB (VmHWM)`);
    for (const [claims, rounds] of results) {
      console.log(`\nburst ${claims}, per claim (medians):`);
      console.log(`  API requests, create (all clients)  ${perClaim(rounds, (f) => f.api)}`);
      console.log(`  API requests, delete (all clients)  ${perClaim(rounds, (f) => f.apiDelete)}`);
      console.log(`  Ceph calls, create                  ${perClaim(rounds, (f) => f.ceph)}`);
      console.log(`  Ceph calls, delete                  ${perClaim(rounds, (f) => f.cephDelete)}`);
    }
    await controller.stop();
  } finally {
    watcher.stop();
    await e2e.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

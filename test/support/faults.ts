// Faults from outside the controller, for the reliability tests: a frozen kube-apiserver (SIGSTOP/SIGCONT, like a
// stalled host), and readers of the controller's HTTP endpoints (/healthz, /readyz, /metrics).
import { readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { cephStateDir, ensureCeph, resumeLater } from './ceph.js';
import type { ControllerProcess } from './controller.js';
import type { ControlPlane } from './kube.js';

/**
 * A control-plane process's pid, found as scripts/kube/cluster.sh finds it: from the pid file in its state
 * directory's run/, accepted only if that process's command line is that binary naming our state directory (a
 * recycled pid is never signalled).
 */
async function controlPlanePid(controlPlane: ControlPlane, binary: 'kube-apiserver' | 'kube-controller-manager'): Promise<number> {
  const pidFile = path.join(controlPlane.stateDir, 'run', `${binary}.pid`);
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no ${binary} pid in ${pidFile}`);
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  if (!cmdline.includes(binary) || !cmdline.includes(controlPlane.stateDir)) {
    throw new Error(`pid ${pid} from ${pidFile} is not our ${binary}`);
  }
  return pid;
}

export function apiServerPid(controlPlane: ControlPlane): Promise<number> {
  return controlPlanePid(controlPlane, 'kube-apiserver');
}

/**
 * Freezes the test control plane's kube-apiserver (SIGSTOP) for `ms`, then resumes it (SIGCONT): connections stay
 * open and nothing answers, as with a hung host. It always resumes, even if the caller fails meanwhile. Resolves once
 * the API server answers /readyz again.
 */
export async function pauseApiServer(controlPlane: ControlPlane, ms: number): Promise<void> {
  const frozen = freeze(await apiServerPid(controlPlane));
  try {
    await sleep(ms);
  } finally {
    frozen.resume();
  }
}

/** A frozen process: resume() sends SIGCONT (safe to call twice). */
export interface Frozen {
  resume(): void;
}

/** No test freezes a process longer; past this it is resumed from outside (resumeLater) whatever the test does. */
const MAX_FREEZE_MS = 300_000;

function freeze(pid: number): Frozen {
  const safetyNet = resumeLater(pid, MAX_FREEZE_MS);
  process.kill(pid, 'SIGSTOP');
  let resumed = false;
  return {
    resume() {
      if (resumed) return;
      resumed = true;
      process.kill(pid, 'SIGCONT');
      safetyNet.cancel();
    },
  };
}

/** Freezes the kube-apiserver until resume(): for faults whose end the test decides. Resume it in a finally. */
export async function freezeApiServer(controlPlane: ControlPlane): Promise<Frozen> {
  return freeze(await apiServerPid(controlPlane));
}

/** Freezes kube-controller-manager until resume(): the PV controller (and every other) stops, as if far behind. */
export async function freezeControllerManager(controlPlane: ControlPlane): Promise<Frozen> {
  return freeze(await controlPlanePid(controlPlane, 'kube-controller-manager'));
}

/** Freezes one Ceph daemon of the test cluster until resume() (pauseDaemon in ceph.ts, with the end left open). */
export async function freezeCephDaemon(name: 'osd.0' | 'mon.a' | 'mgr.x'): Promise<Frozen> {
  await ensureCeph();
  const pid = Number((await readFile(path.join(cephStateDir(), 'pid', name), 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${name}`);
  return freeze(pid);
}

/** Whether this controller holds the lease now, from the rbd_provisioner_leader gauge (false when it does not answer). */
export async function leading(proc: ControllerProcess): Promise<boolean> {
  const res = await httpGet(proc, '/metrics', 5_000);
  return res.status === 200 && metricSum(res.body, 'rbd_provisioner_leader') === 1;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One GET on the controller's HTTP port; status 0 and the error text when nothing answered within `timeoutMs`. */
export async function httpGet(proc: ControllerProcess, urlPath: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${proc.httpPort}${urlPath}`, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The sum of one metric's samples in /metrics text whose labels include all of `labels`
 * (`rbd_provisioner_delete_total{class="a",result="success"} 3`); 0 when there is none.
 */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found.set(label[1]!, label[2]!);
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) sum += Number(match[3]);
  }
  return sum;
}

/** The controller's /metrics, read now. */
export async function scrape(proc: ControllerProcess): Promise<string> {
  const res = await httpGet(proc, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  return res.body;
}

/** A replica's own network path to the kube-apiserver, which a test can cut like a partition and restore. */
export interface ApiServerLink {
  /** A copy of the admin kubeconfig whose server is this link. */
  kubeconfigPath: string;
  /** Nothing passes any more, in either direction, on open or new connections: they hang, as behind a dropped route. */
  cut(): void;
  /** Traffic flows again (what was held back is delivered, as TCP does after a partition heals). */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay on 127.0.0.1 in front of the test control plane's kube-apiserver. TLS passes through untouched (the
 * server certificate names 127.0.0.1), so the replica using it is an ordinary client; only its path can be cut.
 */
export async function apiServerLink(controlPlane: ControlPlane, stateDir: string): Promise<ApiServerLink> {
  const kubeconfig = await readFile(controlPlane.kubeconfigPath, 'utf8');
  const upstream = /server: https:\/\/127\.0\.0\.1:(\d+)/.exec(kubeconfig);
  if (!upstream) throw new Error(`no https://127.0.0.1:<port> server in ${controlPlane.kubeconfigPath}`);
  const upstreamPort = Number(upstream[1]);
  let open = true;
  // Each direction of each connection: what arrived while cut is held back, in order, and sent on restore.
  const relays = new Set<{ flush(): void; destroy(): void }>();
  const relay = (from: Socket, to: Socket): void => {
    const held: Buffer[] = [];
    const entry = {
      flush() {
        for (const chunk of held.splice(0)) to.write(chunk);
      },
      destroy() {
        from.destroy();
      },
    };
    relays.add(entry);
    from.on('data', (chunk: Buffer) => {
      if (open && held.length === 0) to.write(chunk);
      else held.push(chunk);
    });
    from.on('close', () => {
      relays.delete(entry);
      // A close is traffic too: it waits for the link like the data before it.
      const closeOther = () => (open ? to.end() : setTimeout(closeOther, 100));
      closeOther();
    });
    from.on('error', () => from.destroy());
  };
  const server = createServer((client) => {
    const toServer = connect(upstreamPort, '127.0.0.1');
    relay(client, toServer);
    relay(toServer, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const kubeconfigPath = path.join(stateDir, `link-${port}.kubeconfig`);
  await writeFile(kubeconfigPath, kubeconfig.replace(upstream[0], `server: https://127.0.0.1:${port}`), { mode: 0o600 });
  return {
    kubeconfigPath,
    cut() {
      open = false;
    },
    restore() {
      open = true;
      for (const entry of relays) entry.flush();
    },
    async close() {
      open = true;
      for (const entry of relays) entry.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(kubeconfigPath, { force: true });
    },
  };
}

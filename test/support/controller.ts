// Runs the provisioner the way users run it: `node dist/src/main.js` with a kubeconfig, as its own process.
// Keeps everything it printed, so tests can check what it logged (and that no key ever appears).
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import type { Fault } from './faulty-main.js';
import { repoRoot } from './kube.js';
import { CONTROLLER_NODE_FLAGS } from '../../src/node-flags.js';

export interface ControllerProcess {
  readonly child: ChildProcess;
  readonly httpPort: number;
  readonly identity: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface ControllerOptions {
  kubeconfigPath: string;
  provisionerName: string;
  /** Where the Lease lives. */
  namespace: string;
  identity?: string;
  extraArgs?: string[];
  /** Instead of the flags above, exactly these (e.g. the chart's own), plus --http-address. */
  argv?: string[];
  env?: Record<string, string>;
  /** Runs the controller with this fault injected (test/support/faulty-main.ts) instead of the plain entry point. */
  fault?: Fault;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startController(options: ControllerOptions): Promise<ControllerProcess> {
  const httpPort = await freePort();
  const identity = options.identity ?? `test-${process.pid}-${httpPort}`;
  const main = options.fault === undefined ? path.join(repoRoot, 'dist', 'src', 'main.js') : path.join(repoRoot, 'dist', 'test', 'support', 'faulty-main.js');
  const args = options.argv ? [main, ...options.argv, `--kubeconfig=${options.kubeconfigPath}`, `--http-address=127.0.0.1:${httpPort}`] : [
    main,
    `--kubeconfig=${options.kubeconfigPath}`,
    `--provisioner-name=${options.provisionerName}`,
    `--leader-election-namespace=${options.namespace}`,
    `--identity=${identity}`,
    `--http-address=127.0.0.1:${httpPort}`,
    '--log-format=json',
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, [...CONTROLLER_NODE_FLAGS, ...args], {
    cwd: repoRoot,
    env: { ...process.env, KUBECONFIG: '', ...options.env, ...(options.fault === undefined ? {} : { RBD_PROVISIONER_TEST_FAULT: options.fault }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (s: string) => chunks.push(s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => chunks.push(s));
  let stopping = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      // A controller that dies on its own says why in the test run's output, not only to a test that asks.
      if (!stopping && signal === null && options.fault === undefined) {
        const tail = chunks.join('').split('\n').slice(-40).join('\n');
        process.stderr.write(`controller ${identity} exited by itself with code ${code}; its last output:\n${tail}\n`);
      }
      resolve({ code, signal });
    });
  });
  const proc: ControllerProcess = {
    child,
    httpPort,
    identity,
    output: () => chunks.join(''),
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  // Ready = informers synced (leader or standby).
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`controller exited with ${child.exitCode} before it was ready:\n${proc.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL');
      throw new Error(`controller not ready after 30 s:\n${proc.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return proc;
}

/** Whether this controller currently holds the lease, from its metrics. */
export async function isLeader(proc: ControllerProcess): Promise<boolean> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${proc.httpPort}/metrics`)).text();
    return /^rbd_provisioner_leader(?:\{[^}]*\})? 1$/m.test(text);
  } catch {
    return false;
  }
}

// The project's real single-node Ceph, as tests see it: started through scripts/ceph/cluster.sh (idempotent), its
// settings read from the env file the script writes, and CLI runners for test setup. The admin key is read from
// the keyring file into memory only: tests need it for key-in-memory connects, and it never goes to argv or env.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, type Pool } from '../../src/ceph/index.js';

export interface CephTestCluster {
  confPath: string;
  /** The admin keyring; the ceph.conf names it too, so `-c confPath` alone is enough for the CLI. */
  keyringPath: string;
  /** e.g. `v2:127.0.0.1:20345` */
  monHost: string;
  adminKey: string;
  ceph(args: readonly string[]): Promise<string>;
  rbd(args: readonly string[]): Promise<string>;
}

export interface TestPool {
  pool: string;
  /** Deletes the pool and its images; harmless when already gone. */
  remove(): Promise<void>;
}

/** Failure of a CLI run: `stderr` and `exitCode` for assertions; the message carries the command and stderr. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

// Compiled to dist/test/support/ceph.js: the repository root is three levels up.
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const clusterScript = path.join(repoRoot, 'scripts', 'ceph', 'cluster.sh');

const CLI_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_S = '10';
// A first start on a fresh machine installs packages before the cluster comes up.
const START_TIMEOUT_MS = 15 * 60_000;

/** Read at call time, so a test can point the helpers at a cluster of its own. */
export function cephStateDir(): string {
  return path.join(path.resolve(process.env.RBD_PROVISIONER_STATE ?? path.join(repoRoot, '.state')), 'ceph');
}

interface RunResult {
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? CLI_TIMEOUT_MS;
  const shown = `${command} ${args.join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env, ...(options.cwd !== undefined && { cwd: options.cwd }) },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ stdout, stderr });
          return;
        }
        const timedOut = (error as { killed?: boolean }).killed === true;
        const exitCode = typeof error.code === 'number' ? error.code : null;
        const why = timedOut ? `timed out after ${timeoutMs} ms` : `failed (exit ${exitCode ?? error.code})`;
        reject(new CommandError(`${shown} ${why}: ${stderr.trim()}`, shown, exitCode, stderr));
      },
    );
  });
}

/** Parses the `export NAME=value` lines that cluster.sh env prints (values may be single-quoted). */
export function parseEnvLines(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match) continue;
    const name = match[1] ?? '';
    const raw = match[2] ?? '';
    vars[name] = raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'") ? raw.slice(1, -1).replaceAll("'\\''", "'") : raw;
  }
  return vars;
}

/** The key of `entity` in a keyring file's text (`[client.admin]` then `key = ...`). */
export function keyFromKeyring(text: string, entity = 'client.admin'): string {
  let inSection = false;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    const section = /^\[(.+)\]$/.exec(trimmed);
    if (section) {
      inSection = section[1] === entity;
      continue;
    }
    const key = /^key\s*=\s*(\S+)$/.exec(trimmed);
    if (inSection && key?.[1]) return key[1];
  }
  // Never echo the file: it holds keys.
  throw new Error(`no key for ${entity} in the keyring`);
}

function requireVar(vars: Record<string, string>, name: string, file: string): string {
  const value = vars[name];
  if (!value) throw new Error(`${file} has no ${name}; run: ${clusterScript} env`);
  return value;
}

async function startAndRead(): Promise<CephTestCluster> {
  await run('bash', [clusterScript, 'start'], { timeoutMs: START_TIMEOUT_MS });
  const envFile = path.join(cephStateDir(), 'env');
  const vars = parseEnvLines(await readFile(envFile, 'utf8'));
  const confPath = requireVar(vars, 'CEPH_CONF', envFile);
  const keyringPath = vars.CEPH_ADMIN_KEYRING ?? requireVar(vars, 'CEPH_KEYRING', envFile);
  const monHost = requireVar(vars, 'CEPH_MON_HOST', envFile);
  const adminKey = keyFromKeyring(await readFile(keyringPath, 'utf8'));
  return {
    confPath,
    keyringPath,
    monHost,
    adminKey,
    ceph: (args) => cephWithConf(confPath, args),
    rbd: (args) => rbdWithConf(confPath, args),
  };
}

const started = new Map<string, Promise<CephTestCluster>>();

/** Starts the cluster unless it is up (once per process and state directory) and returns its settings. */
export function ensureCeph(): Promise<CephTestCluster> {
  const stateDir = cephStateDir();
  let cluster = started.get(stateDir);
  if (!cluster) {
    cluster = startAndRead();
    started.set(stateDir, cluster);
    cluster.catch(() => started.delete(stateDir));
  }
  return cluster;
}

async function cephWithConf(confPath: string, args: readonly string[]): Promise<string> {
  return (await run('ceph', ['-c', confPath, '--connect-timeout', CONNECT_TIMEOUT_S, ...args])).stdout;
}

async function rbdWithConf(confPath: string, args: readonly string[]): Promise<string> {
  return (await run('rbd', ['-c', confPath, '--client-mount-timeout', CONNECT_TIMEOUT_S, ...args])).stdout;
}

/** Runs the ceph CLI as admin against the test cluster; resolves to stdout, rejects with a CommandError. */
export async function ceph(args: readonly string[]): Promise<string> {
  return cephWithConf((await ensureCeph()).confPath, args);
}

/** Runs the rbd CLI as admin against the test cluster; resolves to stdout, rejects with a CommandError. */
export async function rbd(args: readonly string[]): Promise<string> {
  return rbdWithConf((await ensureCeph()).confPath, args);
}

/** Runs the rados CLI as admin against the test cluster (object-level surgery no library call offers). */
export async function rados(args: readonly string[]): Promise<string> {
  const { confPath } = await ensureCeph();
  return (await run('rados', ['-c', confPath, '--client-mount-timeout', CONNECT_TIMEOUT_S, ...args])).stdout;
}

/**
 * What a create that timed out half-way leaves (librbd writes the id object and the directory entry before the
 * header, and its rollback may time out too): made exactly, as a real image whose header object is removed. The
 * name is listed but cannot be opened. Returns the image id the header had.
 */
export async function makeHalfMadeImage(pool: string, image: string): Promise<string> {
  await rbd(['create', `${pool}/${image}`, '--size', '1G', '--image-feature', 'layering']);
  const { id } = JSON.parse(await rbd(['info', `${pool}/${image}`, '--format', 'json'])) as { id: string };
  await rados(['-p', pool, 'rm', `rbd_header.${id}`]);
  return id;
}

/**
 * Pauses one daemon of the test cluster (SIGSTOP) for `ms`, then resumes it (SIGCONT), like a stalled disk or a
 * frozen host. Resolves once it runs again; it always resumes, even if the caller's test fails meanwhile.
 */
export async function pauseDaemon(name: 'osd.0' | 'mon.a' | 'mgr.x', ms: number): Promise<void> {
  await ensureCeph();
  const pid = Number((await readFile(path.join(cephStateDir(), 'pid', name), 'utf8')).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${name}`);
  const safetyNet = resumeLater(pid, ms + 30_000);
  process.kill(pid, 'SIGSTOP');
  try {
    await new Promise((resolve) => setTimeout(resolve, ms));
  } finally {
    process.kill(pid, 'SIGCONT');
    safetyNet.cancel();
  }
}

/**
 * Sends SIGCONT to `pid` after `ms` from a detached process of its own: a daemon a test froze is resumed even if the
 * test's process dies or stalls first (a daemon left frozen would hang every later test of the run).
 */
export function resumeLater(pid: number, ms: number): { cancel(): void } {
  const seconds = String(Math.ceil(ms / 1000));
  const child = spawn('sh', ['-c', 'sleep "$1"; kill -CONT "$2" 2>/dev/null', 'resume-later', seconds, String(pid)], { detached: true, stdio: 'ignore' });
  child.unref();
  return {
    cancel() {
      // The whole group: sh and its sleep.
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

let nameCounter = 0;

/** A name no other test, process or earlier run uses; valid for pools, images and Kubernetes objects. */
export function uniqueName(prefix: string): string {
  nameCounter += 1;
  return `${prefix}-${process.pid.toString(36)}-${nameCounter.toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A uniquely named pool initialised for RBD (8 PGs, size 1 from the cluster defaults). */
export async function createTestPool(prefix: string): Promise<TestPool> {
  const pool = uniqueName(prefix);
  const remove = async (): Promise<void> => {
    // Removing a pool that does not exist succeeds, so a second remove() is harmless.
    await ceph(['osd', 'pool', 'rm', pool, pool, '--yes-i-really-really-mean-it']);
  };
  await ceph(['osd', 'pool', 'create', pool, '8', '8']);
  try {
    await rbd(['pool', 'init', pool]);
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
  return { pool, remove };
}

/** A fresh pool opened through the Ceph layer as admin: what most tests against real Ceph start from. */
export interface OpenTestPool {
  ceph: CephTestCluster;
  cluster: Cluster;
  pool: Pool;
  /** Closes the pool and the connection and removes the pool. */
  close(): Promise<void>;
}

export async function openTestPool(prefix: string): Promise<OpenTestPool> {
  const ceph = await ensureCeph();
  const created = await createTestPool(prefix);
  const cluster = await Cluster.connect({ monitors: ceph.monHost, user: 'admin', key: ceph.adminKey });
  const pool = await cluster.openPool(created.pool);
  return {
    ceph,
    cluster,
    pool,
    async close() {
      await pool.close();
      await cluster.close();
      await created.remove();
    },
  };
}

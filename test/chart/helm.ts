// Runs the pinned helm (the one scripts/kube/build.sh caches) without a cluster: lint and template need
// none, so these tests do not start the control plane that test/support/kube.ts's helm() requires.
import { execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';

// This file runs as dist/test/chart/helm.js: the repository is three levels up.
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const chartDir = path.join(repoRoot, 'charts', 'rbd-provisioner');

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never rejects on a non-zero exit (callers assert on it). */
export function runCommand(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    // A child that exits without reading its input closes the pipe first: EPIPE here is no error of the run's.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(opts.input ?? '');
  });
}

let helmBinaryPromise: Promise<string> | undefined;

/** The helm binary scripts/kube/build.sh caches (fetched or built by it on first use). */
export function helmBinary(): Promise<string> {
  helmBinaryPromise ??= locateHelm();
  return helmBinaryPromise;
}

async function locateHelm(): Promise<string> {
  const libSh = path.join(repoRoot, 'scripts', 'kube', 'lib.sh');
  const located = await runCommand('bash', ['-c', 'source "$1" && printf %s "$helm_bin_dir/helm"', 'locate-helm', libSh]);
  if (located.status !== 0 || located.stdout === '') {
    throw new Error(`cannot locate helm through scripts/kube/lib.sh: ${located.stderr.trim()}`);
  }
  const helm = located.stdout;
  if (!(await isExecutable(helm))) {
    // build.sh fetches helm and builds the control plane binaries; a cold run takes minutes.
    const built = await runCommand('bash', [path.join(repoRoot, 'scripts', 'kube', 'build.sh')], { timeoutMs: 45 * 60_000 });
    if (built.status !== 0 || !(await isExecutable(helm))) {
      throw new Error(`scripts/kube/build.sh did not provide ${path.basename(helm)} (exit ${String(built.status)}): ${built.stderr.trim()}`);
    }
  }
  return helm;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let helmHomePromise: Promise<string> | undefined;

/** Private helm cache/config/data directories, so tests never read or write the user's helm setup. */
function helmHome(): Promise<string> {
  helmHomePromise ??= mkdtemp(path.join(tmpdir(), 'rbd-chart-helm-')).then((dir) => {
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return helmHomePromise;
}

export async function runHelm(args: readonly string[]): Promise<RunResult> {
  const [helm, home] = await Promise.all([helmBinary(), helmHome()]);
  return runCommand(helm, args, {
    env: {
      HELM_CACHE_HOME: path.join(home, 'cache'),
      HELM_CONFIG_HOME: path.join(home, 'config'),
      HELM_DATA_HOME: path.join(home, 'data'),
      // Whatever cluster the caller's environment points at must not matter here.
      KUBECONFIG: path.join(home, 'no-kubeconfig'),
    },
  });
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Include the `helm test` hook resources (default true, as `helm install` would create them on test). */
  tests?: boolean;
  chart?: string;
  showOnly?: string;
}

/** `helm template` with the given values (a values file, so lists are replaced as users would replace them). */
export async function helmTemplate(values: object, opts: RenderOptions = {}): Promise<RunResult> {
  const scratch = await mkdtemp(path.join(tmpdir(), 'rbd-chart-values-'));
  try {
    const valuesFile = path.join(scratch, 'values.yaml');
    // JSON is YAML: no serializer needed, and no YAML surprises in the values under test.
    await writeFile(valuesFile, JSON.stringify(values));
    const args = [
      'template',
      opts.release ?? 'rel',
      opts.chart ?? chartDir,
      '--namespace',
      opts.namespace ?? 'ns-rel',
      '--values',
      valuesFile,
    ];
    if (opts.tests === false) args.push('--skip-tests');
    if (opts.showOnly !== undefined) args.push('--show-only', opts.showOnly);
    return await runHelm(args);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A rendered manifest: any Kubernetes object, read as plain JSON. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export function parseManifests(text: string): Manifest[] {
  return loadAll(text).filter((doc): doc is Manifest => doc !== null && doc !== undefined);
}

/** Renders and parses; fails with helm's own message when rendering fails. */
export async function render(values: object, opts: RenderOptions = {}): Promise<Manifest[]> {
  const result = await helmTemplate(values, opts);
  if (result.status !== 0) throw new Error(`helm template failed (exit ${String(result.status)}): ${result.stderr.trim()}`);
  return parseManifests(result.stdout);
}

export function ofKind<T = Manifest>(manifests: readonly Manifest[], kind: string): T[] {
  return manifests.filter((m) => m.kind === kind) as unknown as T[];
}

export function onlyOfKind<T = Manifest>(manifests: readonly Manifest[], kind: string): T {
  const found = ofKind<T>(manifests, kind);
  if (found.length !== 1) {
    throw new Error(`expected exactly one ${kind}, rendered ${found.length}: ${manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', ')}`);
  }
  return found[0] as T;
}

/** execFile as a promise, for tools whose exit status is the answer (ldd, dpkg). */
export function execText(file: string, args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ status, stdout, stderr: err !== null && stderr === '' ? err.message : stderr });
    });
  });
}

// Tests of scripts/ceph/cluster.sh itself and of the test helper over it, on a cluster of their own: a private
// state directory (so a different monitor port) next to the default cluster, which they never touch.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CommandError, clusterScript, createTestPool, ensureCeph, keyFromKeyring, parseEnvLines, run, uniqueName,
} from '../support/ceph.js';

const stateRoot = await mkdtemp(path.join(os.tmpdir(), 'rbd-provisioner-cephcluster-'));
const stateDir = path.join(stateRoot, 'ceph');
const confPath = path.join(stateDir, 'ceph.conf');
// The helpers under test read this at call time.
process.env.RBD_PROVISIONER_STATE = stateRoot;

interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function script(command: string, env?: NodeJS.ProcessEnv): Promise<ScriptResult> {
  const begin = performance.now();
  try {
    const { stdout, stderr } = await run('bash', [clusterScript, command], { timeoutMs: 180_000, env });
    return { code: 0, stdout, stderr, ms: performance.now() - begin };
  } catch (error) {
    if (!(error instanceof CommandError) || error.exitCode === null) throw error;
    return { code: error.exitCode, stdout: '', stderr: error.stderr, ms: performance.now() - begin };
  }
}

type Daemon = 'ceph-mon' | 'ceph-osd' | 'ceph-mgr';

/** Live (non-zombie) ceph daemons started with a state directory's ceph.conf, by binary. */
async function daemons(conf = confPath): Promise<Map<Daemon, number[]>> {
  const found = new Map<Daemon, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue; // exited while we looked
    }
    const binary = path.basename(argv[0] ?? '');
    if (!['ceph-mon', 'ceph-osd', 'ceph-mgr'].includes(binary) || !argv.includes(conf)) continue;
    const pids = found.get(binary as Daemon) ?? [];
    pids.push(Number(entry));
    found.set(binary as Daemon, pids);
  }
  return found;
}

function pidsOf(found: Map<Daemon, number[]>): number[] {
  return [...found.values()].flat().sort((a, b) => a - b);
}

async function assertOneOfEach(): Promise<number[]> {
  const found = await daemons();
  for (const binary of ['ceph-mon', 'ceph-osd', 'ceph-mgr'] as const) {
    assert.equal(found.get(binary)?.length, 1, `${binary}: ${JSON.stringify(Object.fromEntries(found))}`);
  }
  return pidsOf(found);
}

async function assertServesRbd(): Promise<void> {
  const image = uniqueName('probe');
  // No keyring or monitor flags: the ceph.conf alone must make the CLI an admin of this cluster.
  const status = await run('ceph', ['-c', confPath, '--connect-timeout', '10', 'status', '-f', 'json']);
  assert.match(status.stdout, /"num_up_osds":1,/);
  await run('rbd', ['-c', confPath, 'create', '--size', '1G', `rbd/${image}`]);
  assert.ok((await run('rbd', ['-c', confPath, 'ls', 'rbd'])).stdout.split('\n').includes(image));
  await run('rbd', ['-c', confPath, 'rm', '--no-progress', `rbd/${image}`]);
}

async function waitUntil(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('scripts/ceph/cluster.sh', { timeout: 600_000 }, () => {
  before(async () => {
    assert.deepEqual(pidsOf(await daemons()), [], 'fresh state directory has no daemons');
  });

  after(async () => {
    await script('stop');
    await rm(stateRoot, { recursive: true, force: true });
  });

  test('status and env fail before the first start', async () => {
    const status = await script('status');
    assert.equal(status.code, 1);
    assert.match(status.stderr, /not running/);
    const env = await script('env');
    assert.equal(env.code, 1);
    assert.match(env.stderr, /no cluster in .*run: .*cluster\.sh start/);
  });

  test('two concurrent starts both succeed and start one set of daemons', async () => {
    const [first, second] = await Promise.all([script('start'), script('start')]);
    assert.equal(first?.code, 0, first?.stderr);
    assert.equal(second?.code, 0, second?.stderr);
    const stderrs = [first?.stderr ?? '', second?.stderr ?? ''];
    assert.equal(stderrs.filter((text) => /started in \d+ ms/.test(text)).length, 1, stderrs.join('\n---\n'));
    assert.equal(stderrs.filter((text) => /already running/.test(text)).length, 1, stderrs.join('\n---\n'));
    const coldStartMs = Math.max(first?.ms ?? 0, second?.ms ?? 0);
    console.log(`# cold start (two concurrent callers): ${Math.round(coldStartMs)} ms`);
    await assertOneOfEach();
  });

  test('start on a running cluster changes nothing', async () => {
    const before = await assertOneOfEach();
    const port = await readFile(path.join(stateDir, 'mon-port'), 'utf8');
    const again = await script('start');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /already running/);
    assert.ok(again.ms < 10_000, `a no-op start took ${again.ms} ms`);
    assert.deepEqual(await assertOneOfEach(), before);
    assert.equal(await readFile(path.join(stateDir, 'mon-port'), 'utf8'), port);
  });

  test('status exits 0 and the cluster serves RBD through the conf alone', async () => {
    const status = await script('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /HEALTH_OK/);
    assert.match(status.stdout, /1 osds: 1 up .*1 in/);
    assert.match(status.stdout, /mgr: x\(active/);
    await assertServesRbd();
  });

  test('env prints the settings, writes them to <state>/ceph/env and never the key', async () => {
    const env = await script('env');
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout, await readFile(path.join(stateDir, 'env'), 'utf8'));
    const vars = parseEnvLines(env.stdout);
    assert.deepEqual(Object.keys(vars).sort(), ['CEPH_ADMIN_KEYRING', 'CEPH_CONF', 'CEPH_KEYRING', 'CEPH_MON_HOST']);
    assert.equal(env.stdout.trim().split('\n').length, 4);
    assert.equal(vars.CEPH_CONF, confPath);

    const port = (await readFile(path.join(stateDir, 'mon-port'), 'utf8')).trim();
    assert.equal(vars.CEPH_MON_HOST, `v2:127.0.0.1:${port}`);
    const conf = await readFile(confPath, 'utf8');
    assert.match(conf, new RegExp(`^mon host = \\[v2:127\\.0\\.0\\.1:${port}\\]$`, 'm'));
    assert.match(conf, /^ms bind msgr1 = false$/m);
    assert.match(conf, /^auth client required = cephx$/m);

    const keyringPath = vars.CEPH_ADMIN_KEYRING ?? '';
    assert.equal(vars.CEPH_KEYRING, keyringPath);
    assert.ok(keyringPath.startsWith(stateDir + path.sep), keyringPath);
    assert.match(conf, new RegExp(`^keyring = ${keyringPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.equal((await stat(keyringPath)).mode & 0o077, 0, 'keyring readable by others');
    const key = keyFromKeyring(await readFile(keyringPath, 'utf8'));
    assert.ok(!env.stdout.includes(key) && !env.stderr.includes(key), 'env output carries the admin key');
  });

  test('ensureCeph returns the settings and the admin key read from the keyring', async () => {
    const cluster = await ensureCeph();
    const vars = parseEnvLines(await readFile(path.join(stateDir, 'env'), 'utf8'));
    assert.equal(cluster.confPath, vars.CEPH_CONF);
    assert.equal(cluster.keyringPath, vars.CEPH_ADMIN_KEYRING);
    assert.equal(cluster.monHost, vars.CEPH_MON_HOST);
    // cephx keys are 16 secret bytes plus a header, base64: 40 characters.
    assert.match(cluster.adminKey, /^[A-Za-z0-9+/]{38}==$/);
    assert.ok((await readFile(cluster.keyringPath, 'utf8')).includes(`key = ${cluster.adminKey}`));
    assert.match(await cluster.ceph(['health']), /HEALTH_OK/);
  });

  test('createTestPool makes an RBD pool; remove() deletes it and is harmless twice', async () => {
    const cluster = await ensureCeph();
    const { pool, remove } = await createTestPool('cephcluster');
    assert.ok(pool.startsWith('cephcluster-'), pool);
    assert.ok((await cluster.ceph(['osd', 'pool', 'ls'])).split('\n').includes(pool));
    assert.deepEqual(JSON.parse(await cluster.ceph(['osd', 'pool', 'application', 'get', pool, '-f', 'json'])), { rbd: {} });
    assert.equal((await cluster.ceph(['osd', 'pool', 'get', pool, 'pg_num'])).trim(), 'pg_num: 8');
    const image = uniqueName('img');
    await cluster.rbd(['create', '--size', '64M', `${pool}/${image}`]);
    await remove();
    assert.ok(!(await cluster.ceph(['osd', 'pool', 'ls'])).split('\n').includes(pool));
    await remove();
  });

  test('uniqueName gives distinct names with the prefix', () => {
    const names = new Set(Array.from({ length: 1000 }, () => uniqueName('x')));
    assert.equal(names.size, 1000);
    for (const name of names) assert.match(name, /^x-[a-z0-9]+-[a-z0-9]+-[0-9a-f]{6}$/);
  });

  test('the CLI runners reject with the exit code and stderr', async () => {
    const cluster = await ensureCeph();
    const missing = uniqueName('missing');
    await assert.rejects(cluster.ceph(['osd', 'pool', 'get', missing, 'size']), (error: unknown) => {
      assert.ok(error instanceof CommandError);
      assert.equal(error.exitCode, 2);
      assert.match(error.stderr, /ENOENT: unrecognized pool/);
      assert.match(error.message, new RegExp(`ceph -c .* osd pool get ${missing} size failed \\(exit 2\\)`));
      return true;
    });
    await assert.rejects(cluster.rbd(['info', `rbd/${missing}`]), (error: unknown) => {
      assert.ok(error instanceof CommandError);
      assert.match(error.stderr, /No such file or directory/);
      return true;
    });
  });

  test('start rebuilds a cluster whose daemons died (as after a reboot)', async () => {
    const port = await readFile(path.join(stateDir, 'mon-port'), 'utf8');
    const old = await assertOneOfEach();
    for (const pid of old) process.kill(pid, 'SIGKILL');
    await waitUntil(async () => pidsOf(await daemons()).length === 0, 10_000, 'killed daemons to exit');
    const status = await script('status');
    assert.equal(status.code, 1);

    const restarted = await script('start');
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.match(restarted.stderr, /stale or unhealthy cluster .* starting over/);
    const fresh = await assertOneOfEach();
    assert.equal(fresh.filter((pid) => old.includes(pid)).length, 0);
    assert.equal(await readFile(path.join(stateDir, 'mon-port'), 'utf8'), port, 'the monitor keeps its port');
    await assertServesRbd();
  });

  test('a monitor that cannot start fails the start fast, with its log, and leaves nothing running', async () => {
    const failRoot = path.join(stateRoot, 'failing');
    const binDir = path.join(failRoot, 'bin');
    await mkdir(binDir, { recursive: true });
    // Stands in for ceph-mon: the real one (found on the original PATH) builds the store; the daemon dies at once.
    const fakeMon = path.join(binDir, 'ceph-mon');
    await writeFile(
      fakeMon,
      [
        '#!/bin/sh',
        `case " $* " in *" --mkfs "*) PATH='${process.env.PATH ?? ''}' exec ceph-mon "$@" ;; esac`,
        'echo "simulated monitor failure" >&2',
        'exit 1',
        '',
      ].join('\n'),
    );
    await chmod(fakeMon, 0o755);
    const env = { ...process.env, RBD_PROVISIONER_STATE: failRoot, PATH: `${binDir}:${process.env.PATH ?? ''}` };

    const failed = await script('start', env);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /first contact with the monitor on port \d+ failed: a daemon exited/);
    assert.match(failed.stderr, /simulated monitor failure/);
    assert.ok(failed.ms < 30_000, `failing start took ${failed.ms} ms`);
    const failConf = path.join(failRoot, 'ceph', 'ceph.conf');
    assert.deepEqual(pidsOf(await daemons(failConf)), []);
    assert.equal((await script('status', env)).code, 1);
    assert.equal((await script('stop', env)).code, 0);
  });

  test('stop leaves no daemon of this state directory and removes the data', async () => {
    const stopped = await script('stop');
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(pidsOf(await daemons()), []);
    for (const data of ['ceph.conf', 'mon', 'osd', 'mgr', 'env', 'ready']) {
      assert.ok(!existsSync(path.join(stateDir, data)), `${data} left behind`);
    }
    assert.equal((await script('status')).code, 1);
    assert.equal((await script('stop')).code, 0, 'a second stop is harmless');
  });
});

// Runs a second, private control plane (its own state directory), so stopping
// it cannot disturb the shared one the other suites use.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureControlPlane, repoRoot, stopControlPlane, type ControlPlane } from '../support/kube.js';

const clusterScript = path.join(repoRoot, 'scripts', 'kube', 'cluster.sh');

async function isRunning(pid: number): Promise<boolean> {
  // A zombie has already released its ports and memory; it only waits to be reaped.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function status(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('bash', [clusterScript, 'status'], { env: { ...process.env, ...env } }, (err, stdout) => {
      resolve({ code: err ? Number(err.code) : 0, stdout });
    });
  });
}

describe('cluster.sh lifecycle (private state directory)', () => {
  let stateRoot: string;
  let env: NodeJS.ProcessEnv;
  let controlPlane: ControlPlane;

  before(async () => {
    stateRoot = await mkdtemp(path.join(os.tmpdir(), 'rbd-provisioner-cp-'));
    env = { RBD_PROVISIONER_STATE: stateRoot };
  });

  after(async () => {
    await stopControlPlane({ env });
    await rm(stateRoot, { recursive: true, force: true });
  });

  test('two concurrent starts bring up one control plane', async () => {
    const [first, second] = await Promise.all([ensureControlPlane({ env }), ensureControlPlane({ env })]);
    assert.deepEqual(second.pids, first.pids);
    assert.equal(second.server, first.server);
    controlPlane = first;

    assert.equal(controlPlane.stateDir, path.join(stateRoot, 'kube'));
    for (const [name, port] of Object.entries(controlPlane.ports)) {
      assert.ok(![2379, 2380, 6443].includes(port), `${name} uses well-known port ${port}`);
      assert.ok(await isListening(port), `${name} is not listening on ${port}`);
    }
    for (const [name, pid] of Object.entries(controlPlane.pids)) assert.ok(await isRunning(pid), `${name} (${pid}) is not running`);

    const envFile = await readFile(controlPlane.envFile, 'utf8');
    assert.match(envFile, new RegExp(`^export KUBECONFIG='${controlPlane.kubeconfigPath}'$`, 'm'));
    const ready = await status(env);
    assert.equal(ready.code, 0);
    assert.match(ready.stdout, /^ready: https:\/\/127\.0\.0\.1:\d+/);

    // A start while running is a no-op.
    assert.deepEqual((await ensureControlPlane({ env })).pids, controlPlane.pids);
  });

  test('stop leaves no process and no listening port behind', async () => {
    assert.ok(controlPlane, 'the start test did not run');
    await stopControlPlane({ env });
    for (const [name, pid] of Object.entries(controlPlane.pids)) {
      assert.equal(await isRunning(pid), false, `${name} (pid ${pid}) survived stop`);
    }
    for (const [name, port] of Object.entries(controlPlane.ports)) {
      assert.equal(await isListening(port), false, `${name} port ${port} still accepts connections`);
    }
    const stopped = await status(env);
    assert.equal(stopped.code, 1);
    assert.match(stopped.stdout, /^not running/);
    await stopControlPlane({ env }); // stopping twice is harmless
  });
});

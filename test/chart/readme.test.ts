// The README's commands, run as written: every `sh` block of README.md is read from the file (so editing the README
// changes what is tested) and either run here, word for word, or marked with the reason it is not. The cluster's own
// values come from the variables the README introduces (MONITORS, POOL, ADMIN_KEY_FILE, USER_KEY_FILE), set to the
// test Ceph's; kubectl and helm reach the test control plane. Without a kubelet nothing runs the chart's Pod, so the
// test does what the kubelet would: it starts the Deployment's container command, as its ServiceAccount.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { CommandError, ensureCeph, run, type CephTestCluster } from '../support/ceph.js';
import { startController, type ControllerProcess } from '../support/controller.js';
import { adminKubeConfig, deletePodNow, ensureControlPlane, ignoreNotFound, uniqueName, waitFor, type ControlPlane } from '../support/kube.js';
import { repoRoot } from './helm.js';
import { deploymentInvocation, writeServiceAccountKubeconfig } from './live.js';

interface Block {
  /** The marker's name (`sandbox`, `helm-install`, ...) or `not run`. */
  name: string;
  /** Why it is not run, for `not run` blocks. */
  reason: string;
  text: string;
  line: number;
}

// Blocks inside list items are indented; the marker sits on the line above at the same indentation.
const MARKER = /^\s*<!-- readme-test: (.+?) -->$/;
const FENCE = /^(\s*)```sh$/;

/** Every ```sh block with the marker on the line above it; a block without one is an error naming its line. */
function readmeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const fence = FENCE.exec(lines[i]!);
    if (fence === null) continue;
    const marker = MARKER.exec(lines[i - 1] ?? '');
    if (marker === null) throw new Error(`README.md line ${i + 1}: an sh block without a "<!-- readme-test: ... -->" line above it`);
    const end = lines.indexOf(`${fence[1]}\`\`\``, i + 1);
    if (end < 0) throw new Error(`README.md line ${i + 1}: an sh block that never ends`);
    const [, label = ''] = marker;
    const notRun = /^not run \((.+)\)$/.exec(label);
    const named = /^([a-z-]+)(?: \(.+\))?$/.exec(label);
    if (notRun === null && named === null) throw new Error(`README.md line ${i}: marker "${label}": expected "<name>" or "not run (<reason>)"`);
    const text = lines.slice(i + 1, end).map((line) => line.slice(fence[1]!.length)).join('\n');
    blocks.push({ name: notRun ? 'not run' : named![1]!, reason: notRun?.[1] ?? '', text: `${text}\n`, line: i + 1 });
    i = end;
  }
  return blocks;
}

let allBlocks: Block[];
let blocks: Map<string, Block>;
let ceph: CephTestCluster;
let controlPlane: ControlPlane;
let scratch: string;
let controller: ControllerProcess | undefined;
const pool = uniqueName('readme');
// The names the README uses: this test owns them while it runs.
const NAMESPACE = 'rbd-provisioner';
const USERS = ['client.kube-provisioner', 'client.kube-node'];

function block(name: string): string {
  const found = blocks.get(name);
  if (found === undefined) throw new Error(`README.md has no "${name}" block`);
  return found.text;
}

/** Runs one block with bash as a user's shell would, stopping at the first failing command; its output. */
async function runBlock(name: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  try {
    const { stdout, stderr } = await run('bash', ['-e', '-o', 'pipefail', '-c', block(name)], { env, timeoutMs, cwd: repoRoot });
    return stdout + stderr;
  } catch (err) {
    if (err instanceof CommandError) throw new Error(`README block "${name}" failed: ${err.message}`, { cause: err });
    throw err;
  }
}

function userEnv(): NodeJS.ProcessEnv {
  const tools = [path.dirname(process.execPath), path.dirname(controlPlane.kubectl), path.dirname(controlPlane.helm)];
  return {
    ...process.env,
    PATH: [...tools, process.env['PATH'] ?? ''].join(':'),
    KUBECONFIG: controlPlane.kubeconfigPath,
    CEPH_CONF: ceph.confPath,
    MONITORS: ceph.monHost,
    POOL: pool,
    ADMIN_KEY_FILE: path.join(scratch, 'kube-provisioner.key'),
    USER_KEY_FILE: path.join(scratch, 'kube-node.key'),
  };
}

async function removeUsers(): Promise<void> {
  for (const user of USERS) await ceph.ceph(['auth', 'rm', user]).catch(() => undefined);
}

before(async () => {
  allBlocks = readmeBlocks(await readFile(path.join(repoRoot, 'README.md'), 'utf8'));
  blocks = new Map(allBlocks.map((b) => [b.name, b]));
  [ceph, controlPlane] = await Promise.all([ensureCeph(), ensureControlPlane()]);
  scratch = await mkdtemp(path.join(tmpdir(), 'rbd-readme-'));
  // What an earlier run may have left under the README's fixed names.
  await removeUsers();
  const core = adminKubeConfig(controlPlane).makeApiClient(k8s.CoreV1Api);
  await ignoreNotFound(core.deleteNamespacedPersistentVolumeClaim({ name: 'first-claim', namespace: 'default' }));
  await ignoreNotFound(core.deleteNamespace({ name: NAMESPACE }));
  await waitFor(`namespace ${NAMESPACE} gone`, async () => ((await ignoreNotFound(core.readNamespace({ name: NAMESPACE }))) === undefined ? true : undefined), { timeoutMs: 120_000, intervalMs: 500 });
  await ignoreNotFound(adminKubeConfig(controlPlane).makeApiClient(k8s.StorageV1Api).deleteStorageClass({ name: 'rbd' }));
});

after(async () => {
  await controller?.stop();
  await removeUsers();
  await ceph?.ceph(['osd', 'pool', 'rm', pool, pool, '--yes-i-really-really-mean-it']).catch(() => undefined);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('every sh block of the README is run by this test or says why not', () => {
  const named = allBlocks.filter((b) => b.name !== 'not run').map((b) => b.name);
  assert.deepEqual([...named].sort(), ['ceph-setup', 'first-claim', 'helm-install', 'sandbox', 'tests', 'uninstall']);
  assert.equal(new Set(named).size, named.length, 'block names are unique');
  for (const b of allBlocks.filter((x) => x.name === 'not run')) assert.ok(b.reason.length > 10, `README.md line ${b.line}: say why it is not run`);
});

test('the tests block is what CI runs', async () => {
  const ci = (await readFile(path.join(repoRoot, '.ci', 'run'), 'utf8')).split('\n').map((l) => l.trim());
  const commands = block('tests').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '');
  assert.deepEqual(commands, ['npm test']);
  for (const command of commands) assert.ok(ci.includes(command), `.ci/run runs "${command}"`);
});

test('the Ceph setup, the Helm install with both Secrets, a first claim and the uninstall, as written', async (t) => {
  const env = userEnv();
  const kc = adminKubeConfig(controlPlane);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);

  await runBlock('ceph-setup', env, 120_000);
  for (const file of [env['ADMIN_KEY_FILE']!, env['USER_KEY_FILE']!]) {
    assert.equal((await stat(file)).mode & 0o077, 0, `${path.basename(file)} is readable by its owner only`);
  }
  const caps = await ceph.ceph(['auth', 'get', 'client.kube-provisioner']);
  assert.match(caps, /caps mon = "profile rbd"/);

  await runBlock('helm-install', env, 180_000);
  // Playing the kubelet: the Deployment's container command, as its ServiceAccount, with the chart's arguments.
  const deployment = await apps.readNamespacedDeployment({ name: 'rbd-provisioner', namespace: NAMESPACE });
  const invocation = deploymentInvocation(deployment, NAMESPACE, 'rbd-provisioner-readme');
  const kubeconfigPath = path.join(scratch, 'sa.kubeconfig');
  await writeServiceAccountKubeconfig(controlPlane, NAMESPACE, invocation.serviceAccount, kubeconfigPath);
  controller = await startController({ kubeconfigPath, provisionerName: '', namespace: NAMESPACE, argv: invocation.args, env: invocation.env });

  const shown = await runBlock('first-claim', env, 180_000);
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'first-claim', namespace: 'default' });
  const pvName = claim.spec!.volumeName!;
  assert.match(shown, new RegExp(`${pvName}\\s+1Gi\\s+RWO\\s+Delete\\s+Bound\\s+default/first-claim\\s+rbd`));
  const pv = await core.readPersistentVolume({ name: pvName });
  assert.equal(pv.spec?.csi?.driver, 'rbd.csi.ceph.com');
  assert.equal(pv.spec?.csi?.volumeAttributes?.['pool'], pool);
  assert.ok((await ceph.rbd(['ls', pool])).split('\n').includes(pvName), 'the image is in the pool');

  // Nothing runs the release's Pods; were one placed on a Node, deleting it would wait for a kubelet: do its part.
  const podsGone = setInterval(() => {
    void core.listNamespacedPod({ namespace: NAMESPACE }).then((list) => Promise.all(list.items.filter((p) => p.metadata?.deletionTimestamp).map((p) => deletePodNow(kc, NAMESPACE, p.metadata!.name!)))).catch(() => undefined);
  }, 1_000);
  // Its RBAC goes with the release, while the process (a Pod being stopped) still runs: judge what it did before.
  const beforeUninstall = controller.output().length;
  try {
    await runBlock('uninstall', env, 300_000);
  } finally {
    clearInterval(podsGone);
  }
  assert.equal(await ignoreNotFound(core.readPersistentVolume({ name: pvName })), undefined, 'the PV is gone');
  assert.ok(!(await ceph.rbd(['ls', pool])).split('\n').includes(pvName), 'the image is gone');
  assert.equal(await ignoreNotFound(core.readNamespace({ name: NAMESPACE })), undefined, 'the namespace is gone');
  assert.doesNotMatch(controller.output().slice(0, beforeUninstall), /forbidden/i, 'the chart\'s RBAC allowed all of it');
  assert.match(controller.output(), /PV deleted/);
  t.diagnostic(`ran the README blocks ceph-setup, helm-install, first-claim and uninstall against pool ${pool}`);
});

test('the sandbox block, as written: up, its environment, down', async (t) => {
  const started = Date.now();
  const output = await runBlock('sandbox', { ...process.env, PATH: [path.dirname(process.execPath), process.env['PATH'] ?? ''].join(':') }, 30 * 60_000);
  assert.match(output, /demo-claim\s+Bound/, 'the demo claim ends Bound');
  assert.match(output, /rbd image '[^']+':/, 'rbd info shows its image');
  assert.match(output, /sandbox stopped; nothing of it is left running/);
  assert.deepEqual(await processesMentioning(path.join(repoRoot, '.sandbox')), [], 'no process of the sandbox is left');
  await assert.rejects(stat(path.join(repoRoot, '.sandbox')), 'sandbox:down removed .sandbox/');
  t.diagnostic(`sandbox up and down in ${((Date.now() - started) / 1000).toFixed(0)} s`);
});

/** Command lines of the running processes that contain `text` (the sandbox's daemons name its directory). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.split('\0').join(' ')}`);
  }
  return found;
}

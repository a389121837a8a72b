// The README's commands, run as written: every `sh` block of README.md is read from the file (so editing the README
// changes what is tested) and either run here, word for word, or marked with the reason it is not. The cluster's own
// values come from the variables the README introduces (MONITORS, POOL, ADMIN_KEY_FILE, USER_KEY_FILE), set to the
// test Ceph's; kubectl and helm reach the test control plane. Without a kubelet nothing runs the chart's Pod, so the
// test does what the kubelet would: it starts the Deployment's container command, as its ServiceAccount.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { CommandError, ensureCeph, run, type CephTestCluster } from '../support/ceph.js';
import { startController, type ControllerProcess } from '../support/controller.js';
import { adminKubeConfig, deletePodNow, ensureControlPlane, ignoreNotFound, uniqueName, unpulledImage, waitFor, type ControlPlane } from '../support/kube.js';
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
  await removeOldProvisionerFixtures();
});

after(async () => {
  await controller?.stop();
  await removeOldProvisionerFixtures().catch(() => undefined);
  await removeUsers();
  await ceph?.ceph(['osd', 'pool', 'rm', pool, pool, '--yes-i-really-really-mean-it']).catch(() => undefined);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('every sh block of the README is run by this test or says why not', () => {
  const named = allBlocks.filter((b) => b.name !== 'not run').map((b) => b.name);
  assert.deepEqual([...named].sort(), ['ceph-setup', 'first-claim', 'helm-install', 'migrate-convert', 'migrate-takeover', 'sandbox', 'tests', 'uninstall']);
  assert.equal(new Set(named).size, named.length, 'block names are unique');
  for (const b of allBlocks.filter((x) => x.name === 'not run')) assert.ok(b.reason.length > 10, `README.md line ${b.line}: say why it is not run`);
});

test('the tests block is what CI runs', async () => {
  const ci = (await readFile(path.join(repoRoot, '.ci', 'run'), 'utf8')).split('\n').map((l) => l.trim());
  const commands = block('tests').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter((l) => l !== '');
  assert.deepEqual(commands, ['npm test']);
  for (const command of commands) assert.ok(ci.includes(command), `.ci/run runs "${command}"`);
});

test('the Ceph setup, the Helm install with both Secrets, a first claim, the migration steps and the uninstall, as written', async (t) => {
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
  const runReleasePod = async (): Promise<ControllerProcess> => {
    const deployment = await apps.readNamespacedDeployment({ name: 'rbd-provisioner', namespace: NAMESPACE });
    const invocation = deploymentInvocation(deployment, NAMESPACE, 'rbd-provisioner-readme');
    const kubeconfigPath = path.join(scratch, 'sa.kubeconfig');
    await writeServiceAccountKubeconfig(controlPlane, NAMESPACE, invocation.serviceAccount, kubeconfigPath);
    return startController({ kubeconfigPath, provisionerName: '', namespace: NAMESPACE, argv: invocation.args, env: invocation.env });
  };
  controller = await runReleasePod();

  const shown = await runBlock('first-claim', env, 180_000);
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'first-claim', namespace: 'default' });
  const pvName = claim.spec!.volumeName!;
  assert.match(shown, new RegExp(`${pvName}\\s+1Gi\\s+RWO\\s+Delete\\s+Bound\\s+default/first-claim\\s+rbd`));
  const pv = await core.readPersistentVolume({ name: pvName });
  assert.equal(pv.spec?.csi?.driver, 'rbd.csi.ceph.com');
  assert.equal(pv.spec?.csi?.volumeAttributes?.['pool'], pool);
  assert.ok((await ceph.rbd(['ls', pool])).split('\n').includes(pvName), 'the image is in the pool');

  await migrationFromTheOldProvisioner(env, async () => {
    await controller?.stop();
    controller = await runReleasePod();
  });

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
  t.diagnostic(`ran the README blocks ceph-setup, helm-install, first-claim, migrate-takeover, migrate-convert and uninstall against pool ${pool}`);
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

// The README's migration steps name what an old install has: the retired provisioner's Deployment and admin Secret in
// kube-system, a class of its own, claims in `apps` used by a StatefulSet `db`. Made here in its exact shape.
const OLD_PROVISIONER = 'ceph.com/rbd';
const OLD_CLASS = 'rbd-old';
const APPS = 'apps';

async function removeOldProvisionerFixtures(): Promise<void> {
  const kc = adminKubeConfig(controlPlane);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await ignoreNotFound(core.deleteNamespace({ name: APPS }));
  await ignoreNotFound(kc.makeApiClient(k8s.StorageV1Api).deleteStorageClass({ name: OLD_CLASS }));
  await ignoreNotFound(kc.makeApiClient(k8s.AppsV1Api).deleteNamespacedDeployment({ name: 'rbd-provisioner', namespace: 'kube-system' }));
  await ignoreNotFound(core.deleteNamespacedSecret({ name: 'ceph-admin', namespace: 'kube-system' }));
  for (const pv of (await core.listPersistentVolume()).items) {
    if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] === OLD_PROVISIONER && pv.spec?.claimRef?.namespace === APPS) {
      await ignoreNotFound(core.deletePersistentVolume({ name: pv.metadata.name! }));
    }
  }
  await waitFor(`namespace ${APPS} gone`, async () => ((await ignoreNotFound(core.readNamespace({ name: APPS }))) === undefined ? true : undefined), { timeoutMs: 120_000, intervalMs: 500 });
}

/** An image the old provisioner made, its claim in `apps`, and the in-tree PV it wrote for it, bound. */
async function oldVolume(env: NodeJS.ProcessEnv, claimName: string): Promise<{ pv: string; image: string }> {
  const core = adminKubeConfig(controlPlane).makeApiClient(k8s.CoreV1Api);
  const image = `kubernetes-dynamic-pvc-${randomUUID()}`;
  await ceph.rbd(['create', `${pool}/${image}`, '--size', '1G', '--image-feature', 'layering']);
  const claim = await core.createNamespacedPersistentVolumeClaim({ namespace: APPS, body: {
    metadata: { name: claimName },
    spec: { storageClassName: OLD_CLASS, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  } });
  const pv = `pvc-${claim.metadata!.uid!}`;
  await core.createPersistentVolume({ body: {
    metadata: { name: pv, annotations: { 'pv.kubernetes.io/provisioned-by': OLD_PROVISIONER, rbdProvisionerIdentity: OLD_PROVISIONER } },
    spec: {
      accessModes: ['ReadWriteOnce'],
      capacity: { storage: '1Gi' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: APPS, name: claimName, uid: claim.metadata!.uid! },
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: OLD_CLASS,
      rbd: { monitors: [env['MONITORS']!], pool, image, user: 'kube-node', secretRef: { name: 'ceph-user', namespace: APPS }, fsType: 'ext4' },
    },
  } });
  await waitFor(`old claim ${claimName} Bound`, async () => ((await core.readNamespacedPersistentVolumeClaim({ name: claimName, namespace: APPS })).status?.phase === 'Bound' ? true : undefined), { timeoutMs: 120_000, intervalMs: 200 });
  return { pv, image };
}

async function migrationFromTheOldProvisioner(env: NodeJS.ProcessEnv, rollOut: () => Promise<void>): Promise<void> {
  const kc = adminKubeConfig(controlPlane);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const appsApi = kc.makeApiClient(k8s.AppsV1Api);
  const adminKey = (await readFile(env['ADMIN_KEY_FILE']!, 'utf8')).trim();
  const userKey = (await readFile(env['USER_KEY_FILE']!, 'utf8')).trim();
  await core.createNamespacedSecret({ namespace: 'kube-system', body: { metadata: { name: 'ceph-admin' }, type: 'kubernetes.io/rbd', stringData: { key: adminKey } } });
  const nothing = { replicas: 0, selector: { matchLabels: { app: 'old-rbd-provisioner' } }, template: { metadata: { labels: { app: 'old-rbd-provisioner' } }, spec: { containers: [{ name: 'rbd-provisioner', image: unpulledImage }] } } };
  await appsApi.createNamespacedDeployment({ namespace: 'kube-system', body: { metadata: { name: 'rbd-provisioner' }, spec: nothing } });
  await core.createNamespace({ body: { metadata: { name: APPS } } });
  await core.createNamespacedSecret({ namespace: APPS, body: { metadata: { name: 'ceph-user' }, type: 'kubernetes.io/rbd', stringData: { key: userKey } } });
  await kc.makeApiClient(k8s.StorageV1Api).createStorageClass({ body: {
    metadata: { name: OLD_CLASS }, provisioner: OLD_PROVISIONER, reclaimPolicy: 'Delete',
    parameters: {
      monitors: env['MONITORS']!, adminId: 'kube-provisioner', adminSecretName: 'ceph-admin', adminSecretNamespace: 'kube-system',
      pool, userId: 'kube-node', userSecretName: 'ceph-user', imageFormat: '2', imageFeatures: 'layering',
    },
  } });
  await appsApi.createNamespacedStatefulSet({ namespace: APPS, body: {
    metadata: { name: 'db' },
    spec: { serviceName: 'db', replicas: 1, selector: { matchLabels: { app: 'db' } }, template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: unpulledImage }] } } },
  } });
  const kept = await oldVolume(env, 'data-db-0');
  const released = await oldVolume(env, 'scratch');
  await core.deleteNamespacedPersistentVolumeClaim({ name: 'scratch', namespace: APPS });

  // Step 4: the release takes over the old PVs' deletion; the old Deployment goes.
  await runBlock('migrate-takeover', env, 180_000);
  await rollOut();
  await waitFor(`the Released old PV ${released.pv} and its image deleted by the takeover`, async () => {
    const pv = await ignoreNotFound(core.readPersistentVolume({ name: released.pv }));
    return pv === undefined && !(await ceph.rbd(['ls', pool])).split('\n').includes(released.image) ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500 });
  assert.equal(await ignoreNotFound(appsApi.readNamespacedDeployment({ name: 'rbd-provisioner', namespace: 'kube-system' })), undefined, 'the old Deployment is gone');

  // Step 5: the conversion, with `rbd-provisioner` being the checkout's entry point as the README says.
  const bin = path.join(scratch, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(path.join(bin, 'rbd-provisioner'), `#!/bin/sh\nexec node ${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'main.js'))} "$@"\n`, { mode: 0o755 });
  const shown = await runBlock('migrate-convert', { ...env, PATH: `${bin}:${env['PATH']}` }, 300_000);
  const claim = await core.readNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: APPS });
  assert.equal(claim.status?.phase, 'Bound', shown);
  const converted = await core.readPersistentVolume({ name: claim.spec!.volumeName! });
  assert.equal(converted.spec?.csi?.driver, 'rbd.csi.ceph.com');
  assert.equal(converted.spec?.csi?.volumeHandle, kept.image);
  assert.equal(converted.spec?.persistentVolumeReclaimPolicy, 'Delete');
  assert.equal(await ignoreNotFound(core.readPersistentVolume({ name: kept.pv })), undefined, 'the in-tree PV is gone');
  assert.equal((await appsApi.readNamespacedStatefulSet({ name: 'db', namespace: APPS })).spec?.replicas, 1, 'scaled back');

  // The converted claim is ours now: deleting it removes its image, as for any claim of ours.
  await core.deleteNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace: APPS });
  await waitFor(`the converted volume ${converted.metadata!.name} deleted`, async () => {
    const pv = await ignoreNotFound(core.readPersistentVolume({ name: converted.metadata!.name! }));
    return pv === undefined && !(await ceph.rbd(['ls', pool])).split('\n').includes(kept.image) ? true : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500 });
}

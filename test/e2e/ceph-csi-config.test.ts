// ceph-csi's config map kept by the controller process (--ceph-csi-config): the entry of each class of ours is there
// before its first claim, entries written by others and the map's other keys survive, ours go when no class and no PV
// needs them, a foreign entry is never overwritten; with the option off nothing is written.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseMonitors } from '../../src/ceph/monitors.js';
import { setupE2e, type E2e } from '../support/e2e.js';
import { ignoreNotFound, repoRoot, waitFor } from '../support/kube.js';

const CONFIG_KEY = 'config.json';
const OWNERSHIP = 'rbd.provisioner.ceph.io/ceph-csi-cluster-ids';

let e2e: E2e;
let monitors: string[];

before(async () => {
  e2e = await setupE2e('csiconfig');
  monitors = parseMonitors(e2e.ceph.monHost).map((entry) => entry.address);
});

after(async () => {
  await e2e?.cleanup();
});

type Entry = { clusterID?: string; monitors?: string[]; rbd?: { radosNamespace?: string }; [key: string]: unknown };

/** What `rbd-provisioner cluster-id` prints: the built CLI, as an admin runs it. */
function clusterIdOf(...args: string[]): string {
  const run = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'src', 'main.js'), 'cluster-id', `--monitors=${e2e.ceph.monHost}`, ...args], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim();
}

const readMap = (name: string): Promise<k8s.V1ConfigMap | undefined> =>
  ignoreNotFound(e2e.core.readNamespacedConfigMap({ namespace: e2e.namespace, name }));

async function entriesOf(name: string): Promise<Entry[]> {
  const map = await readMap(name);
  return JSON.parse(map?.data?.[CONFIG_KEY] ?? '[]') as Entry[];
}

async function waitEntries(name: string, what: string, check: (entries: Entry[]) => boolean): Promise<Entry[]> {
  return waitFor(`${what} in ${name}`, async (observe) => {
    const entries = await entriesOf(name);
    observe(entries);
    return check(entries) ? entries : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });
}

/** Rewrites config.json as another writer would (read, change, replace with the resourceVersion read). */
async function editAsSomeoneElse(name: string, change: (entries: Entry[]) => Entry[]): Promise<void> {
  for (;;) {
    const map = (await readMap(name))!;
    const entries = JSON.parse(map.data?.[CONFIG_KEY] ?? '[]') as Entry[];
    try {
      await e2e.core.replaceNamespacedConfigMap({
        namespace: e2e.namespace, name, body: { ...map, data: { ...map.data, [CONFIG_KEY]: JSON.stringify(change(entries), null, 2) } },
      });
      return;
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
    }
  }
}

const has = (entries: Entry[], clusterID: string): Entry | undefined => entries.find((entry) => entry.clusterID === clusterID);

describe('ceph-csi config map', () => {
  test('off (the default): a class and a Bound claim write nothing to any ConfigMap', async () => {
    const before = new Set((await e2e.core.listNamespacedConfigMap({ namespace: e2e.namespace })).items.map((m) => `${m.metadata?.name}@${m.metadata?.resourceVersion}`));
    const controller = await e2e.startController();
    const storageClass = await e2e.createClass(e2e.baseParameters());
    const claim = await e2e.createClaim(storageClass);
    const pv = await e2e.waitBound(claim.metadata!.name!);
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ namespace: e2e.namespace, name: claim.metadata!.name! });
    await e2e.waitGone(`PV ${pv.metadata!.name}`, () => e2e.readVolume(pv.metadata!.name!));
    const after = new Set((await e2e.core.listNamespacedConfigMap({ namespace: e2e.namespace })).items.map((m) => `${m.metadata?.name}@${m.metadata?.resourceVersion}`));
    assert.deepEqual(after, before);
    assert.equal(await readMap('ceph-csi-config'), undefined);
    assert.doesNotMatch(controller.output(), /ceph-csi config loop/);
    await e2e.storage.deleteStorageClass({ name: storageClass });
    await controller.stop();
  });

  test('on, map absent: created with the class\'s entry before any claim; the entry goes with the class', async () => {
    const name = 'ceph-csi-config-created';
    const controller = await e2e.startController({ extraArgs: [`--ceph-csi-config=${e2e.namespace}/${name}`] });
    const storageClass = await e2e.createClass({ ...e2e.baseParameters(), radosNamespace: 'csiconf-a' });
    const id = clusterIdOf('--rados-namespace=csiconf-a');
    const [entry] = await waitEntries(name, `entry ${id}`, (entries) => has(entries, id) !== undefined);
    assert.deepEqual(entry, { clusterID: id, monitors, rbd: { radosNamespace: 'csiconf-a' } });
    assert.deepEqual(JSON.parse((await readMap(name))!.metadata!.annotations![OWNERSHIP]!), { [e2e.provisionerName]: [id] });

    await e2e.storage.deleteStorageClass({ name: storageClass });
    await waitEntries(name, 'no entry', (entries) => entries.length === 0);
    assert.equal((await readMap(name))!.metadata?.annotations?.[OWNERSHIP], undefined);
    await controller.stop();
  });

  test('on: foreign entries and other keys survive; a conflicting entry is not overwritten; ours go when no class and no PV uses them', async (t) => {
    const name = 'ceph-csi-config';
    const foreign: Entry = { clusterID: 'foreign-cluster', monitors: ['192.0.2.1:6789'], cephFS: { subvolumeGroup: 'csi' }, readAffinity: { enabled: true, crushLocationLabels: ['zone'] } };
    await e2e.core.createNamespacedConfigMap({
      namespace: e2e.namespace,
      body: { metadata: { name, labels: { app: 'ceph-csi-rbd' } }, data: { [CONFIG_KEY]: JSON.stringify([foreign], null, 2), 'cluster-mapping.json': '[]' } },
    });
    const controller = await e2e.startController({ extraArgs: [`--ceph-csi-config=${e2e.namespace}/${name}`] });

    // A class: its entry before any claim, with the id the subcommand prints.
    const classA = await e2e.createClass(e2e.baseParameters());
    const idA = clusterIdOf();
    let entries = await waitEntries(name, `entry ${idA}`, (list) => has(list, idA) !== undefined);
    assert.deepEqual(has(entries, idA), { clusterID: idA, monitors, rbd: { radosNamespace: '' } });
    assert.deepEqual(has(entries, 'foreign-cluster'), foreign);

    // Someone else adds an entry while the controller runs; a second class (same monitors, another namespace: another
    // clusterID) is added after it: both foreign entries stay as written.
    const later: Entry = { clusterID: 'written-later', monitors: ['192.0.2.2:6789'], rbd: { radosNamespace: 'theirs' } };
    await editAsSomeoneElse(name, (list) => [...list, later]);
    const classB = await e2e.createClass({ ...e2e.baseParameters(), radosNamespace: 'csiconf-b' });
    const idB = clusterIdOf('--rados-namespace=csiconf-b');
    assert.notEqual(idB, idA);
    entries = await waitEntries(name, `entry ${idB}`, (list) => has(list, idB) !== undefined);
    assert.deepEqual(has(entries, idB), { clusterID: idB, monitors, rbd: { radosNamespace: 'csiconf-b' } });
    assert.deepEqual(has(entries, 'foreign-cluster'), foreign);
    assert.deepEqual(has(entries, 'written-later'), later);

    // A claim: its PV carries the clusterID whose entry is in the map.
    const claim = await e2e.createClaim(classA);
    const pv = await e2e.waitBound(claim.metadata!.name!);
    assert.equal(pv.spec?.csi?.volumeAttributes?.['clusterID'], idA);

    // A class whose clusterID another writer's entry holds with other monitors: a Warning on the class; their entry stays.
    const classC = await e2e.createClass({ ...e2e.baseParameters(), clusterID: 'foreign-cluster' });
    const warning = await e2e.waitEvent(classC, 'CephCsiConfigConflict', 30_000);
    assert.equal(warning.type, 'Warning');
    assert.match(warning.message ?? '', /clusterID "foreign-cluster" written by someone else/);
    t.diagnostic(`conflict event: ${warning.message}`);
    assert.deepEqual(has(await entriesOf(name), 'foreign-cluster'), foreign);

    // Class A and then class B deleted: B's entry goes; A's stays while its PV exists (events arrive in order, so the run
    // that dropped B's entry already knew A was gone).
    await e2e.storage.deleteStorageClass({ name: classA });
    await e2e.storage.deleteStorageClass({ name: classB });
    entries = await waitEntries(name, `no entry ${idB}`, (list) => has(list, idB) === undefined);
    assert.ok(has(entries, idA), `${idA} stays while PV ${pv.metadata!.name} uses it`);

    // The claim and its PV go: so does A's entry. What others wrote is all still there.
    await e2e.core.deleteNamespacedPersistentVolumeClaim({ namespace: e2e.namespace, name: claim.metadata!.name! });
    await e2e.waitGone(`PV ${pv.metadata!.name}`, () => e2e.readVolume(pv.metadata!.name!));
    entries = await waitEntries(name, `no entry ${idA}`, (list) => has(list, idA) === undefined);
    assert.deepEqual(entries, [foreign, later]);
    const map = (await readMap(name))!;
    assert.equal(map.data?.['cluster-mapping.json'], '[]');
    assert.equal(map.metadata?.labels?.['app'], 'ceph-csi-rbd');
    assert.equal(map.metadata?.annotations?.[OWNERSHIP], undefined);
    assert.doesNotMatch(controller.output(), /"level":"error"/);
    await e2e.storage.deleteStorageClass({ name: classC });
    await controller.stop();
  });
});

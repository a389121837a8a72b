// The chart's RBAC for ceph-csi's config map, against the real control plane: helm install with cephCsiConfig on,
// then the controller run as the chart's ServiceAccount with the chart's arguments creates the map in ceph-csi's
// namespace (create, which cannot be limited by name), then updates it (get and update on the one map by name), and
// may touch no other ConfigMap.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ensureCeph, type CephTestCluster } from '../support/ceph.js';
import { startController, type ControllerProcess } from '../support/controller.js';
import { adminKubeConfig, ensureControlPlane, ignoreNotFound, repoRoot, uniqueName, waitFor, type ControlPlane } from '../support/kube.js';
import { chartControllerInvocation, installChart, serviceAccountMay, uninstallChart, writeServiceAccountKubeconfig, type Release } from './live.js';

let ceph: CephTestCluster;
let controlPlane: ControlPlane;
let core: k8s.CoreV1Api;
let storage: k8s.StorageV1Api;
let release: Release;
let scratch: string;
let controller: ControllerProcess | undefined;
const cephCsiNamespace = uniqueName('ceph-csi-rbd');
const mapName = 'ceph-csi-config';
const provisionerName = `${uniqueName('chart-csiconf')}.rbd.provisioner.test`;
const chartClass = uniqueName('chart-csiconf');
const extraClass = uniqueName('chart-csiconf-b');

const clusterIdOf = (...args: string[]): string =>
  spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'src', 'main.js'), 'cluster-id', `--monitors=${ceph.monHost}`, ...args], { encoding: 'utf8' }).stdout.trim();

before(async () => {
  [ceph, controlPlane] = await Promise.all([ensureCeph(), ensureControlPlane()]);
  const kc = adminKubeConfig(controlPlane);
  core = kc.makeApiClient(k8s.CoreV1Api);
  storage = kc.makeApiClient(k8s.StorageV1Api);
  scratch = await mkdtemp(path.join(tmpdir(), 'rbd-chart-csiconf-'));
  // ceph-csi's namespace exists (its chart made it); its config map does not yet.
  await core.createNamespace({ body: { metadata: { name: cephCsiNamespace } } });
  release = {
    name: uniqueName('rbdp'),
    namespace: uniqueName('rbd-system'),
    values: {
      provisionerName,
      replicaCount: 1,
      cephCsiConfig: { enabled: true, namespace: cephCsiNamespace, name: mapName },
      storageClasses: [{
        name: chartClass,
        create: true,
        parameters: { monitors: ceph.monHost, pool: 'unused' },
        secrets: { admin: { name: 'ceph-admin', namespace: '', create: false, id: 'admin' }, user: { name: 'ceph-admin', namespace: '', create: false, id: 'admin' } },
      }],
    },
  };
  await installChart(controlPlane, release);
});

after(async () => {
  await controller?.stop();
  await ignoreNotFound(storage?.deleteStorageClass({ name: extraClass }));
  if (release !== undefined) await uninstallChart(controlPlane, release).catch(() => undefined);
  await ignoreNotFound(core?.deleteNamespace({ name: release?.namespace }));
  await ignoreNotFound(core?.deleteNamespace({ name: cephCsiNamespace }));
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const entriesOf = async (): Promise<Array<{ clusterID?: string }> | undefined> => {
  const map = await ignoreNotFound(core.readNamespacedConfigMap({ namespace: cephCsiNamespace, name: mapName }));
  return map === undefined ? undefined : JSON.parse(map.data?.['config.json'] ?? '[]') as Array<{ clusterID?: string }>;
};

test('as the chart\'s ServiceAccount the controller creates ceph-csi\'s config map and then updates it', async () => {
  const invocation = await chartControllerInvocation(release);
  assert.ok(invocation.args.includes(`--ceph-csi-config=${cephCsiNamespace}/${mapName}`), invocation.args.join(' '));
  const kubeconfigPath = path.join(scratch, 'sa.kubeconfig');
  await writeServiceAccountKubeconfig(controlPlane, release.namespace, invocation.serviceAccount, kubeconfigPath);
  controller = await startController({ kubeconfigPath, provisionerName, namespace: release.namespace, argv: invocation.args, env: invocation.env });

  const first = clusterIdOf();
  await waitFor(`the map created with ${first}`, async (observe) => {
    const entries = await entriesOf();
    observe({ entries, controller: controller!.output().slice(-1500) });
    return entries?.some((e) => e.clusterID === first) === true ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });

  await storage.createStorageClass({
    body: { metadata: { name: extraClass }, provisioner: provisionerName, parameters: { monitors: ceph.monHost, radosNamespace: 'b', adminSecretName: 'x', userSecretName: 'y' } },
  });
  const second = clusterIdOf('--rados-namespace=b');
  await waitFor(`the map updated with ${second}`, async (observe) => {
    const entries = await entriesOf();
    observe(entries);
    return entries?.some((e) => e.clusterID === second) === true ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200 });
  assert.doesNotMatch(controller.output(), /forbidden/i, 'no RBAC refusal on the way');
});

test('the ServiceAccount may touch that one ConfigMap only (create aside, which cannot be limited by name)', async () => {
  const { serviceAccount } = await chartControllerInvocation(release);
  const may = (attributes: k8s.V1ResourceAttributes) => serviceAccountMay(controlPlane, release.namespace, serviceAccount, attributes);
  for (const verb of ['get', 'update', 'patch']) {
    assert.equal(await may({ verb, resource: 'configmaps', namespace: cephCsiNamespace, name: mapName }), true, verb);
    assert.equal(await may({ verb, resource: 'configmaps', namespace: cephCsiNamespace, name: 'another-map' }), false, `${verb} another map`);
  }
  assert.equal(await may({ verb: 'create', resource: 'configmaps', namespace: cephCsiNamespace }), true);
  assert.equal(await may({ verb: 'list', resource: 'configmaps', namespace: cephCsiNamespace }), false);
  assert.equal(await may({ verb: 'delete', resource: 'configmaps', namespace: cephCsiNamespace, name: mapName }), false);
  assert.equal(await may({ verb: 'get', resource: 'configmaps', namespace: release.namespace, name: mapName }), false, 'not in the release namespace');
});

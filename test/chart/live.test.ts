// The chart against the real control plane: helm install, then the controller run locally as the chart's
// ServiceAccount with the chart's own arguments provisions and deletes a claim on the chart's StorageClass (so the
// chart's RBAC is enough), `can-i` shows it is no more than needed, and helm uninstall removes what it created.
import * as k8s from '@kubernetes/client-node';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Pool } from '../../src/ceph/index.js';
import { managedSecretName } from '../../src/rbd/node-secret.js';
import { ensureCeph, openTestPool, type CephTestCluster, type OpenTestPool } from '../support/ceph.js';
import { startController, type ControllerProcess } from '../support/controller.js';
import {
  adminKubeConfig, createNamespace, ensureControlPlane, ignoreNotFound, uniqueName, waitFor, type ControlPlane, type TestNamespace,
} from '../support/kube.js';
import {
  chartControllerInvocation, installChart, serviceAccountMay, uninstallChart, writeServiceAccountKubeconfig, type Release,
} from './live.js';

let ceph: CephTestCluster;
let controlPlane: ControlPlane;
let core: k8s.CoreV1Api;
let release: Release;
let apps: TestNamespace;
let scratch: string;
let pool: Pool;
let storagePool: OpenTestPool;
let controller: ControllerProcess | undefined;
const storageClassName = uniqueName('chart-rbd');
const provisionerName = `${uniqueName('chart')}.rbd.provisioner.test`;
/** The nodes' cephx user, with a legacy Secret (`key` only): the controller keeps a node Secret for it. */
const nodeUser = uniqueName('chart-node');

before(async () => {
  [ceph, controlPlane] = await Promise.all([ensureCeph(), ensureControlPlane()]);
  const kc = adminKubeConfig(controlPlane);
  core = kc.makeApiClient(k8s.CoreV1Api);
  storagePool = await openTestPool('chart');
  pool = storagePool.pool;
  scratch = await mkdtemp(path.join(tmpdir(), 'rbd-chart-live-'));
  release = {
    name: uniqueName('rbdp'),
    namespace: uniqueName('rbd-system'),
    values: {
      provisionerName,
      replicaCount: 1,
      storageClasses: [{
        name: storageClassName,
        create: true,
        reclaimPolicy: 'Delete',
        volumeBindingMode: 'Immediate',
        parameters: { monitors: ceph.monHost, pool: pool.name, imageFeatures: 'layering' },
        secrets: {
          admin: { name: 'ceph-admin', namespace: '', create: false, id: 'admin' },
          user: { name: 'ceph-node', namespace: '', create: false, id: nodeUser },
        },
      }],
    },
  };
  // The admin Secret exists before the release, as an admin would create it out of band.
  await core.createNamespace({ body: { metadata: { name: release.namespace } } });
  await core.createNamespacedSecret({
    namespace: release.namespace,
    body: { metadata: { name: 'ceph-admin' }, type: 'kubernetes.io/rbd', stringData: { key: ceph.adminKey } },
  });
  await ceph.ceph(['auth', 'get-or-create', `client.${nodeUser}`, 'mon', 'profile rbd', 'osd', `profile rbd pool=${pool.name}`]);
  const nodeKey = (await ceph.ceph(['auth', 'get-key', `client.${nodeUser}`])).trim();
  await core.createNamespacedSecret({
    namespace: release.namespace,
    body: { metadata: { name: 'ceph-node' }, type: 'kubernetes.io/rbd', stringData: { key: nodeKey } },
  });
  await installChart(controlPlane, release);
  apps = await createNamespace(kc, 'chart-apps');
});

after(async () => {
  await controller?.stop();
  await apps?.cleanup();
  await ignoreNotFound(core?.deleteNamespace({ name: release?.namespace }));
  await storagePool?.close();
  await ceph?.ceph(['auth', 'rm', `client.${nodeUser}`]);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('the controller, run as the chart\'s ServiceAccount with the chart\'s arguments, provisions, grows and deletes', async () => {
  const invocation = await chartControllerInvocation(release);
  const kubeconfigPath = path.join(scratch, 'sa.kubeconfig');
  await writeServiceAccountKubeconfig(controlPlane, release.namespace, invocation.serviceAccount, kubeconfigPath);
  controller = await startController({
    kubeconfigPath, provisionerName, namespace: release.namespace, argv: invocation.args, env: invocation.env,
  });

  const claim = await core.createNamespacedPersistentVolumeClaim({
    namespace: apps.name,
    body: {
      metadata: { name: 'data' },
      spec: { storageClassName, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
  });
  const image = `pvc-${claim.metadata!.uid}`;
  await waitFor('claim Bound', async (observe) => {
    const c = await core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: apps.name });
    observe({ status: c.status, controller: controller!.output().slice(-2000) });
    return c.status?.phase === 'Bound' ? c : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
  assert.ok((await pool.listImages()).includes(image));
  // The user Secret is legacy and names no adminId: the PV names the node Secret the controller keeps, which the
  // chart lets it create in the release namespace.
  const nodeSecret = (await core.readPersistentVolume({ name: image })).spec?.csi?.nodeStageSecretRef;
  assert.deepEqual({ ...nodeSecret }, { namespace: release.namespace, name: managedSecretName(provisionerName, { namespace: release.namespace, name: 'ceph-node' }, nodeUser) });
  const stored = await core.readNamespacedSecret({ namespace: nodeSecret!.namespace!, name: nodeSecret!.name! });
  assert.equal(Buffer.from(stored.data?.['userID'] ?? '', 'base64').toString(), nodeUser);

  // The chart's class allows expansion by default, and its RBAC lets the resizer write the claim's status.
  await core.patchNamespacedPersistentVolumeClaim(
    { name: 'data', namespace: apps.name, body: { spec: { resources: { requests: { storage: '2Gi' } } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await waitFor('PV grown and the claim left for the node step', async (observe) => {
    const pv = await core.readPersistentVolume({ name: image });
    const c = await core.readNamespacedPersistentVolumeClaim({ name: 'data', namespace: apps.name });
    observe({ pv: pv.spec?.capacity, claim: c.status, controller: controller!.output().slice(-2000) });
    const status = (c.status?.allocatedResourceStatuses as Record<string, string> | undefined)?.['storage'];
    return pv.spec?.capacity?.['storage'] === '2Gi' && status === 'NodeResizePending' ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });

  await core.deleteNamespacedPersistentVolumeClaim({ name: 'data', namespace: apps.name });
  await waitFor('PV and image gone', async () => {
    const pv = await ignoreNotFound(core.readPersistentVolume({ name: image }));
    return pv === undefined && !(await pool.listImages()).includes(image) ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
  assert.doesNotMatch(controller.output(), /forbidden/i, 'no RBAC refusal on the way');
});

test('the chart\'s RBAC is minimal', async () => {
  const { serviceAccount } = await chartControllerInvocation(release);
  const may = (attributes: k8s.V1ResourceAttributes) => serviceAccountMay(controlPlane, release.namespace, serviceAccount, attributes);
  assert.equal(await may({ verb: 'get', resource: 'secrets', namespace: release.namespace, name: 'ceph-admin' }), true);
  assert.equal(await may({ verb: 'list', resource: 'secrets' }), false, 'no cluster-wide secret listing');
  assert.equal(await may({ verb: 'get', resource: 'secrets', namespace: release.namespace, name: 'ceph-node' }), true, 'the class\'s user Secret');
  assert.equal(await may({ verb: 'get', resource: 'secrets', namespace: release.namespace, name: 'other-secret' }), false);
  assert.equal(await may({ verb: 'update', resource: 'secrets', namespace: release.namespace, name: 'ceph-admin' }), false, 'never writes a Secret it reads');
  // The node Secret it keeps: create (which cannot be limited by name), get and update on that name only.
  const managed = managedSecretName(provisionerName, { namespace: release.namespace, name: 'ceph-node' }, nodeUser);
  assert.equal(await may({ verb: 'create', resource: 'secrets', namespace: release.namespace }), true);
  assert.equal(await may({ verb: 'update', resource: 'secrets', namespace: release.namespace, name: managed }), true);
  assert.equal(await may({ verb: 'create', resource: 'secrets', namespace: apps.name }), false, 'only in its own namespace');
  assert.equal(await may({ verb: 'get', resource: 'pods', namespace: release.namespace }), false);
  assert.equal(await may({ verb: 'create', resource: 'storageclasses', group: 'storage.k8s.io' }), false);
  assert.equal(await may({ verb: 'create', resource: 'persistentvolumes' }), true);
  assert.equal(await may({ verb: 'watch', resource: 'persistentvolumeclaims' }), true);
  assert.equal(await may({ verb: 'patch', resource: 'persistentvolumeclaims', subresource: 'status', namespace: apps.name }), true, 'the resizer');
  assert.equal(await may({ verb: 'patch', resource: 'persistentvolumeclaims', namespace: apps.name }), false, 'never a claim\'s spec');
});

test('helm uninstall removes what the chart created', async () => {
  await controller?.stop();
  const rbac = adminKubeConfig(controlPlane).makeApiClient(k8s.RbacAuthorizationV1Api);
  const storage = adminKubeConfig(controlPlane).makeApiClient(k8s.StorageV1Api);
  const appsApi = adminKubeConfig(controlPlane).makeApiClient(k8s.AppsV1Api);
  const labelSelector = `app.kubernetes.io/instance=${release.name}`;
  assert.ok((await rbac.listClusterRole({ labelSelector })).items.length > 0, 'the release made ClusterRoles');
  await uninstallChart(controlPlane, release);
  assert.deepEqual((await rbac.listClusterRole({ labelSelector })).items.map((r) => r.metadata?.name), []);
  assert.deepEqual((await rbac.listClusterRoleBinding({ labelSelector })).items.map((r) => r.metadata?.name), []);
  assert.deepEqual((await appsApi.listNamespacedDeployment({ namespace: release.namespace, labelSelector })).items.map((d) => d.metadata?.name), []);
  assert.deepEqual((await core.listNamespacedServiceAccount({ namespace: release.namespace, labelSelector })).items.map((d) => d.metadata?.name), []);
  assert.equal(await ignoreNotFound(storage.readStorageClass({ name: storageClassName })), undefined);
  // The Secret was not the chart's: it stays.
  assert.ok(await ignoreNotFound(core.readNamespacedSecret({ name: 'ceph-admin', namespace: release.namespace })));
});

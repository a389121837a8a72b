// deploy/ is what the chart renders today (through scripts/render-deploy.sh itself, so the normalisation
// cannot differ), and deploy/examples/ fits it: the example class's provisioner and admin Secret are the
// ones deploy/rbd-provisioner.yaml serves and grants.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { V1Deployment, V1PersistentVolumeClaim, V1Role, V1Secret, V1StorageClass } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { managedSecretName } from '../../src/rbd/node-secret.js';
import { parseConfig } from '../../src/config.js';
import { chartDir, helmBinary, type Manifest, ofKind, onlyOfKind, parseManifests, repoRoot, runCommand } from './helm.js';

const deployDir = path.join(repoRoot, 'deploy');
// The retired external-storage rbd-provisioner's StorageClass keys: the example must need nothing else.
const LEGACY_KEYS = [
  'monitors',
  'adminId',
  'adminSecretName',
  'adminSecretNamespace',
  'pool',
  'dataPool',
  'userId',
  'userSecretName',
  'userSecretNamespace',
  'fsType',
  'imageFormat',
  'imageFeatures',
];

async function manifestsIn(file: string): Promise<Manifest[]> {
  return parseManifests(await readFile(path.join(deployDir, file), 'utf8'));
}

describe('deploy/rbd-provisioner.yaml', () => {
  test('is byte for byte what scripts/render-deploy.sh renders from the chart today', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'rbd-deploy-'));
    try {
      const rendered = path.join(scratch, 'rbd-provisioner.yaml');
      const run = await runCommand('bash', [path.join(repoRoot, 'scripts', 'render-deploy.sh'), rendered], {
        env: { HELM: await helmBinary() },
      });
      assert.equal(run.status, 0, run.stderr);
      const [expected, committed] = await Promise.all([readFile(rendered, 'utf8'), readFile(path.join(deployDir, 'rbd-provisioner.yaml'), 'utf8')]);
      assert.ok(expected.length > 1000, 'the script rendered the chart');
      assert.equal(committed, expected, 'deploy/ is stale: run scripts/render-deploy.sh');
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('holds the Namespace first, then the chart\'s default objects, without test hooks', async () => {
    const manifests = await manifestsIn('rbd-provisioner.yaml');
    assert.deepEqual(manifests[0], {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'rbd-provisioner', labels: { 'app.kubernetes.io/name': 'rbd-provisioner', 'pod-security.kubernetes.io/enforce': 'restricted' } },
    });
    assert.deepEqual(
      manifests.map((m) => m.kind).sort(),
      ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Role', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'RoleBinding', 'Service', 'ServiceAccount'],
    );
    for (const m of manifests.slice(1)) {
      if (!m.kind.startsWith('Cluster')) assert.equal(m.metadata.namespace, 'rbd-provisioner', `${m.kind}/${m.metadata.name}`);
      assert.equal(m.metadata.annotations?.['helm.sh/hook'], undefined);
      assert.equal(m.metadata.labels?.['app.kubernetes.io/managed-by'], 'kubectl');
    }
  });
});

describe('deploy/examples', () => {
  test('the StorageClass uses only the retired provisioner\'s keys and names the provisioner deploy/ runs', async () => {
    const storageClass = onlyOfKind<V1StorageClass>(await manifestsIn('examples/storageclass.yaml'), 'StorageClass');
    const deployment = onlyOfKind<V1Deployment>(await manifestsIn('rbd-provisioner.yaml'), 'Deployment');
    const args = deployment.spec?.template.spec?.containers[0]?.args ?? [];
    const config = parseConfig(args, { POD_NAMESPACE: 'rbd-provisioner', POD_NAME: 'p' });
    assert.equal(storageClass.provisioner, config.provisionerName);
    assert.deepEqual(Object.keys(storageClass.parameters ?? {}).filter((key) => !LEGACY_KEYS.includes(key)), []);
    assert.equal(storageClass.parameters?.['imageFormat'], '2');
    // The chart's helm test uses the first class of the default values: this one.
    const values = load(await readFile(path.join(chartDir, 'values.yaml'), 'utf8')) as { storageClasses: { name: string }[] };
    assert.equal(values.storageClasses[0]?.name, storageClass.metadata?.name);
  });

  test('the Secrets the class names exist in the examples and are the ones deploy/ lets the controller read (and keep a node copy of)', async () => {
    const params = onlyOfKind<V1StorageClass>(await manifestsIn('examples/storageclass.yaml'), 'StorageClass').parameters ?? {};
    const secrets = ofKind<V1Secret>(await manifestsIn('examples/secret.yaml'), 'Secret');
    for (const role of ['admin', 'user']) {
      const name = params[`${role}SecretName`];
      const namespace = params[`${role}SecretNamespace`];
      const secret = secrets.find((s) => s.metadata?.name === name && s.metadata?.namespace === namespace);
      assert.ok(secret !== undefined, `examples/secret.yaml defines ${String(namespace)}/${String(name)}`);
      assert.equal(secret.type, 'kubernetes.io/rbd');
      assert.deepEqual(Object.keys(secret.stringData ?? secret.data ?? {}), ['key']);
    }
    const grants = ofKind<V1Role>(await manifestsIn('rbd-provisioner.yaml'), 'Role').flatMap((role) =>
      (role.rules ?? [])
        .filter((rule) => rule.resources?.includes('secrets'))
        .map((rule) => ({ namespace: role.metadata?.namespace, names: rule.resourceNames, verbs: rule.verbs })),
    );
    assert.equal(params['adminSecretNamespace'], params['userSecretNamespace']);
    const config = parseConfig([], { POD_NAMESPACE: 'rbd-provisioner', POD_NAME: 'p' });
    // The example's user Secret holds only `key` for userId kube: the controller keeps a node Secret in ceph-csi's
    // format next to itself (src/rbd/node-secret.ts), and deploy/ lets it create it and update that one by name.
    const managed = managedSecretName(config.provisionerName, { namespace: params['userSecretNamespace']!, name: params['userSecretName']! }, params['userId']!);
    assert.deepEqual(grants, [
      { namespace: params['adminSecretNamespace'], names: [params['adminSecretName'], params['userSecretName']].sort(), verbs: ['get'] },
      { namespace: config.leaderElectionNamespace, names: undefined, verbs: ['create'] },
      { namespace: config.leaderElectionNamespace, names: [managed], verbs: ['get', 'update'] },
    ]);
  });

  test('the claim asks the example class for a volume', async () => {
    const claim = onlyOfKind<V1PersistentVolumeClaim>(await manifestsIn('examples/pvc.yaml'), 'PersistentVolumeClaim');
    const storageClass = onlyOfKind<V1StorageClass>(await manifestsIn('examples/storageclass.yaml'), 'StorageClass');
    assert.equal(claim.spec?.storageClassName, storageClass.metadata?.name);
    assert.deepEqual(claim.spec?.accessModes, ['ReadWriteOnce']);
    assert.equal(claim.spec?.resources?.requests?.['storage'], '1Gi');
  });
});

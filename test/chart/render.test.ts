// What the chart renders: the controller started per contract.md (checked with the controller's own
// flag parser), a locked-down Pod, minimal RBAC, StorageClasses and Secrets from values, and the test hook.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  V1CSIDriver,
  V1ClusterRole,
  V1Container,
  V1Deployment,
  V1PodDisruptionBudget,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1Service,
  V1StorageClass,
} from '@kubernetes/client-node';
import { parseConfig, parseHttpAddress } from '../../src/config.js';
import { managedSecretName } from '../../src/rbd/node-secret.js';
import { type Manifest, ofKind, onlyOfKind, render } from './helm.js';

const RELEASE_NAMESPACE = 'ns-rel';
// The `helm test` hook has RBAC of its own (test/chart/hook.test.ts); here only the controller's counts.
const CONTROLLER_ONLY = { tests: false };
// Keys as `ceph auth get-key` prints them (base64 of 16 random bytes plus a header); made up.
const ADMIN_KEY = 'AQCdummyadminkeydummyadminkeydummyad==';
const USER_KEY = 'AQCdummyuserkeydummyuserkeydummyuse==';

/** Two created classes with Secrets in two namespaces, plus one class managed elsewhere. */
const CLASSES_VALUES = {
  storageClasses: [
    {
      name: 'fast',
      create: true,
      isDefault: true,
      reclaimPolicy: 'Retain',
      volumeBindingMode: 'WaitForFirstConsumer',
      allowVolumeExpansion: true,
      mountOptions: ['discard'],
      parameters: { monitors: '192.0.2.1:6789', pool: 'fast', imageFeatures: 'layering', fsType: '', dataPool: null },
      secrets: {
        admin: { name: 'ceph-admin', namespace: 'ceph', create: true, id: 'provisioner', key: ADMIN_KEY },
        user: { name: 'ceph-user', create: true, id: 'kube', key: USER_KEY },
      },
    },
    {
      name: 'slow',
      create: true,
      parameters: { pool: 'slow', AdminSecretName: 'explicit-admin' },
      secrets: { admin: { name: 'ceph-admin', namespace: 'ceph', create: true, key: ADMIN_KEY } },
    },
    { name: 'elsewhere', create: false, secrets: { admin: { name: 'other-admin' }, user: { name: 'never-read' } } },
  ],
};

function controller(manifests: readonly Manifest[]): V1Container {
  const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
  const containers = deployment.spec?.template.spec?.containers ?? [];
  assert.equal(containers.length, 1);
  return containers[0] as V1Container;
}

/** The controller's configuration as its own parser reads the rendered args and the downward-API env. */
function parsedConfig(manifests: readonly Manifest[]): ReturnType<typeof parseConfig> {
  const container = controller(manifests);
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const field = variable.valueFrom?.fieldRef?.fieldPath;
    if (field === 'metadata.namespace') env[variable.name] = RELEASE_NAMESPACE;
    else if (field === 'metadata.name') env[variable.name] = 'rel-rbd-provisioner-7d9f-abcde';
    else if (variable.value !== undefined) env[variable.name] = variable.value;
  }
  return parseConfig(container.args ?? [], env, { hostname: () => 'unused', randomSuffix: () => 'unused' });
}

function flagNames(container: V1Container): string[] {
  return (container.args ?? []).map((arg) => {
    const match = /^--([a-z-]+)=/.exec(arg);
    assert.ok(match !== null, `every argument is --flag=value, got ${arg}`);
    return match[1] as string;
  });
}

function rulesGrant(rules: readonly V1PolicyRule[] | undefined, resource: string): V1PolicyRule[] {
  return (rules ?? []).filter((rule) => (rule.resources ?? []).some((r) => r === resource || r === '*'));
}

describe('the controller container', () => {
  test('default args parse, with the controller\'s own parser, into the contract\'s defaults', async () => {
    const manifests = await render({});
    const container = controller(manifests);
    assert.deepEqual(flagNames(container), [
      'provisioner-name',
      'workers',
      'ceph-max-inflight',
      'ceph-mount-timeout',
      'ceph-mon-op-timeout',
      'ceph-osd-op-timeout',
      'kube-api-qps',
      'kube-api-burst',
      'attacher',
      'resizer',
      'snapshotter',
      'leader-elect',
      'leader-election-lease-name',
      'leader-election-lease-duration',
      'leader-election-renew-deadline',
      'leader-election-retry-period',
      'http-address',
      'log-level',
      'log-format',
    ]);
    const config = parsedConfig(manifests);
    assert.deepEqual(
      { ...config, kubeconfig: undefined },
      {
        provisionerName: 'rbd.provisioner.ceph.io',
        kubeconfig: undefined,
        workers: 16,
        cephMaxInflight: 16,
        cephMountTimeoutMs: 10_000,
        cephMonOpTimeoutMs: 30_000,
        cephOsdOpTimeoutMs: 30_000,
        kubeApiQps: 50,
        kubeApiBurst: 100,
        resyncPeriodMs: 600_000,
        retryIntervalStartMs: 1_000,
        retryIntervalMaxMs: 300_000,
        attacher: true,
        resizer: true,
        snapshotter: true,
        leaderElect: true,
        leaderElectionNamespace: RELEASE_NAMESPACE,
        leaderElectionLeaseName: 'rbd-provisioner-ceph-io',
        leaderElectionLeaseDurationMs: 15_000,
        leaderElectionRenewDeadlineMs: 10_000,
        leaderElectionRetryPeriodMs: 2_000,
        identity: 'rel-rbd-provisioner-7d9f-abcde',
        httpAddress: ':8080',
        cephCsiConfig: undefined,
        takeOverProvisioners: [],
        logLevel: 'info',
        logFormat: 'json',
        help: false,
        version: false,
      },
    );
    assert.deepEqual(
      (container.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
      [
        ['POD_NAMESPACE', 'metadata.namespace'],
        ['POD_NAME', 'metadata.name'],
      ],
    );
  });

  test('every setting reaches the controller', async () => {
    const manifests = await render({
      provisionerName: 'Example.COM/rbd',
      workers: 4,
      ceph: { mountTimeout: '3s', monOpTimeout: '1m', osdOpTimeout: '1m30s', maxInflight: 64 },
      kubeApi: { qps: 7.5, burst: 9 },
      leaderElection: { enabled: true, leaseName: '', leaseDuration: '30s', renewDeadline: '20s', retryPeriod: '5s' },
      metrics: { enabled: true, port: 9443 },
      log: { level: 'debug', format: 'text' },
      extraArgs: ['--resync-period=5m'],
      extraEnv: [{ name: 'UV_THREADPOOL_SIZE', value: '32' }],
    });
    const config = parsedConfig(manifests);
    assert.equal(config.provisionerName, 'Example.COM/rbd');
    assert.equal(config.workers, 4);
    assert.deepEqual([config.cephMountTimeoutMs, config.cephMonOpTimeoutMs, config.cephOsdOpTimeoutMs, config.cephMaxInflight], [3000, 60_000, 90_000, 64]);
    assert.deepEqual([config.kubeApiQps, config.kubeApiBurst], [7.5, 9]);
    assert.deepEqual(
      [config.leaderElectionLeaseDurationMs, config.leaderElectionRenewDeadlineMs, config.leaderElectionRetryPeriodMs],
      [30_000, 20_000, 5_000],
    );
    assert.equal(config.resyncPeriodMs, 300_000);
    assert.deepEqual([config.logLevel, config.logFormat], ['debug', 'text']);
    const container = controller(manifests);
    assert.equal(container.args?.at(-1), '--resync-period=5m', 'extraArgs come last');
    assert.deepEqual(container.env?.at(-1), { name: 'UV_THREADPOOL_SIZE', value: '32' });

    // The Lease the controller will use is the one the Role names.
    const leaseRole = ofKind<V1Role>(manifests, 'Role').find((role) => rulesGrant(role.rules, 'leases').length > 0);
    assert.ok(leaseRole !== undefined, 'a Role for the Lease');
    assert.equal(leaseRole.metadata?.namespace, config.leaderElectionNamespace);
    const named = leaseRole.rules?.find((rule) => rule.resourceNames !== undefined);
    assert.deepEqual(named?.resourceNames, [config.leaderElectionLeaseName]);
    assert.equal(config.leaderElectionLeaseName, 'example-com-rbd');

    // Probes and the metrics Service use the port the controller listens on.
    const port = parseHttpAddress(config.httpAddress)?.port;
    assert.equal(port, 9443);
    const http = container.ports?.find((p) => p.name === 'http');
    assert.equal(http?.containerPort, port);
    assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 'http' });
    const service = onlyOfKind<V1Service>(manifests, 'Service');
    assert.deepEqual(service.spec?.ports?.map((p) => [p.port, p.targetPort]), [[9443, 'http']]);
  });

  test('leader election off with a single replica: --leader-elect=false and no Lease access', async () => {
    const manifests = await render({ replicaCount: 1, leaderElection: { enabled: false, leaseDuration: '15s', renewDeadline: '10s', retryPeriod: '2s' } });
    assert.equal(parsedConfig(manifests).leaderElect, false);
    assert.ok(!flagNames(controller(manifests)).some((flag) => flag.startsWith('leader-election-')));
    assert.deepEqual(
      ofKind<V1Role>(manifests, 'Role').filter((role) => rulesGrant(role.rules, 'leases').length > 0),
      [],
    );
  });

  test('the attacher: on by default with access to VolumeAttachments and their status; off, neither', async () => {
    const on = await render({});
    assert.equal(parsedConfig(on).attacher, true);
    const role = onlyOfKind<V1ClusterRole>(on, 'ClusterRole');
    assert.deepEqual(rulesGrant(role.rules, 'volumeattachments').map((r) => [r.apiGroups, r.verbs]), [[['storage.k8s.io'], ['get', 'list', 'watch', 'patch']]]);
    assert.deepEqual(rulesGrant(role.rules, 'volumeattachments/status').map((r) => [r.apiGroups, r.verbs]), [[['storage.k8s.io'], ['patch']]]);

    const off = await render({ attacher: { enabled: false } });
    assert.equal(parsedConfig(off).attacher, false);
    const offRole = onlyOfKind<V1ClusterRole>(off, 'ClusterRole');
    assert.deepEqual(rulesGrant(offRole.rules, 'volumeattachments'), []);
    assert.deepEqual(rulesGrant(offRole.rules, 'volumeattachments/status'), []);
  });

  test('the resizer: on by default with patch on claims\' status (PVs are patched anyway); off, no claim status access', async () => {
    const on = await render({});
    assert.equal(parsedConfig(on).resizer, true);
    const role = onlyOfKind<V1ClusterRole>(on, 'ClusterRole');
    assert.deepEqual(rulesGrant(role.rules, 'persistentvolumeclaims/status').map((r) => [r.apiGroups, r.verbs]), [[[''], ['patch']]]);
    assert.ok(rulesGrant(role.rules, 'persistentvolumes').some((r) => r.verbs.includes('patch')));

    const off = await render({ resizer: { enabled: false } });
    assert.equal(parsedConfig(off).resizer, false);
    assert.deepEqual(rulesGrant(onlyOfKind<V1ClusterRole>(off, 'ClusterRole').rules, 'persistentvolumeclaims/status'), []);
  });

  test('takeOver: off by default; on, the flag with every name and read access to the retired provisioner\'s admin Secrets by name', async () => {
    assert.deepEqual(parsedConfig(await render({})).takeOverProvisioners, []);
    const on = await render({ takeOver: { provisioners: ['ceph.com/rbd', 'old.example.com/rbd'], adminSecrets: [{ name: 'ceph-admin-old', namespace: 'kube-system' }] } });
    assert.deepEqual(parsedConfig(on).takeOverProvisioners, ['ceph.com/rbd', 'old.example.com/rbd']);
    const readers = ofKind<V1Role>(on, 'Role').filter((role) => role.metadata?.namespace === 'kube-system');
    assert.deepEqual(readers.flatMap((role) => rulesGrant(role.rules, 'secrets')).map((r) => [r.resourceNames, r.verbs]), [[['ceph-admin-old'], ['get']]]);
  });

  test('allowVolumeExpansion: true unless a class sets it; an explicit false stays false', async () => {
    const manifests = await render({ storageClasses: [
      { name: 'unset', create: true, parameters: { pool: 'a' }, secrets: { admin: { name: 'ceph-admin' } } },
      { name: 'off', create: true, allowVolumeExpansion: false, parameters: { pool: 'b' }, secrets: { admin: { name: 'ceph-admin' } } },
    ] });
    const classes = ofKind<V1StorageClass>(manifests, 'StorageClass');
    assert.deepEqual(classes.map((c) => [c.metadata?.name, c.allowVolumeExpansion]), [['unset', true], ['off', false]]);
  });

  test('the Pod runs non-root on a read-only root filesystem, without capabilities, under RuntimeDefault seccomp', async () => {
    const manifests = await render({});
    const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
    const pod = deployment.spec?.template.spec;
    assert.equal(deployment.spec?.replicas, 2);
    assert.deepEqual(pod?.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const container = controller(manifests);
    assert.deepEqual(container.securityContext, {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.equal(pod?.hostNetwork, undefined);
    assert.deepEqual(container.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
    assert.deepEqual(pod?.volumes, [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }]);
    assert.equal(pod?.serviceAccountName, 'rel-rbd-provisioner');
  });

  test('no cephx key reaches the Deployment (args, env, annotations)', async () => {
    const manifests = await render(CLASSES_VALUES);
    const deployment = JSON.stringify(onlyOfKind(manifests, 'Deployment'));
    for (const key of [ADMIN_KEY, USER_KEY]) {
      assert.ok(!deployment.includes(key) && !deployment.includes(Buffer.from(key).toString('base64')));
    }
  });
});

describe('RBAC', () => {
  test('the ClusterRole grants exactly what the controller uses, and never Secrets or Pods', async () => {
    const manifests = await render(CLASSES_VALUES, CONTROLLER_ONLY);
    const clusterRole = onlyOfKind<V1ClusterRole>(manifests, 'ClusterRole');
    assert.deepEqual(clusterRole.rules, [
      { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'watch', 'create', 'delete', 'patch', 'update'] },
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: [''], resources: ['persistentvolumeclaims/status'], verbs: ['patch'] },
      { apiGroups: ['storage.k8s.io'], resources: ['volumeattachments'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: ['storage.k8s.io'], resources: ['volumeattachments/status'], verbs: ['patch'] },
      { apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshotcontents'], verbs: ['get', 'list', 'watch', 'patch'] },
      { apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshotcontents/status'], verbs: ['patch'] },
      { apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshots', 'volumesnapshotclasses'], verbs: ['get'] },
    ]);
    for (const resource of ['secrets', 'pods']) assert.deepEqual(rulesGrant(clusterRole.rules, resource), [], `no cluster-wide ${resource}`);
    const binding = onlyOfKind<V1RoleBinding>(manifests, 'ClusterRoleBinding');
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole.metadata?.name });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'rel-rbd-provisioner', namespace: RELEASE_NAMESPACE }]);
  });

  test('Secrets are readable only by name, in their own namespaces: the admin ones and the csi classes\' user ones', async () => {
    const manifests = await render(CLASSES_VALUES, CONTROLLER_ONLY);
    const roles = ofKind<V1Role>(manifests, 'Role');
    const secretRules = roles.flatMap((role) =>
      rulesGrant(role.rules, 'secrets').map((rule) => ({ namespace: role.metadata?.namespace, verbs: rule.verbs, names: rule.resourceNames })),
    );
    const managed = (namespace: string, name: string, userId: string) => managedSecretName('rbd.provisioner.ceph.io', { namespace, name }, userId);
    assert.deepEqual(
      secretRules.sort((a, b) => String(a.namespace).localeCompare(String(b.namespace)) || a.verbs!.join().localeCompare(b.verbs!.join())),
      [
        // "slow" names its admin Secret explicitly (any case): that one is granted, not the secrets block's.
        { namespace: 'ceph', verbs: ['get'], names: ['ceph-admin', 'explicit-admin'] },
        // The node Secrets the controller may keep: create cannot be limited by name; get and update are, to the
        // names the controller derives (src/rbd/node-secret.ts), one per user Secret and userId.
        { namespace: RELEASE_NAMESPACE, verbs: ['create'], names: undefined },
        { namespace: RELEASE_NAMESPACE, verbs: ['get'], names: ['ceph-user', 'never-read', 'other-admin'] },
        { namespace: RELEASE_NAMESPACE, verbs: ['get', 'update'], names: [managed(RELEASE_NAMESPACE, 'ceph-user', 'kube'), managed(RELEASE_NAMESPACE, 'never-read', 'admin')].sort() },
      ],
    );
    for (const role of roles) {
      for (const rule of role.rules ?? []) {
        assert.ok(!(rule.resources ?? []).includes('pods') && !(rule.verbs ?? []).includes('*'), `Role ${role.metadata?.name}: ${JSON.stringify(rule)}`);
      }
      const binding = ofKind<V1RoleBinding>(manifests, 'RoleBinding').find(
        (b) => b.metadata?.namespace === role.metadata?.namespace && b.roleRef.name === role.metadata?.name,
      );
      assert.deepEqual(binding?.subjects, [{ kind: 'ServiceAccount', name: 'rel-rbd-provisioner', namespace: RELEASE_NAMESPACE }], `binding of Role ${role.metadata?.name}`);
    }
  });

  test('user Secrets: none for volumeSource rbd (in-tree nodes read them, not the controller); explicit keys in any case', async () => {
    const manifests = await render({ storageClasses: [
      { name: 'intree', create: false, parameters: { VolumeSource: 'RBD' }, secrets: { admin: { name: 'a' }, user: { name: 'u', id: 'kube' } } },
      { name: 'explicit', create: false, parameters: { UserSecretName: 'x', userSecretNamespace: 'apps', USERID: 'bob' }, secrets: { admin: { name: 'a' } } },
    ] }, CONTROLLER_ONLY);
    const rules = ofKind<V1Role>(manifests, 'Role').flatMap((role) =>
      rulesGrant(role.rules, 'secrets').map((rule) => [role.metadata?.namespace, rule.verbs?.join(), rule.resourceNames]));
    const order = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
    assert.deepEqual(rules.sort(order), [
      ['apps', 'get', ['x']],
      [RELEASE_NAMESPACE, 'create', undefined],
      [RELEASE_NAMESPACE, 'get', ['a']],
      [RELEASE_NAMESPACE, 'get,update', [managedSecretName('rbd.provisioner.ceph.io', { namespace: 'apps', name: 'x' }, 'bob')]],
    ].sort(order));
  });

  test('the Lease: create (which cannot be limited by name), get and update on the one Lease', async () => {
    const manifests = await render({}, CONTROLLER_ONLY);
    const role = ofKind<V1Role>(manifests, 'Role').find((r) => rulesGrant(r.rules, 'leases').length > 0);
    assert.deepEqual(role?.rules, [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['rbd-provisioner-ceph-io'], verbs: ['get', 'update'] },
    ]);
    assert.equal(role?.metadata?.namespace, RELEASE_NAMESPACE);
  });

  test('rbac.clusterWideSecrets grants get on all Secrets instead of per-name Roles', async () => {
    const manifests = await render({ ...CLASSES_VALUES, rbac: { create: true, clusterWideSecrets: true } }, CONTROLLER_ONLY);
    const clusterRole = onlyOfKind<V1ClusterRole>(manifests, 'ClusterRole');
    assert.deepEqual(rulesGrant(clusterRole.rules, 'secrets'), [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
    // Only the Role for the node Secrets the controller keeps remains.
    assert.deepEqual(ofKind<V1Role>(manifests, 'Role').filter((role) => rulesGrant(role.rules, 'secrets').length > 0).map((role) => role.metadata?.name), ['rel-rbd-provisioner-node-secrets']);
  });

  test('rbac.create=false and serviceAccount.create=false render no RBAC and no ServiceAccount', async () => {
    const manifests = await render({ rbac: { create: false, clusterWideSecrets: false }, serviceAccount: { create: false, name: 'mine' } }, CONTROLLER_ONLY);
    for (const kind of ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount']) assert.deepEqual(ofKind(manifests, kind), [], kind);
    assert.equal(onlyOfKind<V1Deployment>(manifests, 'Deployment').spec?.template.spec?.serviceAccountName, 'mine');
  });
});

describe('StorageClasses and Secrets', () => {
  test('by default the chart creates neither, and still grants the default class\'s Secrets', async () => {
    const manifests = await render({});
    assert.deepEqual(ofKind(manifests, 'StorageClass'), []);
    assert.deepEqual(ofKind(manifests, 'Secret'), []);
    const secretRoles = ofKind<V1Role>(manifests, 'Role').filter((role) => rulesGrant(role.rules, 'secrets').length > 0);
    assert.deepEqual(secretRoles.map((role) => [role.metadata?.namespace, role.rules?.map((rule) => rule.resourceNames)]), [
      [RELEASE_NAMESPACE, [['ceph-admin', 'ceph-user']]],
      [RELEASE_NAMESPACE, [undefined, [managedSecretName('rbd.provisioner.ceph.io', { namespace: RELEASE_NAMESPACE, name: 'ceph-user' }, 'kube')]]],
    ]);
  });

  test('classes carry the provisioner name, their policies, and only the parameters that are set', async () => {
    const manifests = await render({ ...CLASSES_VALUES, provisionerName: 'rbd.example.org' });
    const classes = ofKind<V1StorageClass>(manifests, 'StorageClass');
    assert.deepEqual(classes.map((c) => c.metadata?.name), ['fast', 'slow'], 'create: false is not rendered');
    const [fast, slow] = classes as [V1StorageClass, V1StorageClass];
    assert.equal(fast.provisioner, 'rbd.example.org');
    assert.equal(fast.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
    assert.deepEqual(
      [fast.reclaimPolicy, fast.volumeBindingMode, fast.allowVolumeExpansion, fast.mountOptions],
      ['Retain', 'WaitForFirstConsumer', true, ['discard']],
    );
    assert.deepEqual(fast.parameters, {
      monitors: '192.0.2.1:6789',
      pool: 'fast',
      imageFeatures: 'layering',
      adminId: 'provisioner',
      adminSecretName: 'ceph-admin',
      adminSecretNamespace: 'ceph',
      userId: 'kube',
      userSecretName: 'ceph-user',
      userSecretNamespace: RELEASE_NAMESPACE,
    });
    assert.equal(slow.metadata?.annotations, undefined);
    assert.deepEqual(
      [slow.reclaimPolicy, slow.volumeBindingMode, slow.allowVolumeExpansion, slow.mountOptions],
      ['Delete', 'Immediate', true, undefined],
    );
    // Only what values set: no user keys without a user Secret; the explicit (differently cased) key wins.
    assert.deepEqual(slow.parameters, { pool: 'slow', AdminSecretName: 'explicit-admin', adminSecretNamespace: 'ceph' });
  });

  test('Secrets are created only with create and a key: type kubernetes.io/rbd, data key "key", once per name', async () => {
    const manifests = await render(CLASSES_VALUES);
    const secrets = ofKind<V1Secret>(manifests, 'Secret');
    assert.deepEqual(
      secrets.map((s) => [s.metadata?.namespace, s.metadata?.name, s.type, s.data]),
      [
        ['ceph', 'ceph-admin', 'kubernetes.io/rbd', { key: Buffer.from(ADMIN_KEY).toString('base64') }],
        [RELEASE_NAMESPACE, 'ceph-user', 'kubernetes.io/rbd', { key: Buffer.from(USER_KEY).toString('base64') }],
      ],
    );
    const elsewhere = manifests.filter((m) => m.kind !== 'Secret').map((m) => JSON.stringify(m));
    for (const key of [ADMIN_KEY, USER_KEY, Buffer.from(ADMIN_KEY).toString('base64')]) {
      assert.ok(!elsewhere.some((text) => text.includes(key)), 'keys appear in Secrets only');
    }
  });

  test('metrics: the Service follows metrics.enabled, the ServiceMonitor also needs serviceMonitor.enabled', async () => {
    assert.deepEqual(ofKind(await render({}), 'ServiceMonitor'), []);
    const off = await render({ metrics: { enabled: false, port: 8080, serviceMonitor: { enabled: true } } });
    assert.deepEqual([...ofKind(off, 'Service'), ...ofKind(off, 'ServiceMonitor')], []);
    const on = await render({ metrics: { enabled: true, port: 8080, serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } } } });
    const monitor = onlyOfKind<Manifest & { spec: { endpoints: unknown[] } }>(on, 'ServiceMonitor');
    assert.equal(monitor.metadata.labels?.['release'], 'prom');
    assert.deepEqual(monitor.spec.endpoints, [{ port: 'http-metrics', path: '/metrics', interval: '15s' }]);
    assert.ok(onlyOfKind<V1Service>(on, 'Service').spec?.ports?.some((p) => p.name === 'http-metrics'));
  });
});

// ---- ceph-csi's node plugin: its config map (cephCsiConfig) and its CSIDriver (csiDriver) ----
describe('ceph-csi\'s config map and CSIDriver', () => {
  const csiConfigRoles = (manifests: readonly Manifest[]): V1Role[] =>
    ofKind<V1Role>(manifests, 'Role').filter((role) => rulesGrant(role.rules, 'configmaps').length > 0);

  test('off by default: no flag, no access to any ConfigMap, no CSIDriver', async () => {
    const manifests = await render({}, CONTROLLER_ONLY);
    assert.equal(parsedConfig(manifests).cephCsiConfig, undefined);
    assert.deepEqual(csiConfigRoles(manifests), []);
    assert.deepEqual(rulesGrant(onlyOfKind<V1ClusterRole>(manifests, 'ClusterRole').rules, 'configmaps'), []);
    assert.deepEqual(ofKind(manifests, 'CSIDriver'), []);
  });

  test('on: the flag names the map, and a Role in its namespace grants get/update/patch on it by name, plus create', async () => {
    for (const [namespace, expected] of [['', RELEASE_NAMESPACE], ['ceph-csi-rbd', 'ceph-csi-rbd']] as const) {
      const manifests = await render({ cephCsiConfig: { enabled: true, namespace, name: 'ceph-csi-config' } }, CONTROLLER_ONLY);
      assert.deepEqual(parsedConfig(manifests).cephCsiConfig, { namespace: expected, name: 'ceph-csi-config' });
      const [role, ...others] = csiConfigRoles(manifests);
      assert.deepEqual(others, []);
      assert.equal(role?.metadata?.namespace, expected);
      assert.deepEqual(role?.rules, [
        { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
        { apiGroups: [''], resources: ['configmaps'], resourceNames: ['ceph-csi-config'], verbs: ['get', 'update', 'patch'] },
      ]);
      const binding = ofKind<V1RoleBinding>(manifests, 'RoleBinding').find((b) => b.roleRef.name === role?.metadata?.name);
      assert.equal(binding?.metadata?.namespace, expected);
      assert.deepEqual(binding?.subjects, [{ kind: 'ServiceAccount', name: 'rel-rbd-provisioner', namespace: RELEASE_NAMESPACE }]);
    }
  });

  test('csiDriver.create: the CSIDriver exactly as ceph-csi ships it', async () => {
    const manifests = await render({ csiDriver: { create: true, name: 'rbd.csi.ceph.com' } }, CONTROLLER_ONLY);
    const driver = onlyOfKind<V1CSIDriver>(manifests, 'CSIDriver');
    assert.equal(driver.apiVersion, 'storage.k8s.io/v1');
    assert.equal(driver.metadata?.name, 'rbd.csi.ceph.com');
    assert.deepEqual(driver.spec, { attachRequired: true, podInfoOnMount: true, fsGroupPolicy: 'File', seLinuxMount: true });
  });
});

// ---- production settings: availability, scheduling, labels and annotations, extra volumes ----
describe('production settings', () => {
  type PodSpec = NonNullable<NonNullable<V1Deployment['spec']>['template']['spec']>;
  const podSpec = (manifests: readonly Manifest[]): PodSpec => onlyOfKind<V1Deployment>(manifests, 'Deployment').spec?.template.spec as PodSpec;
  const SELECTOR = { 'app.kubernetes.io/name': 'rbd-provisioner', 'app.kubernetes.io/instance': 'rel' };
  const HOSTNAME_TERM = { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SELECTOR } };

  test('defaults: system-cluster-critical, a preferred anti-affinity by hostname and a PodDisruptionBudget of one', async () => {
    const manifests = await render({});
    const spec = podSpec(manifests);
    assert.equal(spec.priorityClassName, 'system-cluster-critical');
    assert.deepEqual(spec.affinity, { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: HOSTNAME_TERM }] } });
    assert.equal(spec.hostNetwork, undefined);
    assert.equal(spec.dnsPolicy, undefined);
    assert.equal(spec.topologySpreadConstraints, undefined);
    const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
    assert.equal(deployment.spec?.strategy, undefined, 'Kubernetes\' default strategy');
    assert.equal(deployment.metadata?.annotations, undefined);
    const pdb = onlyOfKind<V1PodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    assert.equal(pdb.apiVersion, 'policy/v1');
    assert.deepEqual(pdb.spec, { maxUnavailable: 1, selector: { matchLabels: SELECTOR } });
    assert.deepEqual(pdb.spec?.selector?.matchLabels, deployment.spec?.selector.matchLabels, 'the PDB covers exactly the Deployment\'s Pods');
  });

  test('one replica: no PodDisruptionBudget (it would block every drain) and no default anti-affinity', async () => {
    const manifests = await render({ replicaCount: 1 });
    assert.deepEqual(ofKind(manifests, 'PodDisruptionBudget'), []);
    assert.equal(podSpec(manifests).affinity, undefined);
  });

  test('podDisruptionBudget: minAvailable or maxUnavailable as given, or none when disabled', async () => {
    const pdbSpec = async (values: object) => onlyOfKind<V1PodDisruptionBudget>(await render({ replicaCount: 3, ...values }), 'PodDisruptionBudget').spec;
    assert.deepEqual(await pdbSpec({ podDisruptionBudget: { enabled: true, minAvailable: '50%' } }), { minAvailable: '50%', selector: { matchLabels: SELECTOR } });
    assert.deepEqual(await pdbSpec({ podDisruptionBudget: { enabled: true, maxUnavailable: 2 } }), { maxUnavailable: 2, selector: { matchLabels: SELECTOR } });
    assert.deepEqual(ofKind(await render({ podDisruptionBudget: { enabled: false } }), 'PodDisruptionBudget'), []);
  });

  test('podAntiAffinity required or none; `affinity` replaces the default whole', async () => {
    assert.deepEqual(podSpec(await render({ podAntiAffinity: 'required' })).affinity, { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [HOSTNAME_TERM] } });
    assert.equal(podSpec(await render({ podAntiAffinity: 'none' })).affinity, undefined);
    const mine = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'storage', operator: 'Exists' }] }] } } };
    assert.deepEqual(podSpec(await render({ affinity: mine })).affinity, mine);
  });

  test('topologySpreadConstraints: this release\'s Pods as labelSelector unless a constraint names its own', async () => {
    const own = { matchLabels: { app: 'other' } };
    const spec = podSpec(await render({ topologySpreadConstraints: [
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
      { maxSkew: 2, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: own },
    ] }));
    assert.deepEqual(spec.topologySpreadConstraints, [
      { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR } },
      { maxSkew: 2, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: own },
    ]);
  });

  test('hostNetwork brings dnsPolicy ClusterFirstWithHostNet, so in-cluster names still resolve', async () => {
    const spec = podSpec(await render({ hostNetwork: true }));
    assert.deepEqual([spec.hostNetwork, spec.dnsPolicy], [true, 'ClusterFirstWithHostNet']);
  });

  test('commonLabels on every object and on the Pods; selectors unchanged', async () => {
    const manifests = await render({ ...CLASSES_VALUES, commonLabels: { 'example.com/team': 'storage' }, metrics: { enabled: true, port: 8080, serviceMonitor: { enabled: true } } });
    assert.ok(manifests.length > 10);
    for (const manifest of manifests) assert.equal(manifest.metadata.labels?.['example.com/team'], 'storage', `${manifest.kind}/${manifest.metadata.name}`);
    const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
    assert.equal(deployment.spec?.template.metadata?.labels?.['example.com/team'], 'storage');
    assert.deepEqual(deployment.spec?.selector.matchLabels, SELECTOR);
  });

  test('deployment and Pod annotations, the strategy, a priority class of one\'s own', async () => {
    const strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } };
    const manifests = await render({
      deploymentAnnotations: { 'example.com/owner': 'storage' },
      podAnnotations: { 'example.com/scrape': 'true' },
      strategy,
      priorityClassName: 'storage-critical',
    });
    const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
    assert.deepEqual(deployment.metadata?.annotations, { 'example.com/owner': 'storage' });
    assert.deepEqual(deployment.spec?.template.metadata?.annotations, { 'example.com/scrape': 'true' });
    assert.deepEqual(deployment.spec?.strategy, strategy);
    assert.equal(podSpec(manifests).priorityClassName, 'storage-critical');
    assert.equal(podSpec(await render({ priorityClassName: '' })).priorityClassName, undefined);
  });

  test('extraVolumes and extraVolumeMounts come after the scratch /tmp', async () => {
    const manifests = await render({
      extraVolumes: [{ name: 'ceph-conf', configMap: { name: 'ceph-conf' } }],
      extraVolumeMounts: [{ name: 'ceph-conf', mountPath: '/etc/ceph', readOnly: true }],
    });
    assert.deepEqual(podSpec(manifests).volumes, [
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      { name: 'ceph-conf', configMap: { name: 'ceph-conf' } },
    ]);
    assert.deepEqual(controller(manifests).volumeMounts, [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'ceph-conf', mountPath: '/etc/ceph', readOnly: true },
    ]);
  });
});

// The `helm test` hook: its resources and RBAC, and its script run here against a stand-in kubectl
// that records what it is asked, so the claim it creates and its cleanup are checked without a kubelet.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1Deployment, V1PersistentVolumeClaim, V1Pod, V1PodDisruptionBudget, V1Role, V1RoleBinding, V1Service } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { type Manifest, onlyOfKind, render, runCommand } from './helm.js';

const NAMESPACE = 'ns-rel';

function hookResources(manifests: readonly Manifest[]): Manifest[] {
  return manifests.filter((m) => m.metadata.annotations?.['helm.sh/hook'] !== undefined);
}

function hookPod(manifests: readonly Manifest[]): V1Pod {
  return onlyOfKind<V1Pod>(hookResources(manifests), 'Pod');
}

function classValues(volumeBindingMode: string): object {
  return {
    storageClasses: [
      { name: 'first', create: true, volumeBindingMode, parameters: { pool: 'p' }, secrets: { admin: { name: 'a' } } },
      { name: 'second', create: true, parameters: { pool: 'q' }, secrets: { admin: { name: 'a' } } },
    ],
  };
}

describe('hook resources', () => {
  test('a test-hook Pod with its own ServiceAccount and RBAC; the identity is deleted whatever the outcome, the Pod before a rerun', async () => {
    const manifests = await render({});
    const hooks = hookResources(manifests);
    assert.deepEqual(hooks.map((m) => m.kind).sort(), ['Pod', 'Role', 'RoleBinding', 'ServiceAccount']);
    for (const hook of hooks) {
      const annotations = hook.metadata.annotations ?? {};
      assert.equal(annotations['helm.sh/hook'], 'test', `${hook.kind} is a test hook`);
      // helm uninstall runs no hook deletion: whatever a run leaves must go by these policies or with the release.
      const expected = hook.kind === 'Pod' ? ['before-hook-creation'] : ['before-hook-creation', 'hook-failed', 'hook-succeeded'];
      assert.deepEqual(annotations['helm.sh/hook-delete-policy']?.split(',').sort(), expected, hook.kind);
      assert.equal(hook.metadata.namespace, NAMESPACE);
      // The identity must exist before the Pod that uses it: lower weights are created first.
      if (hook.kind !== 'Pod') assert.ok(Number(annotations['helm.sh/hook-weight']) < 0, `${hook.kind} precedes the Pod`);
    }
    const pod = hookPod(manifests);
    const serviceAccount = onlyOfKind<Manifest>(hooks, 'ServiceAccount');
    assert.equal(pod.spec?.serviceAccountName, serviceAccount.metadata.name);
    assert.equal(pod.spec?.restartPolicy, 'Never');
    const binding = onlyOfKind<V1RoleBinding>(hooks, 'RoleBinding');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: NAMESPACE }]);
    const role = onlyOfKind<V1Role>(hooks, 'Role');
    assert.equal(binding.roleRef.name, role.metadata?.name);
    const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
      // Reading the controller's readiness, and making its Deployment the Pod's owner: each by name only.
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: [deployment.metadata?.name], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods'], resourceNames: [pod.metadata?.name], verbs: ['patch'] },
    ]);
  });

  test('the hook Pod is none of the controller\'s: outside the Deployment\'s, the PodDisruptionBudget\'s and the Service\'s selectors', async () => {
    const manifests = await render({ replicaCount: 2 });
    const labels = hookPod(manifests).metadata?.labels ?? {};
    const selects = (selector: Record<string, string> | undefined) =>
      Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
    const deployment = onlyOfKind<V1Deployment>(manifests, 'Deployment');
    const pdb = onlyOfKind<V1PodDisruptionBudget>(manifests, 'PodDisruptionBudget');
    const service = onlyOfKind<V1Service>(manifests, 'Service');
    assert.equal(selects(deployment.spec?.selector.matchLabels), false);
    assert.equal(selects(pdb.spec?.selector?.matchLabels), false);
    assert.equal(selects(service.spec?.selector), false);
    assert.equal(labels['app.kubernetes.io/instance'], 'rel');
    assert.equal(labels['app.kubernetes.io/component'], 'test');
  });

  test('the hook Pod is as locked down as the controller\'s', async () => {
    const manifests = await render({});
    const pod = hookPod(manifests);
    const controllerPod = onlyOfKind<Manifest & { spec: { template: { spec: V1Pod['spec'] } } }>(manifests, 'Deployment').spec.template.spec;
    assert.deepEqual(pod.spec?.securityContext, controllerPod?.securityContext);
    assert.deepEqual(pod.spec?.containers[0]?.securityContext, controllerPod?.containers[0]?.securityContext);
    assert.equal(pod.spec?.containers[0]?.image, 'registry.k8s.io/kubectl:v1.33.0');
  });

  test('no hook without a StorageClass to test, or with tests.enabled=false', async () => {
    assert.deepEqual(hookResources(await render({ storageClasses: [] })), []);
    assert.deepEqual(hookResources(await render({ tests: { enabled: false } })), []);
  });
});

describe('hook script against a stand-in kubectl', () => {
  let fakeBin: string;
  // Records each call's arguments, keeps the manifest given to `create -f -`, answers the Deployment's uid and
  // replica counts ($FAKE_COUNTS, as wanted/ready), `wait` with $FAKE_WAIT_STATUS, the claim's phase with
  // Pending and its events with $FAKE_EVENTS.
  const fakeKubectl = `#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$FAKE_LOG"
[ "$1" = --namespace ] && shift 2
case "$1 $2 $*" in
  create*) cat >"$FAKE_CREATED" ;;
  wait*) exit "$FAKE_WAIT_STATUS" ;;
  *metadata.uid*) echo 0f0e0d0c-uid ;;
  *spec.replicas*) printf %s "$FAKE_COUNTS" ;;
  "get pvc"*status.phase*) printf Pending ;;
  "get pvc"*spec.volumeName*) printf pvc-0123 ;;
  "get events"*) printf %s "$FAKE_EVENTS" ;;
esac
`;

  before(async () => {
    fakeBin = await mkdtemp(path.join(tmpdir(), 'rbd-chart-hook-'));
    await writeFile(path.join(fakeBin, 'kubectl'), fakeKubectl);
    await chmod(path.join(fakeBin, 'kubectl'), 0o755);
  });
  after(async () => {
    await rm(fakeBin, { recursive: true, force: true });
  });

  interface Fake {
    waitStatus?: number;
    counts?: string;
    events?: string;
  }

  async function runHook(values: object, fake: Fake = {}) {
    const pod = hookPod(await render(values));
    const container = pod.spec?.containers[0];
    assert.deepEqual(container?.command, ['/bin/bash', '-c']);
    const script = container?.args?.[0] ?? '';
    const log = path.join(fakeBin, `log-${Math.random()}`);
    const created = path.join(fakeBin, `created-${Math.random()}`);
    // The environment the kubelet would give the container: downward-API fields resolved for this Pod.
    const podEnv: Record<string, string> = {};
    const fields: Record<string, string> = { 'metadata.namespace': NAMESPACE, 'metadata.name': pod.metadata?.name ?? '', 'spec.nodeName': 'node-1' };
    for (const variable of container?.env ?? []) {
      const value = variable.value ?? fields[variable.valueFrom?.fieldRef?.fieldPath ?? ''];
      assert.ok(value !== undefined, `env ${variable.name} resolves`);
      podEnv[variable.name] = value;
    }
    const result = await runCommand('bash', ['-c', script], {
      env: {
        ...podEnv,
        PATH: `${fakeBin}:${process.env['PATH'] ?? ''}`,
        FAKE_LOG: log,
        FAKE_CREATED: created,
        FAKE_WAIT_STATUS: String(fake.waitStatus ?? 0),
        FAKE_COUNTS: fake.counts ?? '2/2',
        FAKE_EVENTS: fake.events ?? '',
      },
    });
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    const claim = await readFile(created, 'utf8').then((text) => load(text) as V1PersistentVolumeClaim, () => undefined);
    return { result, calls, claim, podName: pod.metadata?.name ?? '' };
  }

  const k = (args: string) => `--namespace ${NAMESPACE} ${args}`;

  test('makes the Deployment its owner, checks a replica is ready, creates a claim on the first class, waits for Bound, deletes it', async () => {
    const { result, calls, claim, podName } = await runHook(classValues('Immediate'));
    assert.equal(result.status, 0, result.stderr);
    const name = claim?.metadata?.name ?? '';
    assert.match(name, new RegExp(`^${podName}-\\d+$`));
    assert.equal(claim?.kind, 'PersistentVolumeClaim');
    assert.equal(claim?.metadata?.annotations, undefined);
    assert.deepEqual(claim?.spec, { storageClassName: 'first', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } });
    assert.deepEqual(calls.slice(0, 5), [
      k('get deployment rel-rbd-provisioner -o jsonpath={.metadata.uid}'),
      k(`patch pod ${podName} --type=merge -p {"metadata":{"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"rel-rbd-provisioner","uid":"0f0e0d0c-uid"}]}}`),
      k('get deployment rel-rbd-provisioner -o jsonpath={.spec.replicas}/{.status.readyReplicas}'),
      k('create -f -'),
      k(`wait pvc/${name} --for=jsonpath={.status.phase}=Bound --timeout=2m`),
    ]);
    assert.equal(calls.at(-1), k(`delete pvc ${name} --ignore-not-found --wait=true --timeout=60s`));
    // What it checked, in its log (`helm test --logs`).
    assert.match(result.stdout, /CHECK: deployment\/rel-rbd-provisioner has a ready replica\nok: 2 of 2 replicas ready\n/);
    assert.match(result.stdout, new RegExp(`CHECK: claim ${name} on StorageClass first becomes Bound within 2m\n`));
    assert.match(result.stdout, new RegExp(`ok: claim ${name} is Bound to pvc-0123\n`));
  });

  test('no ready replica: fails at once saying so, and creates no claim', async () => {
    const { result, calls, claim } = await runHook(classValues('Immediate'), { counts: '2/' });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /FAILED: deployment\/rel-rbd-provisioner has 0 of 2 replicas ready: no provisioner serves claims/);
    assert.equal(claim, undefined);
    assert.ok(!calls.some((call) => call.includes('create')), calls.join('\n'));
  });

  test('a claim that does not bind fails the test with its phase and the provisioner\'s events, and is deleted all the same', async () => {
    const events = 'Warning   ProvisioningFailed   rbd.provisioner.ceph.io   pool "p" does not exist';
    const { result, calls, claim } = await runHook(classValues('Immediate'), { waitStatus: 1, events });
    const name = claim?.metadata?.name ?? '';
    assert.equal(result.status, 1);
    assert.ok(result.stderr.includes(`events of claim ${name} (ProvisioningFailed tells the provisioner's reason):\n${events}\n`), result.stderr);
    assert.match(result.stderr, new RegExp(`FAILED: claim ${name} on StorageClass first is Pending, not Bound, after 2m`));
    assert.equal(calls.at(-1), k(`delete pvc ${name} --ignore-not-found --wait=true --timeout=60s`));
  });

  test('a claim nobody acted on: says no provisioner saw it, and which provisioner name the class must carry', async () => {
    const { result } = await runHook(classValues('Immediate'), { waitStatus: 1 });
    assert.equal(result.status, 1);
    assert.match(result.stderr, /no event on claim \S+: no provisioner acted on it \(does StorageClass first name rbd\.provisioner\.ceph\.io\? is a replica the leader\?\)/);
  });

  test('on a WaitForFirstConsumer class the claim names the hook Pod\'s node, as the scheduler would', async () => {
    const { result, claim } = await runHook(classValues('WaitForFirstConsumer'));
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(claim?.metadata?.annotations, { 'volume.kubernetes.io/selected-node': 'node-1' });
  });

  test('claim size and timeout come from tests.*', async () => {
    const { calls, claim } = await runHook({ ...classValues('Immediate'), tests: { enabled: true, claimSize: '5Gi', timeout: '30s' } });
    assert.deepEqual(claim?.spec?.resources?.requests, { storage: '5Gi' });
    assert.ok(calls.some((call) => call.startsWith(k('wait pvc/')) && call.endsWith('--timeout=30s')), calls.join('\n'));
  });
});

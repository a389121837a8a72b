// The `helm test` hook: its resources and RBAC, and its script run here against a stand-in kubectl
// that records what it is asked, so the claim it creates and its cleanup are checked without a kubelet.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { V1PersistentVolumeClaim, V1Pod, V1Role, V1RoleBinding } from '@kubernetes/client-node';
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
  test('a test-hook Pod with its own ServiceAccount and RBAC, all deleted on success and before a rerun', async () => {
    const manifests = await render({});
    const hooks = hookResources(manifests);
    assert.deepEqual(hooks.map((m) => m.kind).sort(), ['Pod', 'Role', 'RoleBinding', 'ServiceAccount']);
    for (const hook of hooks) {
      const annotations = hook.metadata.annotations ?? {};
      assert.equal(annotations['helm.sh/hook'], 'test', `${hook.kind} is a test hook`);
      assert.deepEqual(annotations['helm.sh/hook-delete-policy']?.split(',').sort(), ['before-hook-creation', 'hook-succeeded']);
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
    assert.deepEqual(role.rules, [
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ]);
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
  // Records each call's arguments, keeps the manifest given to `create -f -`, answers `wait` with
  // $FAKE_WAIT_STATUS.
  const fakeKubectl = `#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$FAKE_LOG"
[ "$1" = --namespace ] && shift 2
case "$1" in
  create) cat >"$FAKE_CREATED" ;;
  wait) exit "$FAKE_WAIT_STATUS" ;;
  get) echo "fake get $*" ;;
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

  async function runHook(values: object, waitStatus: number) {
    const pod = hookPod(await render(values));
    const container = pod.spec?.containers[0];
    assert.deepEqual(container?.command, ['/bin/bash', '-c']);
    const script = container?.args?.[0] ?? '';
    const log = path.join(fakeBin, `log-${waitStatus}-${Math.random()}`);
    const created = path.join(fakeBin, `created-${waitStatus}-${Math.random()}`);
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
        FAKE_WAIT_STATUS: String(waitStatus),
      },
    });
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    const claim = load(await readFile(created, 'utf8')) as V1PersistentVolumeClaim;
    return { result, calls, claim, podName: pod.metadata?.name ?? '' };
  }

  test('creates a claim on the first class, waits for Bound, then deletes it', async () => {
    const { result, calls, claim, podName } = await runHook(classValues('Immediate'), 0);
    assert.equal(result.status, 0, result.stderr);
    const name = claim.metadata?.name ?? '';
    assert.match(name, new RegExp(`^${podName}-\\d+$`));
    assert.equal(claim.kind, 'PersistentVolumeClaim');
    assert.equal(claim.metadata?.annotations, undefined);
    assert.deepEqual(claim.spec, { storageClassName: 'first', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } });
    assert.equal(calls[0], `--namespace ${NAMESPACE} create -f -`);
    assert.equal(calls[1], `--namespace ${NAMESPACE} wait pvc/${name} --for=jsonpath={.status.phase}=Bound --timeout=2m`);
    assert.equal(calls.at(-1), `--namespace ${NAMESPACE} delete pvc ${name} --ignore-not-found --wait=true --timeout=60s`);
  });

  test('a claim that does not bind fails the test, reports the claim and its events, and is deleted all the same', async () => {
    const { result, calls, claim } = await runHook(classValues('Immediate'), 1);
    const name = claim.metadata?.name ?? '';
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, new RegExp(`claim ${name} on StorageClass first is not Bound after 2m`));
    assert.ok(calls.includes(`--namespace ${NAMESPACE} get events --field-selector involvedObject.name=${name}`), calls.join('\n'));
    assert.equal(calls.at(-1), `--namespace ${NAMESPACE} delete pvc ${name} --ignore-not-found --wait=true --timeout=60s`);
  });

  test('on a WaitForFirstConsumer class the claim names the hook Pod\'s node, as the scheduler would', async () => {
    const { result, claim } = await runHook(classValues('WaitForFirstConsumer'), 0);
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(claim.metadata?.annotations, { 'volume.kubernetes.io/selected-node': 'node-1' });
  });

  test('claim size and timeout come from tests.*', async () => {
    const { calls, claim } = await runHook({ ...classValues('Immediate'), tests: { enabled: true, claimSize: '5Gi', timeout: '30s' } }, 0);
    assert.deepEqual(claim.spec?.resources?.requests, { storage: '5Gi' });
    assert.ok(calls[1]?.endsWith('--timeout=30s'), calls[1]);
  });
});


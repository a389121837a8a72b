import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import {
  adminKubeConfig,
  createNamespace,
  ensureControlPlane,
  helm,
  ignoreNotFound,
  repoRoot,
  waitFor,
  type ControlPlane,
  type TestNamespace,
} from '../support/kube.js';

const chart = path.join(repoRoot, 'test', 'controlplane', 'fixtures', 'tiny-chart');

describe('helm against the control plane', () => {
  let controlPlane: ControlPlane;
  let core: k8s.CoreV1Api;
  let ns: TestNamespace;

  before(async () => {
    controlPlane = await ensureControlPlane();
    const kc = adminKubeConfig(controlPlane);
    core = kc.makeApiClient(k8s.CoreV1Api);
    ns = await createNamespace(kc, 'cp-helm');
  });

  after(async () => {
    await ns.cleanup();
  });

  test('helm is v3', async () => {
    assert.match(await helm(['version', '--template', '{{.Version}}']), /^v3\.\d+\.\d+$/);
  });

  test('install creates the chart objects, uninstall removes them', async () => {
    const release = 'tiny';
    await helm(['install', release, chart, '--namespace', ns.name, '--set', 'greeting=hi', '--wait', '--timeout', '60s']);

    const settings = await core.readNamespacedConfigMap({ name: `${release}-settings`, namespace: ns.name });
    assert.equal(settings.data?.greeting, 'hi');
    // Helm's view of the server version: the chart's kubeVersion constraint relied on it.
    assert.equal(settings.data?.kubeVersion, controlPlane.version);
    await core.readNamespacedServiceAccount({ name: release, namespace: ns.name });
    const releases = JSON.parse(await helm(['list', '--namespace', ns.name, '-o', 'json'])) as { name: string; status: string }[];
    assert.deepEqual(releases.map((r) => [r.name, r.status]), [[release, 'deployed']]);

    await helm(['uninstall', release, '--namespace', ns.name, '--wait', '--timeout', '60s']);
    await waitFor(
      `release ${release} objects to be gone`,
      async (observe) => {
        const left = await Promise.all([
          ignoreNotFound(core.readNamespacedConfigMap({ name: `${release}-settings`, namespace: ns.name })),
          ignoreNotFound(core.readNamespacedServiceAccount({ name: release, namespace: ns.name })),
        ]);
        const names = left.flatMap((obj) => (obj ? [`${obj.kind ?? 'object'}/${obj.metadata?.name}`] : []));
        observe({ remaining: names });
        return names.length === 0 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    assert.equal(await helm(['list', '--namespace', ns.name, '-q']), '');
  });

  // Shows the fixture's kubeVersion constraint bites, so the install above
  // really depended on the server's stamped version.
  test('the chart refuses a Kubernetes older than its kubeVersion', async () => {
    await assert.rejects(
      helm(['template', 'too-old', chart, '--kube-version', 'v1.29.0']),
      /chart requires kubeVersion: >=1\.30\.0-0 which is incompatible with Kubernetes v1\.29\.0/,
    );
  });
});

// `helm lint` is clean, plain and --strict (warnings fail), with the defaults and with every optional part on.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { load } from 'js-yaml';
import { chartDir, helmTemplate, runHelm } from './helm.js';

/** Every gated template rendered: created classes and Secrets, ServiceMonitor, PrometheusRule, dashboard, PDB, cluster-wide Secrets. */
const EVERYTHING_ON = {
  metrics: {
    enabled: true,
    port: 8080,
    serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'prom' } },
    prometheusRule: { enabled: true, labels: { release: 'prom' } },
    grafanaDashboard: { enabled: true, namespace: 'monitoring' },
  },
  rbac: { create: true, clusterWideSecrets: true },
  podAnnotations: { 'example.com/note': 'x' },
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'storage', operator: 'Exists', effect: 'NoSchedule' }],
  affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
  imagePullSecrets: [{ name: 'pull' }],
  replicaCount: 3,
  podDisruptionBudget: { enabled: true, minAvailable: 2 },
  topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }],
  hostNetwork: true,
  commonLabels: { 'example.com/team': 'storage' },
  deploymentAnnotations: { 'example.com/owner': 'storage' },
  strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
  extraVolumes: [{ name: 'ceph-conf', configMap: { name: 'ceph-conf' } }],
  extraVolumeMounts: [{ name: 'ceph-conf', mountPath: '/etc/ceph', readOnly: true }],
  storageClasses: [
    {
      name: 'rbd',
      create: true,
      isDefault: true,
      volumeBindingMode: 'WaitForFirstConsumer',
      mountOptions: ['discard'],
      parameters: { monitors: '192.0.2.1:6789', pool: 'kube' },
      secrets: {
        admin: { name: 'ceph-admin', namespace: 'ceph', create: true, id: 'admin', key: 'AQCdummykeydummykeydummykeydummykey1==' },
        user: { name: 'ceph-user', create: true, id: 'kube', key: 'AQCdummykeydummykeydummykeydummykey2==' },
      },
    },
  ],
};

async function lint(extraArgs: string[]): Promise<{ status: number | null; output: string }> {
  const result = await runHelm(['lint', chartDir, ...extraArgs]);
  return { status: result.status, output: result.stdout + result.stderr };
}

function assertClean(run: { status: number | null; output: string }): void {
  assert.equal(run.status, 0, run.output);
  assert.match(run.output, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  assert.doesNotMatch(run.output, /\[(WARNING|ERROR)\]/, run.output);
}

describe('helm lint', () => {
  test('is clean with the default values', async () => {
    assertClean(await lint([]));
  });

  test('is clean with --strict', async () => {
    assertClean(await lint(['--strict']));
  });

  test('is clean with --strict and every optional resource enabled', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'rbd-chart-lint-'));
    try {
      const values = path.join(scratch, 'values.yaml');
      await writeFile(values, JSON.stringify(EVERYTHING_ON));
      assertClean(await lint(['--strict', '--values', values]));
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('fails on values the schema rejects (so the clean runs above mean something)', async () => {
    const run = await lint(['--strict', '--set', 'log.level=loud']);
    assert.notEqual(run.status, 0);
    assert.match(run.output, /log\.level must be one of the following: "error", "warn", "info", "debug"/);
  });

  test('the chart README\'s example values are valid', async () => {
    const readme = await readFile(path.join(chartDir, 'README.md'), 'utf8');
    const example = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example !== undefined, 'README.md has a yaml example');
    const result = await helmTemplate(load(example) as object);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /adminSecretNamespace: "ceph"/);
  });
});

// values.schema.json (and the template-level checks) reject wrong values with a message naming the value.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { helmTemplate } from './helm.js';

const SCHEMA_FAILURE = "values don't meet the specifications of the schema(s)";

/** A valid class to vary, given as a whole list: a values file replaces lists, it does not merge them. */
function withClass(overrides: Record<string, unknown>): object {
  return {
    storageClasses: [{ name: 'rbd', create: true, parameters: { pool: 'kube' }, secrets: { admin: { name: 'ceph-admin' } }, ...overrides }],
  };
}

interface Case {
  name: string;
  values: object;
  /** Fragments that must all appear in helm's error output. */
  expected: string[];
  /** Template-level checks (fail) rather than the schema. */
  template?: true;
}

const CASES: Case[] = [
  {
    name: 'log.level outside the controller\'s levels',
    values: { log: { level: 'loud', format: 'json' } },
    expected: ['- log.level: log.level must be one of the following: "error", "warn", "info", "debug"'],
  },
  {
    name: 'log.format outside json/text',
    values: { log: { level: 'info', format: 'xml' } },
    expected: ['- log.format: log.format must be one of the following: "json", "text"'],
  },
  {
    name: 'cephCsiConfig.namespace not a namespace name',
    values: { cephCsiConfig: { enabled: true, namespace: 'Ceph_CSI', name: 'ceph-csi-config' } },
    expected: ['- cephCsiConfig.namespace: Does not match pattern'],
  },
  {
    name: 'cephCsiConfig.name empty',
    values: { cephCsiConfig: { enabled: true, namespace: '', name: '' } },
    expected: ['- cephCsiConfig.name:'],
  },
  { name: 'csiDriver.create not a boolean', values: { csiDriver: { create: 'yes', name: 'rbd.csi.ceph.com' } }, expected: ['- csiDriver.create: Invalid type'] },
  { name: 'replicaCount 0', values: { replicaCount: 0 }, expected: ['- replicaCount: Must be greater than or equal to 1'] },
  {
    name: 'image.pullPolicy unknown',
    values: { image: { repository: 'r', pullPolicy: 'Sometimes' } },
    expected: ['- image.pullPolicy: image.pullPolicy must be one of the following: "Always", "IfNotPresent", "Never"'],
  },
  {
    name: 'reclaimPolicy Keep',
    values: withClass({ reclaimPolicy: 'Keep' }),
    expected: ['- storageClasses.0.reclaimPolicy: storageClasses.0.reclaimPolicy must be one of the following: "Delete", "Retain"'],
  },
  {
    name: 'volumeBindingMode unknown',
    values: withClass({ volumeBindingMode: 'Later' }),
    expected: ['- storageClasses.0.volumeBindingMode: storageClasses.0.volumeBindingMode must be one of the following: "Immediate", "WaitForFirstConsumer"'],
  },
  {
    name: 'a duration without a unit',
    values: { ceph: { mountTimeout: '10', monOpTimeout: '30s', osdOpTimeout: '30s', maxInflight: 16 } },
    expected: ['- ceph.mountTimeout: Does not match pattern'],
  },
  {
    name: 'a duration given as a number',
    values: { leaderElection: { enabled: true, leaseDuration: 15, renewDeadline: '10s', retryPeriod: '2s' } },
    expected: ['- leaderElection.leaseDuration: Invalid type. Expected: string, given: integer'],
  },
  { name: 'attacher.enabled given as a string', values: { attacher: { enabled: 'false' } }, expected: ['- attacher.enabled: Invalid type. Expected: boolean, given: string'] },
  { name: 'resizer.enabled given as a string', values: { resizer: { enabled: 'false' } }, expected: ['- resizer.enabled: Invalid type. Expected: boolean, given: string'] },
  { name: 'attacher as a bare boolean', values: { attacher: false }, expected: ['- attacher: Invalid type. Expected: object, given: boolean'] },
  { name: 'workers 0', values: { workers: 0 }, expected: ['- workers: Must be greater than or equal to 1'] },
  { name: 'metrics.port beyond 65535', values: { metrics: { enabled: true, port: 70000 } }, expected: ['- metrics.port: Must be less than or equal to 65535'] },
  { name: 'a misspelt top-level key', values: { replicas: 3 }, expected: ['- (root): Additional property replicas is not allowed'] },
  {
    name: 'a misspelt class key',
    values: withClass({ reclaimpolicy: 'Delete' }),
    expected: ['- storageClasses.0: Additional property reclaimpolicy is not allowed'],
  },
  {
    name: 'a parameter given as a number (StorageClass parameters are strings)',
    values: withClass({ parameters: { imageFormat: 2 } }),
    expected: ['- storageClasses.0.parameters.imageFormat: Invalid type. Expected: [string,null], given: integer'],
  },
  {
    name: 'a class without an admin Secret',
    values: withClass({ secrets: { user: { name: 'u' } } }),
    expected: ['- storageClasses.0.secrets: admin is required'],
  },
  {
    name: 'a Secret to create without its key',
    values: withClass({ secrets: { admin: { name: 'ceph-admin', create: true } } }),
    expected: ['- storageClasses.0.secrets.admin: key is required'],
  },
  {
    name: 'a Secret namespace that is not a namespace name',
    values: withClass({ secrets: { admin: { name: 'ceph-admin', namespace: 'Ceph_NS' } } }),
    expected: ['storageClasses.0.secrets.admin.namespace'],
  },
  {
    name: 'a PodDisruptionBudget with both minAvailable and maxUnavailable',
    values: { podDisruptionBudget: { enabled: true, minAvailable: 1, maxUnavailable: 1 } },
    expected: ['- podDisruptionBudget: Must not validate the schema (not)'],
  },
  { name: 'a PodDisruptionBudget percentage without %', values: { podDisruptionBudget: { enabled: true, maxUnavailable: '50' } }, expected: ['podDisruptionBudget.maxUnavailable'] },
  { name: 'a misspelt PodDisruptionBudget key', values: { podDisruptionBudget: { enabled: true, minAvailble: 1 } }, expected: ['- podDisruptionBudget: Additional property minAvailble is not allowed'] },
  {
    name: 'podAntiAffinity outside preferred/required/none',
    values: { podAntiAffinity: 'soft' },
    expected: ['- podAntiAffinity: podAntiAffinity must be one of the following: "preferred", "required", "none"'],
  },
  {
    name: 'a topology spread constraint without topologyKey',
    values: { topologySpreadConstraints: [{ maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' }] },
    expected: ['- topologySpreadConstraints.0: topologyKey is required'],
  },
  {
    name: 'a topology spread constraint with an unknown whenUnsatisfiable',
    values: { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'Never' }] },
    expected: ['- topologySpreadConstraints.0.whenUnsatisfiable: topologySpreadConstraints.0.whenUnsatisfiable must be one of the following: "DoNotSchedule", "ScheduleAnyway"'],
  },
  { name: 'hostNetwork given as a string', values: { hostNetwork: 'true' }, expected: ['- hostNetwork: Invalid type. Expected: boolean, given: string'] },
  { name: 'a common label with a non-string value', values: { commonLabels: { tier: 1 } }, expected: ['- commonLabels.tier: Invalid type. Expected: string, given: integer'] },
  { name: 'a common label with an invalid key', values: { commonLabels: { 'bad key': 'x' } }, expected: ['commonLabels'] },
  { name: 'a strategy type Kubernetes does not know', values: { strategy: { type: 'BlueGreen' } }, expected: ['- strategy.type: strategy.type must be one of the following: "RollingUpdate", "Recreate"'] },
  { name: 'Recreate with rollingUpdate settings', values: { strategy: { type: 'Recreate', rollingUpdate: { maxSurge: 1 } } }, expected: ['- strategy: Must not validate the schema (not)'] },
  { name: 'a deployment annotation with a non-string value', values: { deploymentAnnotations: { 'example.com/x': true } }, expected: ['- deploymentAnnotations.example.com/x: Invalid type. Expected: string, given: boolean'] },
  { name: 'an extra volume without a name', values: { extraVolumes: [{ emptyDir: {} }] }, expected: ['- extraVolumes.0: name is required'] },
  { name: 'an extra mount with a relative path', values: { extraVolumeMounts: [{ name: 'conf', mountPath: 'etc/ceph' }] }, expected: ['- extraVolumeMounts.0.mountPath: Does not match pattern'] },
  { name: 'a priorityClassName that is no object name', values: { priorityClassName: 'System Critical' }, expected: ['- priorityClassName: Does not match pattern'] },
  {
    name: 'a PrometheusRule selector that is no list of label matchers',
    values: { metrics: { enabled: true, port: 8080, prometheusRule: { enabled: true, selector: '{job="rbd"}' } } },
    expected: ['- metrics.prometheusRule.selector: Does not match pattern'],
  },
  {
    name: 'a Ceph latency threshold of 0',
    values: { metrics: { enabled: true, port: 8080, prometheusRule: { enabled: true, cephLatencySeconds: 0 } } },
    expected: ['- metrics.prometheusRule.cephLatencySeconds: Must be greater than 0'],
  },
  {
    name: 'a dashboard namespace that is no namespace name',
    values: { metrics: { enabled: true, port: 8080, grafanaDashboard: { enabled: true, namespace: 'Monitoring' } } },
    expected: ['- metrics.grafanaDashboard.namespace: Does not match pattern'],
  },
  {
    name: 'several replicas without leader election',
    values: { replicaCount: 2, leaderElection: { enabled: false, leaseDuration: '15s', renewDeadline: '10s', retryPeriod: '2s' } },
    expected: ['replicaCount > 1 needs leaderElection.enabled'],
    template: true,
  },
  {
    name: 'two classes creating one Secret with different keys',
    values: {
      storageClasses: ['a', 'b'].map((name, i) => ({
        name,
        create: true,
        secrets: { admin: { name: 'shared', create: true, key: `AQCkey${i}==` } },
      })),
    },
    expected: ['storageClasses[1].secrets.admin: Secret ns-rel/shared is created by another class with a different key'],
    template: true,
  },
];

describe('values that are refused', () => {
  for (const testCase of CASES) {
    test(testCase.name, async () => {
      const result = await helmTemplate(testCase.values);
      assert.notEqual(result.status, 0, `rendered although it should not have:\n${result.stdout.slice(0, 500)}`);
      if (testCase.template) assert.ok(!result.stderr.includes(SCHEMA_FAILURE), result.stderr);
      else assert.ok(result.stderr.includes(SCHEMA_FAILURE), result.stderr);
      for (const fragment of testCase.expected) assert.ok(result.stderr.includes(fragment), `expected "${fragment}" in:\n${result.stderr}`);
    });
  }

  test('a malformed key is refused without being echoed', async () => {
    const badKey = 'AQC-not/base64!-s3cr3t';
    const result = await helmTemplate(withClass({ secrets: { admin: { name: 'ceph-admin', create: true, key: badKey } } }));
    assert.notEqual(result.status, 0);
    assert.ok(result.stderr.includes('- storageClasses.0.secrets.admin.key: Does not match pattern'), result.stderr);
    assert.ok(!result.stderr.includes('s3cr3t') && !result.stdout.includes('s3cr3t'), 'the key stays out of the message');
  });
});

describe('values that are accepted', () => {
  const ACCEPTED: { name: string; values: object }[] = [
    { name: 'the defaults', values: {} },
    { name: 'compound durations', values: { ceph: { mountTimeout: '1m30s', monOpTimeout: '500ms', osdOpTimeout: '2h', maxInflight: 1 } } },
    { name: 'a null parameter (drops a key)', values: withClass({ parameters: { pool: 'kube', fsType: null } }) },
    { name: 'a parent chart\'s global values', values: { global: { imageRegistry: 'x' } } },
    { name: 'no StorageClasses at all', values: { storageClasses: [] } },
    { name: 'no priority class', values: { priorityClassName: '' } },
    { name: 'a PodDisruptionBudget as a percentage', values: { podDisruptionBudget: { enabled: true, minAvailable: '50%' } } },
    { name: 'a Recreate strategy', values: { strategy: { type: 'Recreate' } } },
    { name: 'a RollingUpdate strategy with a number and a percentage', values: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: '50%' } } } },
    { name: 'ceph-csi\'s config map kept and the CSIDriver created', values: { cephCsiConfig: { enabled: true, namespace: 'ceph-csi-rbd', name: 'ceph-csi-config' }, csiDriver: { create: true, name: 'rbd.csi.ceph.com' } } },
  ];
  for (const { name, values } of ACCEPTED) {
    test(name, async () => {
      const result = await helmTemplate(values);
      assert.equal(result.status, 0, result.stderr);
    });
  }
});

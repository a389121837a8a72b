// The chart's PrometheusRule: rendered from the chart, its rules pass `promtool check rules` and the unit tests of
// test/chart/fixtures/alerts.promtool.yaml under `promtool test rules` (promtool built by scripts/tools.sh from
// the Go module proxy), on series named as the controller names them.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dump, load } from 'js-yaml';
import { type Manifest, ofKind, onlyOfKind, render, repoRoot, runCommand } from './helm.js';
import { TARGET_LABELS, knownSeries, metricNames } from './promql.js';
import { tool } from './tools.js';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}
interface PromtoolTests {
  tests: {
    input_series: { series: string; values: string }[];
    alert_rule_test: { alertname: string; eval_time: string; exp_alerts: { exp_labels: Record<string, string> }[] }[];
  }[];
}

const fixture = path.join(repoRoot, 'test', 'chart', 'fixtures', 'alerts.promtool.yaml');
const RULES_ON = { metrics: { enabled: true, port: 8080, prometheusRule: { enabled: true } } };

async function ruleGroups(values: object = RULES_ON): Promise<RuleGroup[]> {
  const rule = onlyOfKind<Manifest & { spec: { groups: RuleGroup[] } }>(await render(values, { tests: false }), 'PrometheusRule');
  return rule.spec.groups;
}

/** Parses a series selector of promtool's input format: name{label="value", ...}. */
function parseSeries(series: string): { name: string; labels: Record<string, string> } {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$/.exec(series);
  assert.ok(match !== null, `a series of the form name{labels}: ${series}`);
  const labels: Record<string, string> = {};
  for (const pair of (match[2] as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[pair[1] as string] = pair[2] as string;
  return { name: match[1] as string, labels };
}

describe('alert rules', () => {
  let scratch: string;
  let promtool: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'rbd-alerts-'));
    promtool = await tool('promtool');
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** Writes the rendered rules where the fixture expects them (rules.yaml beside it); annotations left out. */
  async function runUnitTests(groups: RuleGroup[]) {
    const dir = await mkdtemp(path.join(scratch, 'run-'));
    const bare = groups.map((group) => ({ ...group, rules: group.rules.map(({ annotations: _annotations, ...rule }) => rule) }));
    await writeFile(path.join(dir, 'rules.yaml'), dump({ groups: bare }));
    await copyFile(fixture, path.join(dir, 'alerts.promtool.yaml'));
    return runCommand(promtool, ['test', 'rules', 'alerts.promtool.yaml'], { cwd: dir });
  }

  test('off by default', async () => {
    assert.deepEqual(ofKind(await render({}, { tests: false }), 'PrometheusRule'), []);
  });

  test('promtool check rules: the rendered rules and their annotation templates are valid', async () => {
    const file = path.join(scratch, 'full.yaml');
    await writeFile(file, dump({ groups: await ruleGroups() }));
    const run = await runCommand(promtool, ['check', 'rules', file]);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /SUCCESS: 9 rules found/);
  });

  test('promtool test rules: each alert fires on its series, and not before its time or on another release\'s', async () => {
    const run = await runUnitTests(await ruleGroups());
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /SUCCESS/);
  });

  test('the unit tests bite: rules selecting another release fail them', async () => {
    const run = await runUnitTests(await ruleGroups({ metrics: { enabled: true, port: 8080, prometheusRule: { enabled: true, selector: 'namespace="elsewhere"' } } }));
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stdout + run.stderr, /FAILED/);
  });

  test('every alert has a case where it fires and one where it does not', async () => {
    const alerts = (await ruleGroups()).flatMap((group) => group.rules.map((rule) => rule.alert)).sort();
    const cases = (load(await readFile(fixture, 'utf8')) as PromtoolTests).tests.flatMap((t) => t.alert_rule_test);
    const firing = new Set(cases.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
    const quiet = new Set(cases.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
    assert.deepEqual([...firing].sort(), alerts);
    assert.deepEqual([...quiet].sort(), alerts);
  });

  test('the test series and the rules name only series and labels the controller exposes', async () => {
    const known = knownSeries();
    const tests = (load(await readFile(fixture, 'utf8')) as PromtoolTests).tests;
    for (const { series } of tests.flatMap((t) => t.input_series)) {
      const { name, labels } = parseSeries(series);
      const allowed = known.get(name);
      assert.ok(allowed !== undefined, `${name} is not a series the controller exposes`);
      for (const label of Object.keys(labels)) assert.ok(allowed.has(label) || TARGET_LABELS.has(label), `${name} has no label ${label}`);
    }
    for (const rule of (await ruleGroups()).flatMap((group) => group.rules)) {
      const names = metricNames(rule.expr);
      assert.ok(names.length > 0, rule.alert);
      for (const name of names) assert.ok(known.has(name), `${rule.alert} uses ${name}, which the controller does not expose`);
    }
  });

  test('selector, labels, severities and the Ceph latency threshold come from values', async () => {
    const defaults = (await ruleGroups()).flatMap((group) => group.rules);
    assert.ok(defaults.every((rule) => rule.expr.includes('namespace="ns-rel", job="rel-rbd-provisioner-metrics"')), 'the release\'s namespace and metrics Service by default');
    const manifests = await render({
      metrics: {
        enabled: true,
        port: 8080,
        prometheusRule: { enabled: true, labels: { release: 'kps' }, selector: 'cluster="a", job="rbd"', cephLatencySeconds: 0.5, severity: { warning: 'ticket', critical: 'page' } },
      },
    }, { tests: false });
    const rule = onlyOfKind<Manifest & { spec: { groups: RuleGroup[] } }>(manifests, 'PrometheusRule');
    assert.equal(rule.metadata.labels?.['release'], 'kps');
    const rules = rule.spec.groups.flatMap((group) => group.rules);
    assert.ok(rules.every((r) => r.expr.includes('{cluster="a", job="rbd"') && !r.expr.includes('ns-rel')), 'the selector replaces the default');
    assert.match(rules.find((r) => r.alert === 'RbdProvisionerCephLatencyHigh')?.expr ?? '', /\) > 0\.5\n?$/);
    assert.deepEqual([...new Set(rules.map((r) => r.labels?.['severity']))].sort(), ['page', 'ticket']);
    assert.equal(rules.find((r) => r.alert === 'RbdProvisionerNoLeader')?.labels?.['severity'], 'page');
  });
});

// The Grafana dashboard (charts/rbd-provisioner/dashboards/rbd-provisioner.json): every query names only series
// the controller exposes, every panel takes its data source from the dashboard's variable, and the chart ships
// it unchanged in a ConfigMap when asked.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { chartDir, ofKind, onlyOfKind, render, type Manifest } from './helm.js';
import { knownSeries, metricNames } from './promql.js';

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; datasource?: { uid?: string } }[] };
}

const dashboardFile = path.join(chartDir, 'dashboards', 'rbd-provisioner.json');
const dashboardText = await readFile(dashboardFile, 'utf8');
const dashboard = JSON.parse(dashboardText) as Dashboard;
const panels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).filter((panel) => panel.type !== 'row');
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

describe('Grafana dashboard', () => {
  test('has a uid, panels with unique ids, and a query in every panel', () => {
    assert.equal(dashboard.uid, 'rbd-provisioner');
    assert.ok(panels.length >= 15, `${panels.length} panels`);
    const ids = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of panels) assert.ok((panel.targets ?? []).some((t) => (t.expr ?? '') !== ''), `panel "${panel.title}" queries something`);
  });

  test('the data source is a variable of type prometheus, used by every panel and query', () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'datasource');
    assert.deepEqual([variable?.type, variable?.query], ['datasource', 'prometheus']);
    for (const panel of panels) {
      assert.deepEqual(panel.datasource, DATASOURCE, `panel "${panel.title}"`);
      for (const target of panel.targets ?? []) assert.deepEqual(target.datasource, DATASOURCE, `a query of "${panel.title}"`);
    }
    for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) assert.equal(v.datasource?.uid, '${datasource}', `variable ${v.name}`);
    assert.doesNotMatch(dashboardText, /"uid": "(?!\$\{datasource\}|rbd-provisioner")[^"]*"/, 'no data source uid of some Grafana');
  });

  test('every query names only series the controller exposes (src/controllers/metrics.ts, prom-client\'s defaults)', () => {
    const known = knownSeries();
    const used = new Set<string>();
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        const names = metricNames(target.expr ?? '');
        assert.ok(names.length > 0, `"${panel.title}": ${target.expr}`);
        for (const name of names) {
          assert.ok(known.has(name), `"${panel.title}" queries ${name}, which the controller does not expose`);
          used.add(name);
        }
        // Each query is scoped to the chosen namespace and job.
        assert.match(target.expr ?? '', /namespace="\$namespace", job=~"\$job"/, `"${panel.title}": ${target.expr}`);
      }
    }
    // The dashboard shows each family of the controller's own metrics.
    for (const family of ['provision', 'delete', 'resize', 'attach', 'detach', 'ceph_call', 'workqueue', 'leader', 'orphan', 'informer', 'build_info']) {
      assert.ok([...used].some((name) => name.startsWith(`rbd_provisioner_${family}`)), `a panel on rbd_provisioner_${family}*`);
    }
  });

  test('the checker itself: names are found past functions, label lists and variables, and an unknown one is caught', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (op, le) (rate(rbd_provisioner_ceph_call_duration_seconds_bucket{job=~"$job"}[$__rate_interval]))) > on (op) group_left x_total'),
      ['rbd_provisioner_ceph_call_duration_seconds_bucket', 'x_total'],
    );
    assert.equal(knownSeries().has('rbd_provisioner_process_cpu_seconds_total'), false);
    assert.equal(knownSeries().has('process_cpu_seconds_total'), true);
  });

  test('the chart ships it unchanged in a ConfigMap labelled for Grafana\'s sidecar, only when asked', async () => {
    const off = await render({}, { tests: false });
    assert.deepEqual(ofKind(off, 'ConfigMap'), []);
    const on = await render({ metrics: { enabled: true, port: 8080, grafanaDashboard: { enabled: true, namespace: 'monitoring', labels: { grafana_dashboard: '1' } } } }, { tests: false });
    const configMap = onlyOfKind<Manifest & { data: Record<string, string> }>(on, 'ConfigMap');
    assert.equal(configMap.metadata.namespace, 'monitoring');
    assert.equal(configMap.metadata.labels?.['grafana_dashboard'], '1');
    assert.deepEqual(JSON.parse(configMap.data['rbd-provisioner.json'] ?? ''), dashboard);
  });
});

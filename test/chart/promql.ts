// What the dashboard and the alert rules may name: the metrics src/controllers/metrics.ts registers (with the
// process and Node.js metrics prom-client adds), and which names a PromQL expression uses.
import { Registry } from 'prom-client';
import { createMetrics } from '../../src/controllers/metrics.js';

/** Labels a scrape adds to every series (the ServiceMonitor's target labels). */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['namespace', 'job', 'pod', 'instance', 'service', 'container', 'endpoint']);

/** Every series name the controller's registry exposes, with the label names it may carry. */
export function knownSeries(): Map<string, Set<string>> {
  const registry = new Registry();
  createMetrics({ registry, defaultMetrics: true, buildInfo: { version: 'test', nodeVersion: process.version } });
  const known = new Map<string, Set<string>>();
  for (const metric of registry.getMetricsAsArray()) {
    const { name, type } = metric as unknown as { name: string; type: string };
    const labels = new Set((metric as unknown as { labelNames?: readonly string[] }).labelNames ?? []);
    if (type === 'histogram') {
      known.set(`${name}_bucket`, new Set([...labels, 'le']));
      known.set(`${name}_sum`, labels);
      known.set(`${name}_count`, labels);
    } else if (type === 'summary') {
      known.set(name, new Set([...labels, 'quantile']));
      known.set(`${name}_sum`, labels);
      known.set(`${name}_count`, labels);
    } else {
      known.set(name, labels);
    }
  }
  registry.clear();
  return known;
}

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan',
]);

/** The metric names an expression selects (functions, aggregations, keywords, label lists and strings left out). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const names: string[] = [];
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word.toLowerCase())) continue; // a function or aggregation
    if (/^\d/.test(word)) continue;
    names.push(word);
  }
  return [...new Set(names)];
}

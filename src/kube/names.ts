// Kubernetes object-name rules (apimachinery's IsDNS1123Label / IsDNS1123Subdomain), written once for every layer
// that checks a name before it reaches the API server: flags (src/config.ts) and StorageClass parameters and PV
// annotations (src/rbd). Shaped like the Ceph layer's NameRule, so one checker serves both.

export interface KubeNameRule {
  readonly pattern: RegExp;
  readonly maxLength: number;
  readonly allowed: string;
}

/** Namespaces, among others. */
export const DNS_LABEL = {
  pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
  maxLength: 63,
  allowed: 'lowercase DNS label: at most 63 lower-case letters, digits and "-", starting and ending alphanumeric',
} as const satisfies KubeNameRule;

/** Secrets and Leases, among others. */
export const DNS_SUBDOMAIN = {
  pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
  maxLength: 253,
  allowed: 'lowercase DNS subdomain: at most 253 characters, dot-separated DNS labels',
} as const satisfies KubeNameRule;

export function isKubeName(rule: KubeNameRule, value: string): boolean {
  return value.length <= rule.maxLength && rule.pattern.test(value);
}

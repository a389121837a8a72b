// Configuration from flags and environment variables. Every flag also reads RBD_PROVISIONER_<FLAG IN UPPER_SNAKE>;
// a flag on the command line wins over the environment, which wins over the defaults.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'json' | 'text';

export interface Config {
  provisionerName: string;
  /** undefined: in-cluster when running in a pod, else ~/.kube/config (see loadKubeConfig in controller/kube.ts). */
  kubeconfig: string | undefined;
  workers: number;
  cephMaxInflight: number;
  cephMountTimeoutMs: number;
  cephMonOpTimeoutMs: number;
  cephOsdOpTimeoutMs: number;
  kubeApiQps: number;
  kubeApiBurst: number;
  resyncPeriodMs: number;
  attacher: boolean;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionLeaseName: string;
  leaderElectionLeaseDurationMs: number;
  leaderElectionRenewDeadlineMs: number;
  leaderElectionRetryPeriodMs: number;
  identity: string;
  /** "" disables the HTTP server. */
  httpAddress: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  help: boolean;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(message);
  }
}

export const ENV_PREFIX = 'RBD_PROVISIONER_';
export const DEFAULT_PROVISIONER_NAME = 'rbd.provisioner.ceph.io';

type Kind = 'string' | 'int' | 'number' | 'bool' | 'duration' | 'enum';

interface FlagSpec {
  flag: string;
  kind: Kind;
  /** Shown in --help; the effective default may depend on the environment (see defaultValue). */
  defaultText: string;
  meaning: string;
  allowed?: readonly string[];
  min?: number;
  max?: number;
}

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
const LOG_FORMATS = ['json', 'text'] as const;

const FLAGS: readonly FlagSpec[] = [
  { flag: 'provisioner-name', kind: 'string', defaultText: DEFAULT_PROVISIONER_NAME, meaning: 'the name StorageClasses use in their provisioner field' },
  { flag: 'kubeconfig', kind: 'string', defaultText: 'env KUBECONFIG, else in-cluster, else ~/.kube/config', meaning: 'kubeconfig file for API access' },
  { flag: 'workers', kind: 'int', defaultText: '16', min: 1, max: 1000, meaning: 'claims/volumes reconciled at once' },
  { flag: 'ceph-max-inflight', kind: 'int', defaultText: '16', min: 1, max: 1024, meaning: 'librbd/librados calls in flight in the process' },
  { flag: 'ceph-mount-timeout', kind: 'duration', defaultText: '10s', meaning: 'librados client_mount_timeout' },
  { flag: 'ceph-mon-op-timeout', kind: 'duration', defaultText: '30s', meaning: 'rados_mon_op_timeout' },
  { flag: 'ceph-osd-op-timeout', kind: 'duration', defaultText: '30s', meaning: 'rados_osd_op_timeout' },
  { flag: 'kube-api-qps', kind: 'number', defaultText: '50', min: 0.01, meaning: 'client-side rate limit for API calls (queries per second)' },
  { flag: 'kube-api-burst', kind: 'int', defaultText: '100', min: 1, meaning: 'client-side burst for API calls' },
  { flag: 'resync-period', kind: 'duration', defaultText: '10m', meaning: 'informer resync: every object is reconciled again this often' },
  { flag: 'attacher', kind: 'bool', defaultText: 'true', meaning: 'mark VolumeAttachments of our PVs attached (off when ceph-csi\'s csi-attacher runs)' },
  { flag: 'leader-elect', kind: 'bool', defaultText: 'true', meaning: 'run leader election on a coordination.k8s.io Lease; only the leader acts' },
  { flag: 'leader-election-namespace', kind: 'string', defaultText: 'env POD_NAMESPACE, else "default"', meaning: 'namespace of the Lease' },
  { flag: 'leader-election-lease-name', kind: 'string', defaultText: 'the provisioner name with dots and slashes as dashes', meaning: 'name of the Lease' },
  { flag: 'leader-election-lease-duration', kind: 'duration', defaultText: '15s', meaning: 'how long standbys wait before taking over a lease that is not renewed' },
  { flag: 'leader-election-renew-deadline', kind: 'duration', defaultText: '10s', meaning: 'the leader gives up (and stops all work) when it cannot renew for this long' },
  { flag: 'leader-election-retry-period', kind: 'duration', defaultText: '2s', meaning: 'interval between acquire/renew attempts' },
  { flag: 'identity', kind: 'string', defaultText: 'env POD_NAME, else hostname + "_" + random', meaning: 'lease holder identity' },
  { flag: 'http-address', kind: 'string', defaultText: ':8080', meaning: 'address for /healthz /readyz /metrics ("" disables)' },
  { flag: 'log-level', kind: 'enum', defaultText: 'info', allowed: LOG_LEVELS, meaning: 'log level' },
  { flag: 'log-format', kind: 'enum', defaultText: 'json', allowed: LOG_FORMATS, meaning: 'log format' },
  { flag: 'help', kind: 'bool', defaultText: 'false', meaning: 'print this help and exit' },
];

export function envName(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replace(/-/g, '_');
}

export function helpText(): string {
  const lines = ['Usage: rbd-provisioner [flags]', '', 'Flags (each also read from the environment variable shown; a flag wins):'];
  for (const spec of FLAGS) {
    const value = spec.kind === 'bool' ? '' : spec.kind === 'enum' ? `=<${(spec.allowed ?? []).join('|')}>` : `=<${spec.kind}>`;
    lines.push(`  --${spec.flag}${value}`);
    lines.push(`      ${spec.meaning}`);
    lines.push(`      env ${envName(spec.flag)}; default: ${spec.defaultText}`);
  }
  lines.push('', 'Durations are Go-style: "500ms", "15s", "2m", "1h30m".');
  return lines.join('\n') + '\n';
}

const DURATION_UNITS_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a Go duration ("1h2m3.5s", "500ms", "0") into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$/.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number);
  }
  return total;
}

export interface ConfigDefaults {
  hostname?: () => string;
  randomSuffix?: () => string;
}

type Raw = Map<string, { value: string; source: string }>;

function collect(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Raw {
  const byFlag = new Map(FLAGS.map((spec) => [spec.flag, spec]));
  const raw: Raw = new Map();
  for (const spec of FLAGS) {
    const value = env[envName(spec.flag)];
    if (value !== undefined) raw.set(spec.flag, { value, source: `env ${envName(spec.flag)}` });
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h') {
      raw.set('help', { value: 'true', source: '-h' });
      continue;
    }
    if (!arg.startsWith('--')) {
      throw new ConfigError(arg, `unexpected argument "${arg}": flags are --name=value (see --help)`);
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = byFlag.get(name);
    if (spec === undefined) throw new ConfigError(`--${name}`, `unknown flag --${name} (see --help)`);
    let value: string;
    if (eq !== -1) {
      value = arg.slice(eq + 1);
    } else if (spec.kind === 'bool') {
      value = 'true';
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`--${name}`, `--${name} needs a value`);
      value = next;
      i++;
    }
    raw.set(name, { value, source: `--${name}` });
  }
  return raw;
}

class Reader {
  constructor(private readonly raw: Raw) {}

  private spec(flag: string): FlagSpec {
    return FLAGS.find((spec) => spec.flag === flag) as FlagSpec;
  }

  private fail(flag: string, expected: string, got: string): never {
    const source = this.raw.get(flag)?.source ?? `--${flag}`;
    const via = source.startsWith('env') ? ` (from ${source})` : '';
    throw new ConfigError(`--${flag}`, `--${flag}${via}: ${expected}, got "${got}"`);
  }

  has(flag: string): boolean {
    return this.raw.has(flag);
  }

  string(flag: string, fallback: string): string {
    return this.raw.get(flag)?.value ?? fallback;
  }

  int(flag: string, fallback: number): number {
    const text = this.raw.get(flag)?.value;
    if (text === undefined) return fallback;
    const spec = this.spec(flag);
    const value = /^[+]?\d+$/.test(text.trim()) ? Number(text) : NaN;
    const range = spec.max === undefined ? `>= ${spec.min ?? 0}` : `from ${spec.min ?? 0} to ${spec.max}`;
    if (!Number.isSafeInteger(value) || value < (spec.min ?? 0) || (spec.max !== undefined && value > spec.max)) {
      this.fail(flag, `must be an integer ${range}`, text);
    }
    return value;
  }

  number(flag: string, fallback: number): number {
    const text = this.raw.get(flag)?.value;
    if (text === undefined) return fallback;
    const spec = this.spec(flag);
    const value = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(value) || value < (spec.min ?? 0)) this.fail(flag, `must be a number >= ${spec.min ?? 0}`, text);
    return value;
  }

  bool(flag: string, fallback: boolean): boolean {
    const text = this.raw.get(flag)?.value;
    if (text === undefined) return fallback;
    const lowered = text.trim().toLowerCase();
    if (['true', '1', 't', 'yes'].includes(lowered)) return true;
    if (['false', '0', 'f', 'no'].includes(lowered)) return false;
    return this.fail(flag, 'must be true or false', text);
  }

  duration(flag: string, fallbackText: string): number {
    const text = this.raw.get(flag)?.value ?? fallbackText;
    const value = parseDuration(text.trim());
    if (value === undefined || value <= 0) {
      this.fail(flag, 'must be a positive Go-style duration such as "500ms", "15s", "2m" or "1h"', text);
    }
    return value;
  }

  choice<T extends string>(flag: string, fallback: T): T {
    const text = this.raw.get(flag)?.value;
    if (text === undefined) return fallback;
    const allowed = this.spec(flag).allowed ?? [];
    const lowered = text.trim().toLowerCase();
    if (!allowed.includes(lowered)) this.fail(flag, `must be one of ${allowed.join(', ')}`, text);
    return lowered as T;
  }

  check(flag: string, ok: boolean, expected: string): void {
    if (!ok) this.fail(flag, expected, this.raw.get(flag)?.value ?? '');
  }
}

/** A Lease name must be a DNS-1123 subdomain. */
export function leaseNameFor(provisionerName: string): string {
  return provisionerName.toLowerCase().replace(/[./]/g, '-');
}

const QUALIFIED_NAME = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Splits "host:port", ":port" or "[v6]:port"; undefined when malformed. */
export function parseHttpAddress(address: string): { host: string | undefined; port: number } | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  const host = match[1] ?? match[2];
  return { host: host === '' || host === undefined ? undefined : host, port };
}

/**
 * Parses flags (argv without node and script) over the environment. Throws ConfigError naming the flag and the
 * allowed values or format. `help` is true when --help was asked for: print helpText() and exit.
 */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  defaults: ConfigDefaults = {},
): Config {
  const raw = collect(argv, env);
  if (new Reader(raw).bool('help', false)) {
    // Nothing else matters when help is asked for; a bad value elsewhere must not hide the help text.
    return { ...parseConfig([], {}, defaults), help: true };
  }
  const read = new Reader(raw);

  const provisionerName = read.string('provisioner-name', DEFAULT_PROVISIONER_NAME).trim();
  read.check('provisioner-name', QUALIFIED_NAME.test(provisionerName), 'must be a name like "rbd.provisioner.ceph.io" (letters, digits, ".", "-", "_", "/")');

  const kubeconfigText = read.has('kubeconfig') ? read.string('kubeconfig', '') : env['KUBECONFIG'] ?? '';
  // KUBECONFIG may list several files; client-node's loadFromFile takes one, so take the first.
  const kubeconfig = kubeconfigText.split(':').find((part) => part.trim() !== '')?.trim();

  const leaseDuration = read.duration('leader-election-lease-duration', '15s');
  const renewDeadline = read.duration('leader-election-renew-deadline', '10s');
  const retryPeriod = read.duration('leader-election-retry-period', '2s');
  read.check('leader-election-renew-deadline', renewDeadline < leaseDuration, 'must be shorter than --leader-election-lease-duration');
  // Same rule as client-go: retries are jittered by up to 1.2x and must fit in the renew deadline.
  read.check('leader-election-retry-period', retryPeriod * 1.2 < renewDeadline, 'must be shorter than --leader-election-renew-deadline / 1.2');

  const leaseName = read.string('leader-election-lease-name', leaseNameFor(provisionerName)).trim();
  read.check('leader-election-lease-name', DNS_SUBDOMAIN.test(leaseName), 'must be a DNS-1123 subdomain (lower-case letters, digits, "-", ".")');
  const namespace = read.string('leader-election-namespace', nonEmpty(env['POD_NAMESPACE']) ?? 'default').trim();
  read.check('leader-election-namespace', /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace), 'must be a namespace name (DNS-1123 label)');

  const randomSuffix = defaults.randomSuffix ?? ((): string => randomBytes(4).toString('hex'));
  const identity = read.has('identity')
    ? read.string('identity', '').trim()
    : nonEmpty(env['POD_NAME']) ?? `${(defaults.hostname ?? hostname)()}_${randomSuffix()}`;
  read.check('identity', identity !== '', 'must not be empty');

  const httpAddress = read.string('http-address', ':8080').trim();
  read.check('http-address', httpAddress === '' || parseHttpAddress(httpAddress) !== undefined, 'must be "host:port", ":port", "[ipv6]:port" or "" to disable');

  return {
    provisionerName,
    kubeconfig,
    workers: read.int('workers', 16),
    cephMaxInflight: read.int('ceph-max-inflight', 16),
    cephMountTimeoutMs: read.duration('ceph-mount-timeout', '10s'),
    cephMonOpTimeoutMs: read.duration('ceph-mon-op-timeout', '30s'),
    cephOsdOpTimeoutMs: read.duration('ceph-osd-op-timeout', '30s'),
    kubeApiQps: read.number('kube-api-qps', 50),
    kubeApiBurst: read.int('kube-api-burst', 100),
    resyncPeriodMs: read.duration('resync-period', '10m'),
    attacher: read.bool('attacher', true),
    leaderElect: read.bool('leader-elect', true),
    leaderElectionNamespace: namespace,
    leaderElectionLeaseName: leaseName,
    leaderElectionLeaseDurationMs: leaseDuration,
    leaderElectionRenewDeadlineMs: renewDeadline,
    leaderElectionRetryPeriodMs: retryPeriod,
    identity,
    httpAddress,
    logLevel: read.choice<LogLevel>('log-level', 'info'),
    logFormat: read.choice<LogFormat>('log-format', 'json'),
    help: read.bool('help', false),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

// Configuration from flags and environment variables. Every flag also reads RBD_PROVISIONER_<FLAG IN UPPER_SNAKE>;
// a flag on the command line wins over the environment, which wins over the defaults.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isDeepStrictEqual, parseArgs, type ParseArgsConfig } from 'node:util';
import { DNS_LABEL, DNS_SUBDOMAIN, isKubeName } from './kube/names.js';

export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = (typeof LOG_FORMATS)[number];

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
  /** Backoff of a failed key in every loop's work queue: first delay, doubled per failure up to the max. */
  retryIntervalStartMs: number;
  retryIntervalMaxMs: number;
  attacher: boolean;
  /** --resizer: grow our PVs' images when their claims ask for more (off when ceph-csi's csi-resizer handles them). */
  resizer: boolean;
  /** --snapshotter: cut and delete the snapshots of VolumeSnapshotContents of our volumes (when the CRDs are served). */
  snapshotter: boolean;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionLeaseName: string;
  leaderElectionLeaseDurationMs: number;
  leaderElectionRenewDeadlineMs: number;
  leaderElectionRetryPeriodMs: number;
  identity: string;
  /** "" disables the HTTP server. */
  httpAddress: string;
  /** --ceph-csi-config: ceph-csi's config map whose entries for our clusterIDs we keep; undefined (default): off. */
  cephCsiConfig: { namespace: string; name: string } | undefined;
  /** --take-over-provisioner: retired provisioners (e.g. ceph.com/rbd) whose Released Delete PVs we delete; [] (default): none. */
  takeOverProvisioners: string[];
  logLevel: LogLevel;
  logFormat: LogFormat;
  help: boolean;
  /** --version: print the version and exit. */
  version: boolean;
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

/** A default computed at parse time, from the environment or another flag; `derived` is what --help shows. */
interface Derived { readonly derived: string }
const derived = (text: string): Derived => ({ derived: text });

// Each flag once: its kind, its default as a typed value (durations in milliseconds), its range or choices, and
// what --help says. parseConfig reads every flag through these declarations, and helpText prints them.
// `alias`: the name kubernetes-csi's external-provisioner gives the same flag, accepted on the command line (it has no
// environment variable of its own); given together with the flag itself, both must say the same.
// `commandLineOnly`: no environment variable (RBD_PROVISIONER_VERSION might well hold an image tag).
type FlagSpec = { readonly meaning: string; readonly alias?: string; readonly commandLineOnly?: boolean } & (
  | { readonly kind: 'string'; readonly default: string | Derived }
  | { readonly kind: 'int'; readonly default: number; readonly min: number; readonly max?: number }
  | { readonly kind: 'number'; readonly default: number; readonly min: number }
  | { readonly kind: 'bool'; readonly default: boolean }
  | { readonly kind: 'duration'; readonly default: number }
  | { readonly kind: 'enum'; readonly default: string; readonly allowed: readonly string[] }
);

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
const LOG_FORMATS = ['json', 'text'] as const;
const SECOND = 1000;
const MINUTE = 60 * SECOND;

const FLAGS = {
  'provisioner-name': { kind: 'string', default: DEFAULT_PROVISIONER_NAME, meaning: 'the name StorageClasses use in their provisioner field' },
  kubeconfig: { kind: 'string', default: derived('env KUBECONFIG, else in-cluster, else ~/.kube/config'), meaning: 'kubeconfig file for API access' },
  workers: { kind: 'int', default: 16, min: 1, max: 1000, alias: 'worker-threads', meaning: 'claims/volumes reconciled at once' },
  'ceph-max-inflight': { kind: 'int', default: 16, min: 1, max: 1024, meaning: 'librbd/librados calls in flight in the process' },
  'ceph-mount-timeout': { kind: 'duration', default: 10 * SECOND, meaning: 'librados client_mount_timeout' },
  'ceph-mon-op-timeout': { kind: 'duration', default: 30 * SECOND, meaning: 'rados_mon_op_timeout' },
  'ceph-osd-op-timeout': { kind: 'duration', default: 30 * SECOND, meaning: 'rados_osd_op_timeout' },
  'kube-api-qps': { kind: 'number', default: 50, min: 0.01, meaning: 'client-side rate limit for API calls (queries per second)' },
  'kube-api-burst': { kind: 'int', default: 100, min: 1, meaning: 'client-side burst for API calls' },
  'resync-period': { kind: 'duration', default: 10 * MINUTE, meaning: 'informer resync: every object is reconciled again this often' },
  'retry-interval-start': { kind: 'duration', default: 1 * SECOND, meaning: 'first retry delay of a failed claim, volume or attachment; doubles with each failure up to --retry-interval-max' },
  'retry-interval-max': { kind: 'duration', default: 5 * MINUTE, meaning: 'longest retry delay of a failed claim, volume or attachment, and the delay after an error only a human can fix (e.g. a bad StorageClass)' },
  attacher: { kind: 'bool', default: true, meaning: 'mark VolumeAttachments of our PVs attached (off when ceph-csi\'s csi-attacher runs)' },
  resizer: { kind: 'bool', default: true, meaning: 'grow the images and PVs of claims whose request grows (off when ceph-csi\'s csi-resizer handles rbd.csi.ceph.com)' },
  snapshotter: { kind: 'bool', default: true, meaning: 'cut and delete RBD snapshots for VolumeSnapshotContents of our volumes, when the API server serves snapshot.storage.k8s.io/v1 (off when ceph-csi\'s csi-snapshotter handles rbd.csi.ceph.com)' },
  'leader-elect': { kind: 'bool', default: true, alias: 'leader-election', meaning: 'run leader election on a coordination.k8s.io Lease; only the leader acts' },
  'leader-election-namespace': { kind: 'string', default: derived('env POD_NAMESPACE, else "default"'), meaning: 'namespace of the Lease' },
  'leader-election-lease-name': { kind: 'string', default: derived('the provisioner name with dots and slashes as dashes'), meaning: 'name of the Lease' },
  'leader-election-lease-duration': { kind: 'duration', default: 15 * SECOND, meaning: 'how long standbys wait before taking over a lease that is not renewed' },
  'leader-election-renew-deadline': { kind: 'duration', default: 10 * SECOND, meaning: 'the leader gives up (and stops all work) when it cannot renew for this long' },
  'leader-election-retry-period': { kind: 'duration', default: 2 * SECOND, meaning: 'interval between acquire/renew attempts' },
  identity: { kind: 'string', default: derived('env POD_NAME, else hostname + "_" + random'), meaning: 'lease holder identity' },
  'ceph-csi-config': {
    kind: 'string', default: '',
    meaning: 'keep the entries our classes\' and PVs\' clusterIDs need in ceph-csi\'s config map <namespace>/<name> (e.g. ceph-csi-rbd/ceph-csi-config); "" leaves it alone',
  },
  'take-over-provisioner': {
    kind: 'string', default: '',
    meaning: 'delete the images of Released PVs with reclaim policy Delete that these retired provisioners made (comma-separated, e.g. ceph.com/rbd for the external-storage rbd-provisioner); "" takes over none',
  },
  'http-address': { kind: 'string', default: ':8080', alias: 'http-endpoint', meaning: 'address for /healthz /readyz /metrics ("" disables)' },
  'log-level': { kind: 'enum', default: 'info', allowed: LOG_LEVELS, meaning: 'log level' },
  'log-format': { kind: 'enum', default: 'json', allowed: LOG_FORMATS, meaning: 'log format' },
  help: { kind: 'bool', default: false, meaning: 'print this help and exit' },
  version: { kind: 'bool', default: false, commandLineOnly: true, meaning: 'print the version and exit' },
} as const satisfies Record<string, FlagSpec>;

type Flags = typeof FLAGS;
type FlagName = keyof Flags;
/** The flags whose declaration fits S. */
type FlagsLike<S> = { [N in FlagName]: Flags[N] extends S ? N : never }[FlagName];

const FLAG_NAMES = Object.keys(FLAGS) as FlagName[];
const isFlagName = (name: string): name is FlagName => Object.hasOwn(FLAGS, name);
/** Alias -> the flag it names. */
const ALIASES: ReadonlyMap<string, FlagName> = new Map(FLAG_NAMES.flatMap((flag) => {
  const { alias } = FLAGS[flag] as FlagSpec;
  return alias === undefined ? [] : [[alias, flag] as const];
}));

export function envName(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replace(/-/g, '_');
}

function defaultText(spec: FlagSpec): string {
  if (typeof spec.default === 'object') return spec.default.derived;
  return spec.kind === 'duration' ? formatDuration(spec.default) : String(spec.default);
}

export function helpText(): string {
  const lines = ['Usage: rbd-provisioner [flags]', '       rbd-provisioner cluster-id --monitors=<list> [--rados-namespace=<ns>]   (see cluster-id --help)', '', 'Flags (each also read from the environment variable shown; a flag wins; an alias is read from the command line only):'];
  for (const flag of FLAG_NAMES) {
    const spec: FlagSpec = FLAGS[flag];
    const value = spec.kind === 'bool' ? '' : spec.kind === 'enum' ? `=<${spec.allowed.join('|')}>` : `=<${spec.kind}>`;
    const { alias } = spec;
    lines.push(`  --${flag}${value}${alias === undefined ? '' : `   (alias --${alias}, as in external-provisioner)`}`);
    lines.push(`      ${spec.meaning}`);
    lines.push(spec.commandLineOnly === true ? '      command line only' : `      env ${envName(flag)}; default: ${defaultText(spec)}`);
  }
  lines.push('', 'Durations are Go-style: "500ms", "15s", "2m", "1h30m".');
  return lines.join('\n') + '\n';
}

const DURATION_UNITS_MS = { h: 60 * MINUTE, m: MINUTE, s: SECOND, ms: 1, us: 1e-3, µs: 1e-3, ns: 1e-6 } as const;

/** Parses a Go duration ("1h2m3.5s", "500ms", "0") into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$/.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS];
  }
  return total;
}

export interface ConfigDefaults {
  hostname?: () => string;
  randomSuffix?: () => string;
}

/** Milliseconds as a Go duration that parseDuration reads back ("10m", "1h30m", "1500ms"); whole ms only. */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms);
  let text = '';
  for (const unit of ['h', 'm', 's', 'ms'] as const) {
    const size = DURATION_UNITS_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * size;
  }
  return text === '' ? '0' : text;
}

type Raw = Map<FlagName, { value: string; source: string }>;
/** Per flag, the last value given on the command line under each of its names (the flag, its alias). */
type Spellings = Map<FlagName, Map<string, string>>;

// How parseArgs splits each flag: booleans take no separate value (`--leader-elect false` is an error), the rest
// take `--flag=value` or `--flag value`. Not strict: unknown flags, positionals and missing values come back as
// tokens, so the errors below can name the flag the way the tests and users expect.
const PARSE_OPTIONS: ParseArgsConfig['options'] = Object.fromEntries([
  ...FLAG_NAMES.map((flag) => [
    flag,
    { type: FLAGS[flag].kind === 'bool' ? 'boolean' : 'string', ...(flag === 'help' && { short: 'h' }) },
  ]),
  ...[...ALIASES].map(([alias, flag]) => [alias, { type: FLAGS[flag].kind === 'bool' ? 'boolean' : 'string' }]),
]);

function collect(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { raw: Raw; spellings: Spellings } {
  const raw: Raw = new Map();
  const spellings: Spellings = new Map();
  for (const flag of FLAG_NAMES) {
    if ((FLAGS[flag] as FlagSpec).commandLineOnly === true) continue;
    const value = env[envName(flag)];
    if (value !== undefined) raw.set(flag, { value, source: `env ${envName(flag)}` });
  }
  const { tokens } = parseArgs({ args: [...argv], options: PARSE_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      throw new ConfigError(token.value, `unexpected argument "${token.value}": flags are --name=value (see --help)`);
    }
    const flag = isFlagName(token.name) ? token.name : ALIASES.get(token.name);
    if (flag === undefined) throw new ConfigError(token.rawName, `unknown flag ${token.rawName} (see --help)`);
    let value = token.value;
    if (value === undefined) {
      if (FLAGS[flag].kind !== 'bool') throw new ConfigError(`--${token.name}`, `--${token.name} needs a value`);
      value = 'true';
    }
    raw.set(flag, { value, source: token.rawName });
    const given = spellings.get(flag) ?? new Map<string, string>();
    given.set(`--${token.name}`, value);
    spellings.set(flag, given);
  }
  return { raw, spellings };
}

/** A flag given under both its names must have one meaning: compared as parsed ("1" and "true" agree). */
function checkAliases(spellings: Spellings): void {
  for (const [flag, given] of spellings) {
    if (given.size < 2) continue;
    const [[first, firstValue], [second, secondValue]] = [...given] as [[string, string], [string, string]];
    const parse = (name: string, value: string): unknown => new Reader(new Map([[flag, { value, source: name }]])).value(flag);
    if (!isDeepStrictEqual(parse(first, firstValue), parse(second, secondValue))) {
      throw new ConfigError(`--${flag}`,
        `${first}=${firstValue} and ${second}=${secondValue} disagree (--${(FLAGS[flag] as FlagSpec).alias ?? flag} is another name for --${flag}): give one of them`);
    }
  }
}

/** Reads each flag as its declaration says: the value given (flag, else env), checked, else the declared default. */
class Reader {
  constructor(private readonly raw: Raw) {}

  private fail(flag: FlagName, expected: string, got: string): never {
    const source = this.raw.get(flag)?.source ?? `--${flag}`;
    const via = source.startsWith('env') ? ` (from ${source})` : source === `--${flag}` ? '' : ` (given as ${source})`;
    throw new ConfigError(`--${flag}`, `--${flag}${via}: ${expected}, got "${got}"`);
  }

  private text(flag: FlagName): string | undefined {
    return this.raw.get(flag)?.value;
  }

  string(flag: FlagsLike<{ kind: 'string'; default: string }>): string {
    return this.text(flag) ?? FLAGS[flag].default;
  }

  /** A flag with a derived default: undefined when not given, for the caller to derive. */
  given(flag: FlagsLike<{ default: Derived }>): string | undefined {
    return this.text(flag);
  }

  int(flag: FlagsLike<{ kind: 'int' }>): number {
    const spec: Extract<FlagSpec, { kind: 'int' }> = FLAGS[flag];
    const text = this.text(flag);
    if (text === undefined) return spec.default;
    const value = /^[+]?\d+$/.test(text.trim()) ? Number(text) : NaN;
    const range = spec.max === undefined ? `>= ${spec.min}` : `from ${spec.min} to ${spec.max}`;
    if (!Number.isSafeInteger(value) || value < spec.min || (spec.max !== undefined && value > spec.max)) {
      this.fail(flag, `must be an integer ${range}`, text);
    }
    return value;
  }

  number(flag: FlagsLike<{ kind: 'number' }>): number {
    const spec = FLAGS[flag];
    const text = this.text(flag);
    if (text === undefined) return spec.default;
    const value = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(value) || value < spec.min) this.fail(flag, `must be a number >= ${spec.min}`, text);
    return value;
  }

  bool(flag: FlagsLike<{ kind: 'bool' }>): boolean {
    const text = this.text(flag);
    if (text === undefined) return FLAGS[flag].default;
    const lowered = text.trim().toLowerCase();
    if (['true', '1', 't', 'yes'].includes(lowered)) return true;
    if (['false', '0', 'f', 'no'].includes(lowered)) return false;
    return this.fail(flag, 'must be true or false', text);
  }

  /** Milliseconds. */
  duration(flag: FlagsLike<{ kind: 'duration' }>): number {
    const text = this.text(flag);
    if (text === undefined) return FLAGS[flag].default;
    const value = parseDuration(text.trim());
    if (value === undefined || value <= 0) {
      this.fail(flag, 'must be a positive Go-style duration such as "500ms", "15s", "2m" or "1h"', text);
    }
    return value;
  }

  choice<F extends FlagsLike<{ kind: 'enum' }>>(flag: F): Flags[F]['allowed'][number] {
    const spec: Extract<FlagSpec, { kind: 'enum' }> = FLAGS[flag];
    const text = this.text(flag);
    const lowered = text?.trim().toLowerCase() ?? spec.default;
    if (text !== undefined && !spec.allowed.includes(lowered)) this.fail(flag, `must be one of ${spec.allowed.join(', ')}`, text);
    return lowered as Flags[F]['allowed'][number];
  }

  /** The flag's value as its kind reads it (a string flag trimmed; undefined when a derived default applies). */
  value(flag: FlagName): unknown {
    const spec: FlagSpec = FLAGS[flag];
    switch (spec.kind) {
      case 'int': return this.int(flag as FlagsLike<{ kind: 'int' }>);
      case 'number': return this.number(flag as FlagsLike<{ kind: 'number' }>);
      case 'bool': return this.bool(flag as FlagsLike<{ kind: 'bool' }>);
      case 'duration': return this.duration(flag as FlagsLike<{ kind: 'duration' }>);
      case 'enum': return this.choice(flag as FlagsLike<{ kind: 'enum' }>);
      case 'string': return this.text(flag)?.trim();
    }
  }

  check(flag: FlagName, ok: boolean, expected: string): void {
    if (!ok) this.fail(flag, expected, this.text(flag) ?? '');
  }
}

/** A Lease name must be a DNS-1123 subdomain. */
export function leaseNameFor(provisionerName: string): string {
  return provisionerName.toLowerCase().replace(/[./]/g, '-');
}

const QUALIFIED_NAME = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;

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
  const { raw, spellings } = collect(argv, env);
  const asked = new Reader(raw);
  // Nothing else matters when help or the version is asked for; a bad value elsewhere must not hide them.
  if (asked.bool('help')) return { ...parseConfig([], {}, defaults), help: true };
  if (asked.bool('version')) return { ...parseConfig([], {}, defaults), version: true };
  checkAliases(spellings);
  const read = new Reader(raw);

  const provisionerName = read.string('provisioner-name').trim();
  read.check('provisioner-name', QUALIFIED_NAME.test(provisionerName), 'must be a name like "rbd.provisioner.ceph.io" (letters, digits, ".", "-", "_", "/")');

  const kubeconfigText = read.given('kubeconfig') ?? env['KUBECONFIG'] ?? '';
  // KUBECONFIG may list several files; client-node's loadFromFile takes one, so take the first.
  const kubeconfig = kubeconfigText.split(':').find((part) => part.trim() !== '')?.trim();

  const leaseDuration = read.duration('leader-election-lease-duration');
  const renewDeadline = read.duration('leader-election-renew-deadline');
  const retryPeriod = read.duration('leader-election-retry-period');
  read.check('leader-election-renew-deadline', renewDeadline < leaseDuration, 'must be shorter than --leader-election-lease-duration');
  // Same rule as client-go: retries are jittered by up to 1.2x and must fit in the renew deadline.
  read.check('leader-election-retry-period', retryPeriod * 1.2 < renewDeadline, 'must be shorter than --leader-election-renew-deadline / 1.2');

  const leaseName = (read.given('leader-election-lease-name') ?? leaseNameFor(provisionerName)).trim();
  read.check('leader-election-lease-name', isKubeName(DNS_SUBDOMAIN, leaseName), 'must be a DNS-1123 subdomain (lower-case letters, digits, "-", ".")');
  const namespace = (read.given('leader-election-namespace') ?? nonEmpty(env['POD_NAMESPACE']) ?? 'default').trim();
  read.check('leader-election-namespace', isKubeName(DNS_LABEL, namespace), 'must be a namespace name (DNS-1123 label)');

  const randomSuffix = defaults.randomSuffix ?? ((): string => randomBytes(4).toString('hex'));
  const identity = read.given('identity')?.trim()
    ?? nonEmpty(env['POD_NAME']) ?? `${(defaults.hostname ?? hostname)()}_${randomSuffix()}`;
  read.check('identity', identity !== '', 'must not be empty');

  const retryIntervalStart = read.duration('retry-interval-start');
  const retryIntervalMax = read.duration('retry-interval-max');
  read.check('retry-interval-max', retryIntervalStart <= retryIntervalMax, 'must not be shorter than --retry-interval-start');

  const httpAddress = read.string('http-address').trim();
  read.check('http-address', httpAddress === '' || parseHttpAddress(httpAddress) !== undefined, 'must be "host:port", ":port", "[ipv6]:port" or "" to disable');

  const cephCsiConfigText = read.string('ceph-csi-config').trim();
  let cephCsiConfig: Config['cephCsiConfig'];
  if (cephCsiConfigText !== '') {
    const [csiNamespace = '', csiName = '', ...rest] = cephCsiConfigText.split('/');
    read.check('ceph-csi-config', rest.length === 0 && isKubeName(DNS_LABEL, csiNamespace) && isKubeName(DNS_SUBDOMAIN, csiName),
      'must be <namespace>/<name> of a ConfigMap (e.g. ceph-csi-rbd/ceph-csi-config), or "" for off');
    cephCsiConfig = { namespace: csiNamespace, name: csiName };
  }

  const takeOverProvisioners = read.string('take-over-provisioner').split(',').map((name) => name.trim()).filter((name) => name !== '');
  for (const name of takeOverProvisioners) {
    read.check('take-over-provisioner', QUALIFIED_NAME.test(name), `${JSON.stringify(name)} must be a provisioner name like "ceph.com/rbd" (letters, digits, ".", "-", "_", "/"), comma-separated, or "" for none`);
    read.check('take-over-provisioner', name !== provisionerName, `${JSON.stringify(name)} is this provisioner's own name (--provisioner-name); list only retired provisioners, such as "ceph.com/rbd"`);
  }

  return {
    provisionerName,
    kubeconfig,
    workers: read.int('workers'),
    cephMaxInflight: read.int('ceph-max-inflight'),
    cephMountTimeoutMs: read.duration('ceph-mount-timeout'),
    cephMonOpTimeoutMs: read.duration('ceph-mon-op-timeout'),
    cephOsdOpTimeoutMs: read.duration('ceph-osd-op-timeout'),
    kubeApiQps: read.number('kube-api-qps'),
    kubeApiBurst: read.int('kube-api-burst'),
    resyncPeriodMs: read.duration('resync-period'),
    retryIntervalStartMs: retryIntervalStart,
    retryIntervalMaxMs: retryIntervalMax,
    attacher: read.bool('attacher'),
    resizer: read.bool('resizer'),
    snapshotter: read.bool('snapshotter'),
    leaderElect: read.bool('leader-elect'),
    leaderElectionNamespace: namespace,
    leaderElectionLeaseName: leaseName,
    leaderElectionLeaseDurationMs: leaseDuration,
    leaderElectionRenewDeadlineMs: renewDeadline,
    leaderElectionRetryPeriodMs: retryPeriod,
    identity,
    httpAddress,
    cephCsiConfig,
    takeOverProvisioners,
    logLevel: read.choice('log-level'),
    logFormat: read.choice('log-format'),
    help: read.bool('help'),
    version: read.bool('version'),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

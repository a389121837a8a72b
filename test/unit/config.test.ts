import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, formatDuration, helpText, parseConfig, parseDuration, parseHttpAddress } from '../../src/config.js';

const fixed = { hostname: () => 'node-1', randomSuffix: () => 'abcd1234' };

function parseError(argv: string[], env: Record<string, string> = {}): ConfigError {
  try {
    parseConfig(argv, env, fixed);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfig', () => {
  test('defaults match the contract', () => {
    const config = parseConfig([], {}, fixed);
    assert.deepEqual(config, {
      provisionerName: 'rbd.provisioner.ceph.io',
      kubeconfig: undefined,
      workers: 16,
      cephMaxInflight: 16,
      cephMountTimeoutMs: 10_000,
      cephMonOpTimeoutMs: 30_000,
      cephOsdOpTimeoutMs: 30_000,
      kubeApiQps: 50,
      kubeApiBurst: 100,
      resyncPeriodMs: 600_000,
      retryIntervalStartMs: 1_000,
      retryIntervalMaxMs: 300_000,
      attacher: true,
      resizer: true,
      snapshotter: true,
      leaderElect: true,
      leaderElectionNamespace: 'default',
      leaderElectionLeaseName: 'rbd-provisioner-ceph-io',
      leaderElectionLeaseDurationMs: 15_000,
      leaderElectionRenewDeadlineMs: 10_000,
      leaderElectionRetryPeriodMs: 2_000,
      identity: 'node-1_abcd1234',
      httpAddress: ':8080',
      cephCsiConfig: undefined,
      takeOverProvisioners: [],
      logLevel: 'info',
      logFormat: 'json',
      help: false,
      version: false,
    });
  });

  test('environment fallbacks: KUBECONFIG, POD_NAMESPACE, POD_NAME', () => {
    const config = parseConfig([], { KUBECONFIG: '/a/config:/b/config', POD_NAMESPACE: 'storage', POD_NAME: 'rbd-0' }, fixed);
    assert.equal(config.kubeconfig, '/a/config');
    assert.equal(config.leaderElectionNamespace, 'storage');
    assert.equal(config.identity, 'rbd-0');
  });

  const precedence: { name: string; argv: string[]; env: Record<string, string>; field: keyof ReturnType<typeof parseConfig>; want: unknown }[] = [
    { name: 'env sets workers', argv: [], env: { RBD_PROVISIONER_WORKERS: '4' }, field: 'workers', want: 4 },
    { name: 'flag beats env', argv: ['--workers=8'], env: { RBD_PROVISIONER_WORKERS: '4' }, field: 'workers', want: 8 },
    { name: 'flag with separate value', argv: ['--workers', '3'], env: {}, field: 'workers', want: 3 },
    { name: 'our env beats KUBECONFIG', argv: [], env: { KUBECONFIG: '/x', RBD_PROVISIONER_KUBECONFIG: '/y' }, field: 'kubeconfig', want: '/y' },
    { name: 'our env beats POD_NAME', argv: [], env: { POD_NAME: 'p', RBD_PROVISIONER_IDENTITY: 'me' }, field: 'identity', want: 'me' },
    { name: 'bare bool flag', argv: ['--leader-elect'], env: { RBD_PROVISIONER_LEADER_ELECT: 'false' }, field: 'leaderElect', want: true },
    { name: 'bool flag =false', argv: ['--leader-elect=false'], env: {}, field: 'leaderElect', want: false },
    { name: 'duration in env', argv: [], env: { RBD_PROVISIONER_RESYNC_PERIOD: '1h30m' }, field: 'resyncPeriodMs', want: 5_400_000 },
    { name: 'fractional qps', argv: ['--kube-api-qps=2.5'], env: {}, field: 'kubeApiQps', want: 2.5 },
    { name: 'empty http address disables', argv: ['--http-address='], env: {}, field: 'httpAddress', want: '' },
    { name: 'lease name derived from provisioner name', argv: ['--provisioner-name=ceph.com/rbd'], env: {}, field: 'leaderElectionLeaseName', want: 'ceph-com-rbd' },
    { name: 'log level is case-insensitive', argv: ['--log-level=DEBUG'], env: {}, field: 'logLevel', want: 'debug' },
  ];
  for (const row of precedence) {
    test(`precedence: ${row.name}`, () => {
      assert.deepEqual(parseConfig(row.argv, row.env, fixed)[row.field], row.want);
    });
  }

  const bad: { name: string; argv: string[]; env?: Record<string, string>; flag: string; fragment: string }[] = [
    { name: 'bad duration', argv: ['--resync-period=10 minutes'], flag: '--resync-period', fragment: 'Go-style duration' },
    { name: 'zero duration', argv: ['--ceph-mount-timeout=0'], flag: '--ceph-mount-timeout', fragment: 'positive' },
    { name: 'bad duration from env names the env var', argv: [], env: { RBD_PROVISIONER_CEPH_OSD_OP_TIMEOUT: '30' }, flag: '--ceph-osd-op-timeout', fragment: 'env RBD_PROVISIONER_CEPH_OSD_OP_TIMEOUT' },
    { name: 'workers not an integer', argv: ['--workers=many'], flag: '--workers', fragment: 'integer from 1 to 1000' },
    { name: 'workers zero', argv: ['--workers=0'], flag: '--workers', fragment: 'integer from 1 to 1000' },
    { name: 'qps negative', argv: ['--kube-api-qps=-1'], flag: '--kube-api-qps', fragment: 'number >= 0.01' },
    { name: 'log level', argv: ['--log-level=trace'], flag: '--log-level', fragment: 'one of error, warn, info, debug' },
    { name: 'log format', argv: ['--log-format=xml'], flag: '--log-format', fragment: 'one of json, text' },
    { name: 'bool', argv: ['--leader-elect=maybe'], flag: '--leader-elect', fragment: 'true or false' },
    { name: 'renew deadline >= lease duration', argv: ['--leader-election-renew-deadline=20s'], flag: '--leader-election-renew-deadline', fragment: 'shorter than --leader-election-lease-duration' },
    { name: 'retry period too long', argv: ['--leader-election-retry-period=9s'], flag: '--leader-election-retry-period', fragment: 'renew-deadline' },
    { name: 'http address', argv: ['--http-address=8080'], flag: '--http-address', fragment: ':port' },
    { name: 'unknown flag', argv: ['--wokers=2'], flag: '--wokers', fragment: 'unknown flag' },
    { name: 'positional argument', argv: ['run'], flag: 'run', fragment: 'unexpected argument' },
    { name: 'missing value', argv: ['--workers'], flag: '--workers', fragment: 'needs a value' },
    { name: 'provisioner name', argv: ['--provisioner-name=bad name'], flag: '--provisioner-name', fragment: 'rbd.provisioner.ceph.io' },
    { name: 'lease name', argv: ['--leader-election-lease-name=Bad_Name'], flag: '--leader-election-lease-name', fragment: 'DNS-1123' },
    { name: 'retry interval start zero', argv: ['--retry-interval-start=0'], flag: '--retry-interval-start', fragment: 'positive' },
    { name: 'retry interval max below start', argv: ['--retry-interval-start=10s', '--retry-interval-max=5s'], flag: '--retry-interval-max', fragment: 'must not be shorter than --retry-interval-start' },
  ];
  for (const row of bad) {
    test(`rejects ${row.name}`, () => {
      const error = parseError(row.argv, row.env);
      assert.equal(error.flag, row.flag);
      assert.match(error.message, new RegExp(row.fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });
  }

  test('--help wins over bad values and lists every flag with its env name and default', () => {
    assert.equal(parseConfig(['--workers=0', '--help'], {}, fixed).help, true);
    const text = helpText();
    for (const flag of ['provisioner-name', 'kubeconfig', 'workers', 'ceph-max-inflight', 'ceph-mount-timeout', 'ceph-mon-op-timeout', 'ceph-osd-op-timeout', 'kube-api-qps', 'kube-api-burst', 'resync-period', 'leader-elect', 'leader-election-namespace', 'leader-election-lease-name', 'leader-election-lease-duration', 'leader-election-renew-deadline', 'leader-election-retry-period', 'identity', 'http-address', 'log-level', 'log-format', 'help', 'retry-interval-start', 'retry-interval-max']) {
      assert.match(text, new RegExp(`--${flag}\\b`));
      assert.match(text, new RegExp(`env RBD_PROVISIONER_${flag.toUpperCase().replace(/-/g, '_')}; default: `));
    }
  });
});

describe('flag splitting', () => {
  test('-h asks for help', () => assert.equal(parseConfig(['-h'], {}, fixed).help, true));
  test('a bool flag takes no separate value', () => {
    const error = parseError(['--leader-elect', 'false']);
    assert.equal(error.flag, 'false');
    assert.match(error.message, /unexpected argument "false"/);
  });
  test('a value may start with a dash', () => assert.equal(parseConfig(['--identity', '-me-'], {}, fixed).identity, '-me-'));
  test('the last of a repeated flag wins', () => assert.equal(parseConfig(['--workers=2', '--workers=3'], {}, fixed).workers, 3));
  test('an unknown short flag is named as written', () => assert.equal(parseError(['-x']).flag, '-x'));
});

describe('help text', () => {
  // Each default is declared once, as a typed value: the help shows what parseConfig returns when nothing is set.
  const defaults = parseConfig([], {}, fixed);
  const rows: Array<[string, string, unknown]> = [
    ['ceph-mount-timeout', '10s', defaults.cephMountTimeoutMs],
    ['ceph-mon-op-timeout', '30s', defaults.cephMonOpTimeoutMs],
    ['resync-period', '10m', defaults.resyncPeriodMs],
    ['leader-election-retry-period', '2s', defaults.leaderElectionRetryPeriodMs],
    ['workers', '16', defaults.workers],
    ['kube-api-qps', '50', defaults.kubeApiQps],
    ['leader-elect', 'true', defaults.leaderElect],
    ['log-format', 'json', defaults.logFormat],
    ['http-address', ':8080', defaults.httpAddress],
    ['retry-interval-start', '1s', defaults.retryIntervalStartMs],
    ['retry-interval-max', '5m', defaults.retryIntervalMaxMs],
  ];
  for (const [flag, shown, value] of rows) {
    test(`--${flag} shows its default ${shown}`, () => {
      const env = `RBD_PROVISIONER_${flag.toUpperCase().replace(/-/g, '_')}`;
      assert.ok(helpText().includes(`env ${env}; default: ${shown}\n`), helpText());
      const parsed = typeof value === 'number' && /[a-z]$/.test(shown) ? parseDuration(shown) : shown;
      assert.equal(String(parsed), String(value));
    });
  }
  test('derived defaults say where they come from', () => {
    assert.match(helpText(), /env RBD_PROVISIONER_LEADER_ELECTION_NAMESPACE; default: env POD_NAMESPACE, else "default"\n/);
  });
});

describe('formatDuration', () => {
  const rows: [number, string][] = [[0, '0'], [500, '500ms'], [10_000, '10s'], [600_000, '10m'], [5_400_000, '1h30m'], [1_500, '1s500ms']];
  for (const [ms, text] of rows) {
    test(`${ms} ms is "${text}" and reads back`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }
});

describe('parseDuration', () => {
  const rows: [string, number | undefined][] = [
    ['500ms', 500], ['15s', 15_000], ['2m', 120_000], ['1h', 3_600_000], ['1h2m3.5s', 3_723_500], ['1.5s', 1500], ['0', 0],
    ['10', undefined], ['s', undefined], ['1d', undefined], ['-1s', undefined], ['', undefined], ['1s ', undefined],
  ];
  for (const [text, want] of rows) test(`"${text}"`, () => assert.equal(parseDuration(text), want));
});

describe('parseHttpAddress', () => {
  const rows: [string, ReturnType<typeof parseHttpAddress>][] = [
    [':8080', { host: undefined, port: 8080 }],
    ['127.0.0.1:9090', { host: '127.0.0.1', port: 9090 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['8080', undefined],
    [':70000', undefined],
  ];
  for (const [text, want] of rows) test(`"${text}"`, () => assert.deepEqual(parseHttpAddress(text), want));
});

describe('--attacher', () => {
  test('on by default; off by flag or by RBD_PROVISIONER_ATTACHER; a bad value names the flag', () => {
    assert.equal(parseConfig([], {}, fixed).attacher, true);
    assert.equal(parseConfig(['--attacher=false'], {}, fixed).attacher, false);
    assert.equal(parseConfig([], { RBD_PROVISIONER_ATTACHER: 'false' }, fixed).attacher, false);
    assert.equal(parseConfig(['--attacher'], { RBD_PROVISIONER_ATTACHER: 'false' }, fixed).attacher, true);
    assert.match(parseError(['--attacher=maybe']).message, /^--attacher: must be true or false, got "maybe"$/);
    assert.match(helpText(), /--attacher\n.*VolumeAttachments.*\n\s+env RBD_PROVISIONER_ATTACHER; default: true/);
  });
});

describe('--resizer', () => {
  test('on by default; off with the flag or the environment; the flag wins', () => {
    assert.equal(parseConfig([], {}, fixed).resizer, true);
    assert.equal(parseConfig(['--resizer=false'], {}, fixed).resizer, false);
    assert.equal(parseConfig([], { RBD_PROVISIONER_RESIZER: 'false' }, fixed).resizer, false);
    assert.equal(parseConfig(['--resizer'], { RBD_PROVISIONER_RESIZER: 'false' }, fixed).resizer, true);
    assert.match(parseError(['--resizer=maybe']).message, /^--resizer: must be true or false, got "maybe"$/);
    assert.match(helpText(), /--resizer\n.*csi-resizer.*\n\s+env RBD_PROVISIONER_RESIZER; default: true/);
  });
});

describe('--ceph-csi-config', () => {
  test('off by default; <namespace>/<name> by flag or RBD_PROVISIONER_CEPH_CSI_CONFIG; anything else names the flag', () => {
    assert.equal(parseConfig([], {}, fixed).cephCsiConfig, undefined);
    assert.equal(parseConfig(['--ceph-csi-config='], {}, fixed).cephCsiConfig, undefined);
    assert.deepEqual(parseConfig(['--ceph-csi-config=ceph-csi-rbd/ceph-csi-config'], {}, fixed).cephCsiConfig, { namespace: 'ceph-csi-rbd', name: 'ceph-csi-config' });
    assert.deepEqual(parseConfig([], { RBD_PROVISIONER_CEPH_CSI_CONFIG: 'csi/cfg.v1' }, fixed).cephCsiConfig, { namespace: 'csi', name: 'cfg.v1' });
    for (const bad of ['ceph-csi-config', 'a/b/c', '/name', 'ns/', 'Bad_NS/x', 'ns/Bad_Name']) {
      assert.match(parseError([`--ceph-csi-config=${bad}`]).message, /^--ceph-csi-config: must be <namespace>\/<name> of a ConfigMap/, bad);
    }
    assert.match(helpText(), /--ceph-csi-config=<string>\n.*ceph-csi's config map.*\n\s+env RBD_PROVISIONER_CEPH_CSI_CONFIG; default: \n/);
  });
});

// kubernetes-csi's external-provisioner names for the same flags, so that its users' command lines work here.
describe('external-provisioner\'s flag names', () => {
  const aliases: { alias: string; flag: string; field: keyof ReturnType<typeof parseConfig>; value: string; want: unknown }[] = [
    { alias: 'leader-election', flag: 'leader-elect', field: 'leaderElect', value: 'false', want: false },
    { alias: 'http-endpoint', flag: 'http-address', field: 'httpAddress', value: ':9090', want: ':9090' },
    { alias: 'worker-threads', flag: 'workers', field: 'workers', value: '100', want: 100 },
  ];
  for (const row of aliases) {
    test(`--${row.alias} is --${row.flag}`, () => {
      assert.deepEqual(parseConfig([`--${row.alias}=${row.value}`], {}, fixed)[row.field], row.want);
      assert.deepEqual(parseConfig([`--${row.alias}`, row.value].filter((arg) => arg !== 'false'), {}, fixed)[row.field],
        row.value === 'false' ? true : row.want, 'with a separate value (a bare bool means true)');
    });
    test(`--${row.alias} beats RBD_PROVISIONER_ of --${row.flag}, like the flag itself`, () => {
      const env = { [`RBD_PROVISIONER_${row.flag.toUpperCase().replace(/-/g, '_')}`]: row.field === 'leaderElect' ? 'true' : '7' };
      assert.deepEqual(parseConfig([`--${row.alias}=${row.value}`], env, fixed)[row.field], row.want);
    });
    test(`--${row.alias} is listed with --${row.flag} in the help`, () => {
      assert.match(helpText(), new RegExp(`  --${row.flag}(=<[a-z]+>)?   \\(alias --${row.alias}, as in external-provisioner\\)\n`));
    });
  }

  test('the names external-provisioner shares with us are ours already: --kube-api-qps/-burst, --leader-election-namespace, --retry-interval-start/-max, --version', () => {
    const config = parseConfig(['--kube-api-qps=5', '--kube-api-burst=10', '--leader-election-namespace=kube-system', '--retry-interval-start=2s', '--retry-interval-max=1m'], {}, fixed);
    assert.deepEqual(
      [config.kubeApiQps, config.kubeApiBurst, config.leaderElectionNamespace, config.retryIntervalStartMs, config.retryIntervalMaxMs],
      [5, 10, 'kube-system', 2_000, 60_000],
    );
    assert.equal(parseConfig(['--version'], {}, fixed).version, true);
  });

  test('a flag and its alias that agree are fine, compared as parsed values', () => {
    assert.equal(parseConfig(['--leader-elect=true', '--leader-election=1'], {}, fixed).leaderElect, true);
    assert.equal(parseConfig(['--workers=8', '--worker-threads=+8'], {}, fixed).workers, 8);
  });

  const conflicts: { argv: string[]; fragment: string }[] = [
    { argv: ['--leader-elect=true', '--leader-election=false'], fragment: '--leader-elect=true and --leader-election=false disagree' },
    { argv: ['--worker-threads=4', '--workers=8'], fragment: '--worker-threads=4 and --workers=8 disagree' },
    { argv: ['--http-address=:8080', '--http-endpoint=:9090'], fragment: '--http-address=:8080 and --http-endpoint=:9090 disagree' },
  ];
  for (const row of conflicts) {
    test(`a flag and its alias that disagree are an error naming both: ${row.argv.join(' ')}`, () => {
      const error = parseError(row.argv);
      assert.match(error.message, new RegExp(row.fragment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      assert.match(error.message, /is another name for/);
    });
  }

  test('a bad value given under the alias names the flag and the alias', () => {
    const error = parseError(['--worker-threads=0']);
    assert.equal(error.flag, '--workers');
    assert.match(error.message, /^--workers \(given as --worker-threads\): must be an integer from 1 to 1000, got "0"/);
  });

  test('an alias has no environment variable of its own', () => {
    assert.equal(parseConfig([], { RBD_PROVISIONER_WORKER_THREADS: '3' }, fixed).workers, 16);
  });

  test('--version is read from the command line only (RBD_PROVISIONER_VERSION may hold an image tag)', () => {
    assert.equal(parseConfig([], { RBD_PROVISIONER_VERSION: 'v1.2.3' }, fixed).version, false);
    assert.equal(parseConfig([], { RBD_PROVISIONER_VERSION: 'true' }, fixed).version, false);
    assert.match(helpText(), /  --version\n      print the version and exit\n      command line only\n/);
  });

  test('--version wins over bad values, as --help does', () => {
    const config = parseConfig(['--workers=0', '--version'], {}, fixed);
    assert.equal(config.version, true);
    assert.equal(config.help, false);
  });
});

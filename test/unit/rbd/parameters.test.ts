import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { featureBits } from '../../../src/ceph/features.js';
import { parseMonitors } from '../../../src/ceph/monitors.js';
import {
  type ClassParameters, classClusterID, deriveClusterID, inTreeMonitorList, KNOWN_PARAMETER_KEYS, ParameterError,
  parseClassParameters,
} from '../../../src/rbd/parameters.js';

const BASE = { monitors: '10.0.0.1:6789', adminSecretName: 'ceph-admin', userSecretName: 'ceph-user' } as const;

function parse(extra: Record<string, string> = {}, base: Record<string, string> = BASE): ClassParameters {
  return parseClassParameters({ ...base, ...extra });
}

function assertParameterError(fn: () => unknown, field: string, fragment: string | RegExp, allowed: string | RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ParameterError, `expected ParameterError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`StorageClass parameter "${field}": `), error.message);
    if (typeof fragment === 'string') assert.ok(error.problem.includes(fragment), `problem: ${error.problem}`);
    else assert.match(error.problem, fragment);
    if (typeof allowed === 'string') assert.ok(error.allowed.includes(allowed), `allowed: ${error.allowed}`);
    else assert.match(error.allowed, allowed);
    assert.ok(error.message.endsWith(`; allowed: ${error.allowed}`), error.message);
    return true;
  });
}

describe('parseClassParameters: defaults', () => {
  const params = parse();
  const cases: Array<[keyof ClassParameters, unknown]> = [
    ['monitors', '10.0.0.1:6789'],
    ['adminId', 'admin'],
    ['adminSecret', { name: 'ceph-admin', namespace: 'default' }],
    ['pool', 'rbd'],
    ['dataPool', undefined],
    ['radosNamespace', ''],
    ['userId', 'admin'],
    ['userSecret', { name: 'ceph-user', namespace: undefined }],
    ['imageFormat', 2],
    ['imageFeatures', ['layering']],
    ['fsType', 'ext4'],
    ['objectSize', 4194304],
    ['objectOrder', 22],
    ['striping', undefined],
    ['imageNamePrefix', ''],
    ['volumeSource', 'csi'],
    ['csiDriver', 'rbd.csi.ceph.com'],
    ['mounter', undefined],
  ];
  for (const [field, expected] of cases) {
    test(`${field} defaults to ${JSON.stringify(expected)}`, () => assert.deepEqual(params[field], expected));
  }
  test('clusterID defaults to an id derived from the monitors', () => {
    assert.equal(params.clusterID, deriveClusterID(parseMonitors('10.0.0.1:6789')));
    assert.match(params.clusterID, /^rbd-[0-9a-f]{32}$/);
  });
  test('userId follows adminId when not set', () => assert.equal(parse({ adminId: 'kube-admin' }).userId, 'kube-admin'));
  test('undefined parameters report the first required key', () => {
    assertParameterError(() => parseClassParameters(undefined), 'monitors', 'missing', 'monitor addresses');
  });
});

describe('parseClassParameters: empty values', () => {
  // "" is refused where it is not a value of its own, naming the key, what leaving it out gives, and what it allows:
  // `pool: ""` used to create images in pool "rbd", and `adminId: ""` to act as "admin".
  // key, what leaving it out gives, what it allows
  const refused: Array<[string, string, string | RegExp]> = [
    ['pool', 'the default "rbd"', 'pool name'],
    ['adminId', 'the default "admin"', 'Ceph client id'],
    ['adminSecretNamespace', 'the default "default"', 'DNS label'],
    ['dataPool', 'data in the image\'s own pool', 'pool name'],
    ['userId', 'the same id as adminId', 'Ceph client id'],
    ['userSecretName', 'nodes to map with their own keyring', 'Secret name'],
    ['userSecretNamespace', 'the claim\'s namespace', 'DNS label'],
    ['imageFormat', 'format 2', /^2$/],
    ['fsType', 'the default "ext4"', 'ext4, xfs, ext3, btrfs'],
    ['clusterID', 'an id derived from the monitors', '1-36'],
    ['objectSize', 'the default 4MiB', '4KiB to 32MiB'],
    ['stripeUnit', 'no striping', 'with stripeCount'],
    ['stripeCount', 'no striping', 'with stripeUnit'],
    ['volumeSource', 'the default "csi"', 'csi, rbd'],
    ['csiDriver', 'the default "rbd.csi.ceph.com"', 'CSI driver name'],
    ['mounter', 'ceph-csi\'s default mounter', 'rbd, rbd-nbd'],
  ];
  for (const [key, absent, allowed] of refused) {
    test(`${key}: "" is refused`, () => {
      assertParameterError(() => parse({ [key]: '' }), key, `empty; leave the key out for ${absent}`, allowed);
    });
  }
  const required: Array<[string, string]> = [['monitors', 'address vector'], ['adminSecretName', 'Secret name']];
  for (const [key, allowed] of required) {
    test(`${key}: "" is missing`, () => assertParameterError(() => parse({ [key]: '' }), key, 'missing: the value is empty', allowed));
  }
  test('"" is a value of its own for imageFeatures, radosNamespace and imageNamePrefix', () => {
    const params = parse({ imageFeatures: '', radosNamespace: '', imageNamePrefix: '' });
    assert.deepEqual(params.imageFeatures, []);
    assert.equal(params.radosNamespace, '');
    assert.equal(params.imageNamePrefix, '');
  });
  test('every key is either refused empty, required, or takes "" as a value', () => {
    const meaningful = ['imageFeatures', 'radosNamespace', 'imageNamePrefix'];
    const decided = new Set([...refused.map(([key]) => key), ...required.map(([key]) => key), ...meaningful]);
    for (const key of KNOWN_PARAMETER_KEYS.filter((k) => !k.includes('/'))) assert.ok(decided.has(key), `no decision for ${key}`);
  });
  test('an alias spelled empty is refused under the spelling written', () => {
    assertParameterError(() => parse({ 'csi.storage.k8s.io/fstype': '' }), 'csi.storage.k8s.io/fstype', 'empty', 'ext4');
  });
  test('an empty spelling beside another spelling with a value is ignored', () => {
    assert.equal(parse({ fsType: '', 'csi.storage.k8s.io/fstype': 'xfs' }).fsType, 'xfs');
    assert.equal(parse({ 'csi.storage.k8s.io/fstype': 'xfs', fsType: '' }).fsType, 'xfs');
  });
  test('whitespace only is empty', () => assertParameterError(() => parse({ pool: '  ' }), 'pool', 'empty', 'pool name'));
});

describe('parseClassParameters: every key', () => {
  const cases: Array<[Record<string, string>, (p: ClassParameters) => unknown, unknown]> = [
    [{ monitors: 'mon-a.example.org' }, (p) => p.monitors, 'mon-a.example.org'],
    [{ adminId: 'provisioner' }, (p) => p.adminId, 'provisioner'],
    [{ adminSecretName: 'admin.key' }, (p) => p.adminSecret.name, 'admin.key'],
    [{ adminSecretNamespace: 'ceph' }, (p) => p.adminSecret.namespace, 'ceph'],
    [{ pool: 'kube' }, (p) => p.pool, 'kube'],
    [{ dataPool: 'ec-data' }, (p) => p.dataPool, 'ec-data'],
    [{ userId: 'kube' }, (p) => p.userId, 'kube'],
    [{ userSecretName: 'ceph-secret' }, (p) => p.userSecret?.name, 'ceph-secret'],
    [{ userSecretNamespace: 'tenants' }, (p) => p.userSecret?.namespace, 'tenants'],
    [{ imageFormat: '2' }, (p) => p.imageFormat, 2],
    [{ imageFeatures: 'layering,exclusive-lock' }, (p) => p.imageFeatures, ['layering', 'exclusive-lock']],
    [{ fsType: 'xfs' }, (p) => p.fsType, 'xfs'],
    [{ fsType: 'ext3' }, (p) => p.fsType, 'ext3'],
    [{ fsType: 'btrfs' }, (p) => p.fsType, 'btrfs'],
    [{ clusterID: 'ba68226a-672f-4ba5-97bc-22840318b2ec' }, (p) => p.clusterID, 'ba68226a-672f-4ba5-97bc-22840318b2ec'],
    [{ radosNamespace: 'tenant-a' }, (p) => p.radosNamespace, 'tenant-a'],
    [{ objectSize: '8M' }, (p) => [p.objectSize, p.objectOrder], [8388608, 23]],
    [{ stripeUnit: '64K', stripeCount: '16' }, (p) => p.striping, { unit: 65536, count: 16 }],
    [{ imageNamePrefix: 'k8s-' }, (p) => p.imageNamePrefix, 'k8s-'],
    [{ volumeSource: 'rbd' }, (p) => p.volumeSource, 'rbd'],
    [{ volumeSource: 'csi' }, (p) => p.volumeSource, 'csi'],
    [{ csiDriver: 'rook-ceph.rbd.csi.ceph.com' }, (p) => p.csiDriver, 'rook-ceph.rbd.csi.ceph.com'],
    [{ mounter: 'rbd-nbd' }, (p) => p.mounter, 'rbd-nbd'],
    [{ mounter: 'rbd' }, (p) => p.mounter, 'rbd'],
    [{ 'csi.storage.k8s.io/provisioner-secret-name': 'csi-admin', adminSecretName: '' },
      (p) => p.adminSecret.name, 'csi-admin'],
    [{ 'csi.storage.k8s.io/provisioner-secret-namespace': 'ceph-csi' }, (p) => p.adminSecret.namespace, 'ceph-csi'],
    [{ 'csi.storage.k8s.io/node-stage-secret-name': 'csi-user', userSecretName: '' }, (p) => p.userSecret?.name, 'csi-user'],
    [{ 'csi.storage.k8s.io/node-stage-secret-namespace': 'ceph-csi' }, (p) => p.userSecret?.namespace, 'ceph-csi'],
    [{ 'csi.storage.k8s.io/fstype': 'xfs' }, (p) => p.fsType, 'xfs'],
  ];
  for (const [extra, read, expected] of cases) {
    test(`${JSON.stringify(extra)}`, () => assert.deepEqual(read(parse(extra)), expected));
  }
  test('every known key is covered by the table above', () => {
    const covered = new Set(cases.flatMap(([extra]) => Object.keys(extra)).map((key) => key.toLowerCase()));
    for (const key of KNOWN_PARAMETER_KEYS) assert.ok(covered.has(key.toLowerCase()), `no case for ${key}`);
  });
  test('values are trimmed', () => assert.equal(parse({ pool: ' kube ' }).pool, 'kube'));
});

describe('parseClassParameters: keys match case-insensitively', () => {
  const cases: Array<[Record<string, string>, (p: ClassParameters) => unknown, unknown]> = [
    [{ AdminId: 'kube' }, (p) => p.adminId, 'kube'],
    [{ ADMINID: 'kube' }, (p) => p.adminId, 'kube'],
    [{ IMAGEFEATURES: 'layering,exclusive-lock' }, (p) => p.imageFeatures, ['layering', 'exclusive-lock']],
    [{ POOL: 'kube' }, (p) => p.pool, 'kube'],
    [{ usersecretnamespace: 'x' }, (p) => p.userSecret?.namespace, 'x'],
    [{ 'CSI.Storage.K8s.io/FsType': 'xfs' }, (p) => p.fsType, 'xfs'],
    [{ ClusterId: 'c1' }, (p) => p.clusterID, 'c1'],
    [{ Pool: 'kube', pool: 'kube' }, (p) => p.pool, 'kube'],
  ];
  for (const [extra, read, expected] of cases) {
    test(`${JSON.stringify(extra)}`, () => assert.deepEqual(read(parse(extra)), expected));
  }
  test('MONITORS and AdminSecretName satisfy the required keys', () => {
    const params = parseClassParameters({ MONITORS: 'mon1', AdminSecretName: 'a', USERSECRETNAME: 'u' });
    assert.equal(params.monitors, 'mon1');
    assert.equal(params.adminSecret.name, 'a');
  });
  test('errors name the key in its documented spelling', () => {
    assertParameterError(() => parse({ IMAGEFEATURES: 'foo' }), 'imageFeatures', 'unknown feature "foo"', 'layering');
  });
});

describe('parseClassParameters: a StorageClass written for the retired external-storage rbd-provisioner', () => {
  // The documented example class, unchanged (the monitors list has spaces after its commas).
  const legacy = {
    monitors: '10.0.0.1:6789, 10.0.0.2:6789, 10.0.0.3:6789',
    adminId: 'admin',
    adminSecretName: 'ceph-secret-admin',
    adminSecretNamespace: 'kube-system',
    pool: 'kube',
    userId: 'kube',
    userSecretName: 'ceph-secret-user',
    userSecretNamespace: 'kube-system',
    imageFormat: '2',
    imageFeatures: 'layering',
  };
  test('parses with the same meaning', () => {
    const params = parseClassParameters(legacy);
    assert.equal(params.monitors, '10.0.0.1:6789,10.0.0.2:6789,10.0.0.3:6789');
    assert.equal(params.adminId, 'admin');
    assert.deepEqual(params.adminSecret, { name: 'ceph-secret-admin', namespace: 'kube-system' });
    assert.equal(params.pool, 'kube');
    assert.equal(params.userId, 'kube');
    assert.deepEqual(params.userSecret, { name: 'ceph-secret-user', namespace: 'kube-system' });
    assert.equal(params.imageFormat, 2);
    assert.deepEqual(params.imageFeatures, ['layering']);
    assert.equal(params.fsType, 'ext4');
    assert.equal(params.volumeSource, 'csi');
  });
  test('without userSecretNamespace the namespace is left to the claim', () => {
    const { userSecretNamespace: _, ...rest } = legacy;
    assert.deepEqual(parseClassParameters(rest).userSecret, { name: 'ceph-secret-user', namespace: undefined });
  });
  test('with fsType and dataPool (later legacy keys)', () => {
    const params = parseClassParameters({ ...legacy, fsType: 'xfs', dataPool: 'kube-ec' });
    assert.equal(params.fsType, 'xfs');
    assert.equal(params.dataPool, 'kube-ec');
  });
});

describe('parseClassParameters: aliases and conflicts', () => {
  const pairs: Array<[string, string, string]> = [
    ['adminSecretName', 'csi.storage.k8s.io/provisioner-secret-name', 'ceph-admin'],
    ['adminSecretNamespace', 'csi.storage.k8s.io/provisioner-secret-namespace', 'ceph'],
    ['userSecretName', 'csi.storage.k8s.io/node-stage-secret-name', 'ceph-user'],
    ['userSecretNamespace', 'csi.storage.k8s.io/node-stage-secret-namespace', 'ceph'],
    ['fsType', 'csi.storage.k8s.io/fstype', 'xfs'],
  ];
  for (const [legacyKey, alias, value] of pairs) {
    test(`${legacyKey} and ${alias} with the same value agree`, () => {
      assert.deepEqual(parse({ [legacyKey]: value, [alias]: value }), parse({ [legacyKey]: value }));
    });
    test(`${legacyKey} and ${alias} with different values conflict`, () => {
      assertParameterError(() => parse({ [legacyKey]: value, [alias]: `${value}x` }), legacyKey,
        `conflicts with "${alias}": "${value}" vs "${value}x"`, 'the same value');
    });
    test(`${alias} before ${legacyKey} still names both`, () => {
      assertParameterError(() => parseClassParameters({ ...BASE, [alias]: `${value}x`, [legacyKey]: value }), legacyKey,
        `conflicts with "${alias}"`, 'the same value');
    });
  }
  test('one key written twice in different case with different values conflicts', () => {
    assertParameterError(() => parse({ pool: 'a', POOL: 'b' }), 'pool', 'written twice in different case', 'the same value');
  });
});

describe('parseClassParameters: errors name the field and the allowed values', () => {
  const cases: Array<[string, Record<string, string>, string, string | RegExp, string | RegExp]> = [
    ['unknown key', { replication: '3' }, 'replication', 'unknown parameter', /monitors, adminId, .*mounter/],
    ['missing monitors', { monitors: '' }, 'monitors', 'missing', 'address vector'],
    ['bad monitor host', { monitors: 'mon_a:6789' }, 'monitors', '"mon_a:6789" is not a host name', 'host:port'],
    ['bad monitor port', { monitors: '10.0.0.1:70000' }, 'monitors', 'port outside 1-65535', 'host:port'],
    ['zero port', { monitors: '10.0.0.1:0' }, 'monitors', 'port outside 1-65535', 'host:port'],
    ['bad IPv4', { monitors: '10.0.0.300:6789' }, 'monitors', 'not a host name or IPv4', 'host:port'],
    ['bare IPv6', { monitors: 'fe80::1' }, 'monitors', 'write IPv6 addresses in brackets', '[IPv6]:port'],
    ['bad bracketed IPv6', { monitors: '[fe80::zz]:6789' }, 'monitors', 'not an IPv6 address', '[IPv6]:port'],
    ['empty list item', { monitors: 'a,,b' }, 'monitors', 'empty monitor address', 'comma-separated'],
    ['unbalanced vector', { monitors: '[v2:1.2.3.4:3300,v1:1.2.3.4:6789' }, 'monitors', 'unbalanced', 'address vector'],
    ['untyped inside a vector', { monitors: '[v2:1.2.3.4:3300,1.2.3.4:6789]' }, 'monitors', 'each needs v1: or v2:',
      'address vector'],
    ['missing admin secret', { adminSecretName: '' }, 'adminSecretName', 'missing', 'Secret name'],
    ['bad admin secret name', { adminSecretName: 'Ceph_Admin' }, 'adminSecretName', '"Ceph_Admin" is not allowed',
      'DNS subdomain'],
    ['bad admin secret namespace', { adminSecretNamespace: 'kube.system' }, 'adminSecretNamespace', 'not allowed',
      'DNS label'],
    ['long namespace', { userSecretNamespace: 'a'.repeat(64) }, 'userSecretNamespace', 'longer than 63', 'DNS label'],
    ['client. prefix on adminId', { adminId: 'client.admin' }, 'adminId', 'includes the "client." prefix',
      'without the "client." prefix'],
    ['client. prefix on userId', { userId: 'client.kube' }, 'userId', 'includes the "client." prefix', 'Ceph client id'],
    ['bad adminId', { adminId: 'ad min' }, 'adminId', 'not allowed', 'Ceph client id'],
    ['bad pool', { pool: 'kube/x' }, 'pool', '"kube/x" is not allowed', 'pool name'],
    ['bad dataPool', { dataPool: 'ec pool' }, 'dataPool', 'not allowed', 'pool name'],
    ['bad radosNamespace', { radosNamespace: 'a/b' }, 'radosNamespace', 'not allowed', 'RADOS namespace'],
    ['long clusterID', { clusterID: 'c'.repeat(37) }, 'clusterID', 'longer than 36', '1-36'],
    ['imageFormat 1', { imageFormat: '1' }, 'imageFormat', 'format 1 is deprecated and unsupported', /^2$/],
    ['imageFormat 3', { imageFormat: '3' }, 'imageFormat', 'unknown image format "3"', /^2$/],
    ['unknown feature', { imageFeatures: 'layering,foo' }, 'imageFeatures', 'unknown feature "foo"',
      'layering, exclusive-lock, object-map, fast-diff, deep-flatten, journaling'],
    ['striping feature', { imageFeatures: 'layering,striping' }, 'imageFeatures', 'set those instead', 'layering'],
    ['object-map alone', { imageFeatures: 'layering,object-map' }, 'imageFeatures',
      '"object-map" needs "exclusive-lock"', 'object-map and journaling need exclusive-lock'],
    ['fast-diff alone', { imageFeatures: 'exclusive-lock,fast-diff' }, 'imageFeatures', '"fast-diff" needs "object-map"',
      'fast-diff needs object-map'],
    ['journaling alone', { imageFeatures: 'journaling' }, 'imageFeatures', '"journaling" needs "exclusive-lock"',
      'journaling need exclusive-lock'],
    ['features are case-sensitive', { imageFeatures: 'Layering' }, 'imageFeatures', 'unknown feature "Layering"',
      'layering'],
    ['unknown fsType', { fsType: 'zfs' }, 'fsType', 'unknown value "zfs"', 'ext4, xfs, ext3, btrfs'],
    ['unknown fsType via alias', { 'csi.storage.k8s.io/fstype': 'ntfs' }, 'csi.storage.k8s.io/fstype',
      'unknown value "ntfs"', 'ext4, xfs, ext3, btrfs'],
    ['objectSize not a size', { objectSize: 'big' }, 'objectSize', '"big" is not a size', '4KiB to 32MiB'],
    ['objectSize in decimal MB', { objectSize: '4MB' }, 'objectSize', '"4MB" is not a size', '4MiB'],
    ['objectSize too small', { objectSize: '2K' }, 'objectSize', '2048 bytes is not a power of two between',
      '4KiB to 32MiB'],
    ['objectSize too large', { objectSize: '64M' }, 'objectSize', 'not a power of two between', '4KiB to 32MiB'],
    ['objectSize not a power of two', { objectSize: '3M' }, 'objectSize', '3145728 bytes', 'power of two'],
    ['stripeUnit alone', { stripeUnit: '64K' }, 'stripeCount', 'missing while stripeUnit is set', 'with stripeUnit'],
    ['stripeCount alone', { stripeCount: '4' }, 'stripeUnit', 'missing while stripeCount is set', 'with stripeCount'],
    ['stripeUnit larger than objectSize', { objectSize: '1M', stripeUnit: '2M', stripeCount: '2' }, 'stripeUnit',
      'larger than objectSize (1048576)', 'up to objectSize'],
    ['stripeUnit not a power of two', { stripeUnit: '96K', stripeCount: '2' }, 'stripeUnit', 'not a power of two',
      'power of two'],
    ['stripeUnit too small', { stripeUnit: '512', stripeCount: '2' }, 'stripeUnit', 'at least 4KiB', 'from 4KiB'],
    ['stripeUnit not a size', { stripeUnit: 'x', stripeCount: '2' }, 'stripeUnit', '"x" is not a size', 'stripeCount'],
    ['stripeCount zero', { stripeUnit: '64K', stripeCount: '0' }, 'stripeCount', '"0" is not a whole number',
      'from 1 upwards'],
    ['stripeCount fraction', { stripeUnit: '64K', stripeCount: '1.5' }, 'stripeCount', 'not a whole number', 'from 1'],
    ['bad prefix', { imageNamePrefix: '-k8s' }, 'imageNamePrefix', '"-k8s" is not allowed', 'starting with a letter'],
    ['long prefix', { imageNamePrefix: 'p'.repeat(65) }, 'imageNamePrefix', 'longer than 64', 'up to 64'],
    ['unknown volumeSource', { volumeSource: 'flex' }, 'volumeSource', 'unknown value "flex"', 'csi, rbd'],
    ['bad csiDriver', { csiDriver: 'rbd.csi.ceph.com.' }, 'csiDriver', 'not allowed', 'CSI driver name'],
    ['unknown mounter', { mounter: 'nbd' }, 'mounter', 'unknown value "nbd"', 'rbd, rbd-nbd'],
    ['csiDriver with rbd', { volumeSource: 'rbd', csiDriver: 'x.y' }, 'csiDriver', 'only applies to volumeSource "csi"',
      'set volumeSource "csi"'],
    ['mounter with rbd', { volumeSource: 'rbd', mounter: 'rbd-nbd' }, 'mounter', 'only applies', 'volumeSource "csi"'],
    ['radosNamespace with rbd', { volumeSource: 'rbd', radosNamespace: 'ns' }, 'radosNamespace',
      'cannot map images in a RADOS namespace', 'volumeSource "csi"'],
    ['v2-only monitor with rbd', { volumeSource: 'rbd', monitors: 'v2:10.0.0.1:3300' }, 'monitors',
      'has no msgr1 (v1) address', 'includes a v1 address'],
    ['v2-only vector with rbd', { volumeSource: 'rbd', monitors: '[v2:10.0.0.1:3300]' }, 'monitors',
      'has no msgr1 (v1) address', 'includes a v1 address'],
  ];
  for (const [title, extra, field, problem, allowed] of cases) {
    test(title, () => assertParameterError(() => parse(extra), field, problem, allowed));
  }
  test('csi without a user secret', () => {
    const { userSecretName: _, ...withoutUserSecret } = BASE;
    assertParameterError(() => parseClassParameters(withoutUserSecret), 'userSecretName', 'ceph-csi maps the image',
      'volumeSource "rbd"');
  });
  test('long values are cut short in messages', () => {
    assert.throws(() => parse({ fsType: 'x'.repeat(500) }), (error: ParameterError) => {
      assert.ok(error.message.includes(`"${'x'.repeat(64)}..."`), error.message);
      assert.ok(error.message.length < 300);
      return true;
    });
  });
  test('non-string values are refused', () => {
    assertParameterError(() => parseClassParameters({ ...BASE, pool: 3 as unknown as string }), 'pool',
      'not a string', 'a string');
  });
});

describe('monitors', () => {
  const valid: Array<[string, string, string[]]> = [
    // written, mon_host, in-tree list
    ['10.0.0.1', '10.0.0.1', ['10.0.0.1']],
    ['10.0.0.1:6789', '10.0.0.1:6789', ['10.0.0.1:6789']],
    ['mon-a.ceph.svc:6789,mon-b.ceph.svc', 'mon-a.ceph.svc:6789,mon-b.ceph.svc', ['mon-a.ceph.svc:6789', 'mon-b.ceph.svc']],
    ['v1:10.0.0.1:6789', 'v1:10.0.0.1:6789', ['10.0.0.1:6789']],
    ['v2:10.0.0.1:3300', 'v2:10.0.0.1:3300', []],
    ['[::1]:6789', '[::1]:6789', ['[::1]:6789']],
    ['[fe80::1]', '[fe80::1]', ['[fe80::1]']],
    ['v1:[fe80::1]:6789', 'v1:[fe80::1]:6789', ['[fe80::1]:6789']],
    ['[v2:10.0.0.1:3300,v1:10.0.0.1:6789]', '[v2:10.0.0.1:3300,v1:10.0.0.1:6789]', ['10.0.0.1:6789']],
    ['[v2:10.0.0.1:3300,v1:10.0.0.1:6789], [v2:10.0.0.2:3300,v1:10.0.0.2:6789]',
      '[v2:10.0.0.1:3300,v1:10.0.0.1:6789],[v2:10.0.0.2:3300,v1:10.0.0.2:6789]', ['10.0.0.1:6789', '10.0.0.2:6789']],
    ['[v2:[::1]:3300,v1:[::1]:6789]', '[v2:[::1]:3300,v1:[::1]:6789]', ['[::1]:6789']],
  ];
  for (const [written, monHost, inTree] of valid) {
    test(`${written} is accepted`, () => {
      const params = parse({ monitors: written });
      assert.equal(params.monitors, monHost);
      if (inTree.length > 0) assert.deepEqual(inTreeMonitorList(params.monitors), inTree);
      else assert.throws(() => inTreeMonitorList(params.monitors), /no msgr1/);
    });
  }
  test('a vector with a v1 address works for volumeSource rbd', () => {
    assert.equal(parse({ volumeSource: 'rbd', monitors: '[v2:10.0.0.1:3300,v1:10.0.0.1:6789]' }).volumeSource, 'rbd');
  });
});

describe('clusterID', () => {
  test('derived ids ignore monitor order and fit ceph-csi\'s 36 characters', () => {
    const a = parse({ monitors: 'mon-a:6789,mon-b:6789' }).clusterID;
    const b = parse({ monitors: 'mon-b:6789, mon-a:6789' }).clusterID;
    assert.equal(a, b);
    assert.ok(a.length <= 36);
  });
  test('different monitors give different ids', () => {
    assert.notEqual(parse({ monitors: 'mon-a' }).clusterID, parse({ monitors: 'mon-c' }).clusterID);
  });
  test('an explicit clusterID wins', () => assert.equal(parse({ clusterID: 'rook-ceph' }).clusterID, 'rook-ceph'));
  test('without a RADOS namespace the id is the one PVs made before namespaces counted carry (monitors only)', () => {
    // Pinned: a PV's clusterID must keep matching the config map entry kept for its class.
    assert.equal(deriveClusterID(parseMonitors('10.0.0.1:6789')), 'rbd-b16fbfe990ab77ce455f38b21c4d87bc');
    assert.equal(parse({ radosNamespace: '' }).clusterID, deriveClusterID(parseMonitors('10.0.0.1:6789')));
    assert.equal(parse().clusterID, 'rbd-b16fbfe990ab77ce455f38b21c4d87bc');
  });
  test('a RADOS namespace is part of the derived id: one ceph-csi entry (one radosNamespace) per class', () => {
    const none = parse().clusterID;
    const a = parse({ radosNamespace: 'team-a' }).clusterID;
    const b = parse({ radosNamespace: 'team-b' }).clusterID;
    assert.equal(new Set([none, a, b]).size, 3);
    assert.match(a, /^rbd-[0-9a-f]{32}$/);
    assert.equal(parse({ radosNamespace: 'team-a', monitors: '10.0.0.1:6789' }).clusterID, a);
    assert.equal(parse({ radosNamespace: 'team-a', clusterID: 'mine' }).clusterID, 'mine');
  });
  test('classClusterID gives exactly what the class gets, and names the bad parameter', () => {
    const cases: Record<string, string>[] = [{}, { radosNamespace: 'ns1' }, { monitors: 'mon-b:6789, [v2:mon-a:3300,v1:mon-a:6789]' }, { clusterID: 'c-1' }];
    for (const extra of cases) {
      const params = parse(extra);
      assert.equal(classClusterID(extra['monitors'] ?? BASE.monitors, params.radosNamespace, extra['clusterID']), params.clusterID);
    }
    assertParameterError(() => classClusterID('', ''), 'monitors', 'empty', 'comma-separated');
    assertParameterError(() => classClusterID('10.0.0.1', 'bad/ns'), 'radosNamespace', '', /./);
    assertParameterError(() => classClusterID('10.0.0.1', '', 'x'.repeat(37)), 'clusterID', 'longer than 36', '1-36');
  });
});

describe('imageFeatures', () => {
  const cases: Array<[string, string[]]> = [
    ['layering', ['layering']],
    ['', []],
    ['journaling,exclusive-lock', ['exclusive-lock', 'journaling']],
    ['fast-diff, object-map ,exclusive-lock,layering', ['layering', 'exclusive-lock', 'object-map', 'fast-diff']],
    ['deep-flatten', ['deep-flatten']],
    ['layering,layering', ['layering']],
    ['layering,', ['layering']],
    ['layering,exclusive-lock,object-map,fast-diff,deep-flatten,journaling',
      ['layering', 'exclusive-lock', 'object-map', 'fast-diff', 'deep-flatten', 'journaling']],
  ];
  for (const [written, expected] of cases) {
    test(JSON.stringify(written), () => assert.deepEqual(parse({ imageFeatures: written }).imageFeatures, expected));
  }
  test('featureBits uses librbd\'s bits', () => {
    assert.equal(featureBits(['layering']), 1);
    assert.equal(featureBits(['layering', 'exclusive-lock', 'object-map', 'fast-diff', 'deep-flatten', 'journaling']),
      1 + 4 + 8 + 16 + 32 + 64);
    assert.equal(featureBits([]), 0);
  });
});

describe('objectSize and striping', () => {
  const sizes: Array<[string, number, number]> = [
    ['4K', 4096, 12], ['4KiB', 4096, 12], ['4096', 4096, 12], ['64k', 65536, 16], ['1M', 1048576, 20],
    ['4M', 4194304, 22], ['4MiB', 4194304, 22], ['4194304', 4194304, 22], ['4096K', 4194304, 22], ['32M', 33554432, 25],
    ['32mi', 33554432, 25],
  ];
  for (const [written, bytes, order] of sizes) {
    test(`objectSize ${written}`, () => {
      const params = parse({ objectSize: written });
      assert.equal(params.objectSize, bytes);
      assert.equal(params.objectOrder, order);
    });
  }
  test('stripeUnit equal to objectSize is allowed', () => {
    assert.deepEqual(parse({ objectSize: '1M', stripeUnit: '1M', stripeCount: '1' }).striping, { unit: 1048576, count: 1 });
  });
  test('stripeUnit at the 4KiB floor', () => {
    assert.deepEqual(parse({ stripeUnit: '4K', stripeCount: '8' }).striping, { unit: 4096, count: 8 });
  });
});

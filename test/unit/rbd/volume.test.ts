import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { parseClassParameters } from '../../../src/rbd/parameters.js';
import {
  ANNOTATIONS, buildVolume, checkAccessModes, checkClaim, ClaimError, deleteTargetOf, imageNameFor, readDeleteTarget,
  requestedBytes, VolumeRecordError,
} from '../../../src/rbd/volume.js';

const GiB = 1073741824;
const MiB = 1048576;

function claim(spec: NonNullable<V1PersistentVolumeClaim['spec']> = {}, namespace = 'apps'): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'data', namespace, uid: '0b5f3c4e-1111-2222-3333-444455556666' },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...spec },
  };
}

function assertClaimError(fn: () => unknown, field: string, fragment: string, allowed: string) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ClaimError, `expected ClaimError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.ok(error.message.startsWith(`PersistentVolumeClaim field "${field}": `), error.message);
    assert.ok(error.problem.includes(fragment), `problem: ${error.problem}`);
    assert.ok(error.allowed.includes(allowed), `allowed: ${error.allowed}`);
    return true;
  });
}

function assertRecordError(fn: () => unknown, field: string, fragment: string) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof VolumeRecordError, `expected VolumeRecordError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.ok(error.message.includes(fragment), error.message);
    return true;
  });
}

const storage = (text: string) => claim({ resources: { requests: { storage: text } } });

describe('requestedBytes', () => {
  const cases: Array<[string, number]> = [
    ['1Gi', GiB],
    ['1G', 954 * MiB], // 10^9 bytes is 953.67 MiB, rounded up
    ['1', MiB],
    ['1048576', MiB],
    ['1048577', 2 * MiB],
    ['1Mi', MiB],
    ['1.5Gi', 1536 * MiB],
    ['0.5Mi', MiB],
    ['.5Gi', 512 * MiB],
    ['1.', MiB],
    ['+2Gi', 2 * GiB],
    ['1e9', 954 * MiB],
    ['1E9', 954 * MiB],
    ['1e-3', MiB],
    ['100m', MiB],
    ['500Mi', 500 * MiB],
    ['10Ti', 10 * 1024 * 1024 * MiB],
    ['1Pi', 1024 * 1024 * 1024 * MiB],
    ['1k', MiB],
    ['2048Ki', 2 * MiB],
    ['1.1Mi', 2 * MiB],
    ['3T', 2861023 * MiB], // 3e12 / 2^20 = 2861022.9...
    ['1P', 953674317 * MiB], // 1e15 / 2^20 = 953674316.4...
  ];
  for (const [text, bytes] of cases) {
    test(`${text} -> ${bytes}`, () => assert.equal(requestedBytes(storage(text)), bytes));
  }

  const invalid: Array<[string, string]> = [
    ['abc', 'not a Kubernetes quantity'],
    ['1 Gi', 'not a Kubernetes quantity'],
    ['1GiB', 'not a Kubernetes quantity'],
    ['1gi', 'not a Kubernetes quantity'],
    ['Gi', 'not a Kubernetes quantity'],
    ['1e', 'not a Kubernetes quantity'],
    ['0', 'not greater than zero'],
    ['0Gi', 'not greater than zero'],
    ['-1Gi', 'negative'],
    ['8Pi', 'not below 8Pi'],
    ['1Ei', 'not below 8Pi'],
    ['1e99', 'out of range'],
  ];
  for (const [text, fragment] of invalid) {
    test(`${JSON.stringify(text)} is refused`, () =>
      assertClaimError(() => requestedBytes(storage(text)), 'spec.resources.requests.storage', fragment, '1Gi'));
  }
  test('a missing request is refused', () => {
    assertClaimError(() => requestedBytes(claim({ resources: {} })), 'spec.resources.requests.storage', 'missing', '1Gi');
    assertClaimError(() => requestedBytes({}), 'spec.resources.requests.storage', 'missing', 'whole MiB');
  });
  test('the limit does not count, only the request', () => {
    const withLimit = claim({ resources: { requests: { storage: '1Gi' }, limits: { storage: '10Gi' } } });
    assert.equal(requestedBytes(withLimit), GiB);
  });
});

describe('checkAccessModes', () => {
  const allowed: Array<[string[], string | undefined]> = [
    [['ReadWriteOnce'], undefined],
    [['ReadOnlyMany'], undefined],
    [['ReadWriteOncePod'], undefined],
    [['ReadWriteOnce', 'ReadOnlyMany'], 'Filesystem'],
    [['ReadWriteOnce'], 'Block'],
    [['ReadWriteMany'], 'Block'],
    [['ReadWriteMany', 'ReadWriteOnce'], 'Block'],
  ];
  for (const [accessModes, volumeMode] of allowed) {
    test(`${accessModes.join('+')} with ${volumeMode ?? 'no volumeMode'}`, () => {
      const shape = checkAccessModes(claim({ accessModes, ...(volumeMode && { volumeMode }) }));
      assert.deepEqual(shape, { accessModes, volumeMode: volumeMode ?? 'Filesystem' });
    });
  }
  const refused: Array<[string[], string | undefined, string, string]> = [
    [['ReadWriteMany'], undefined, 'spec.accessModes', 'ReadWriteMany needs volumeMode Block'],
    [['ReadWriteMany'], 'Filesystem', 'spec.accessModes', 'ReadWriteMany needs volumeMode Block'],
    [['ReadWriteOnce', 'ReadWriteMany'], 'Filesystem', 'spec.accessModes', 'ReadWriteMany needs volumeMode Block'],
    [['WriteSometimes'], undefined, 'spec.accessModes', 'unknown access mode "WriteSometimes"'],
    [[], undefined, 'spec.accessModes', 'missing'],
    [['ReadWriteOnce'], 'Raw', 'spec.volumeMode', 'unknown volume mode "Raw"'],
  ];
  for (const [accessModes, volumeMode, field, fragment] of refused) {
    test(`${accessModes.join('+') || 'no modes'} with ${volumeMode ?? 'no volumeMode'} is refused`, () => {
      assertClaimError(() => checkAccessModes(claim({ accessModes, ...(volumeMode && { volumeMode }) })), field, fragment,
        field === 'spec.volumeMode' ? 'Filesystem, Block' : 'ReadWriteOnce, ReadOnlyMany, ReadWriteOncePod; ReadWriteMany only with volumeMode Block');
    });
  }
  test('duplicates collapse', () => {
    assert.deepEqual(checkAccessModes(claim({ accessModes: ['ReadWriteOnce', 'ReadWriteOnce'] })).accessModes,
      ['ReadWriteOnce']);
  });
});

describe('checkClaim', () => {
  test('returns modes and size', () => {
    assert.deepEqual(checkClaim(claim({ volumeMode: 'Block' })),
      { accessModes: ['ReadWriteOnce'], volumeMode: 'Block', requestedBytes: GiB });
  });
  test('a selector is refused', () => {
    assertClaimError(() => checkClaim(claim({ selector: { matchLabels: { a: 'b' } } })), 'spec.selector',
      'cannot match a selector', 'no selector');
  });
  test('a data source is refused', () => {
    assertClaimError(() => checkClaim(claim({ dataSource: { kind: 'PersistentVolumeClaim', name: 'x' } })),
      'spec.dataSource', 'not supported', 'no data source');
    assertClaimError(() => checkClaim(claim({ dataSourceRef: { kind: 'VolumeSnapshot', name: 'x' } })),
      'spec.dataSourceRef', 'not supported', 'no data source');
  });
  test('size errors come through', () => {
    assertClaimError(() => checkClaim(storage('0')), 'spec.resources.requests.storage', 'not greater than zero', '1Gi');
  });
});

describe('imageNameFor', () => {
  const pv = 'pvc-0b5f3c4e-1111-2222-3333-444455556666';
  test('is the prefix followed by the PV name', () => {
    assert.equal(imageNameFor(pv, ''), pv);
    assert.equal(imageNameFor(pv, 'k8s-'), `k8s-${pv}`);
    assert.equal(imageNameFor(pv, 'k8s-'), imageNameFor(pv, 'k8s-'));
  });
  const bad: Array<[string, string, string]> = [
    ['', '', 'empty'],
    ['pvc/1', '', 'not allowed'],
    ['pvc@snap', '', 'not allowed'],
    [pv, '-', 'not allowed'],
    ['p'.repeat(250), 'prefix-', 'longer than 255'],
  ];
  for (const [pvName, prefix, fragment] of bad) {
    test(`${JSON.stringify(prefix + pvName).slice(0, 40)} is refused`, () => {
      assert.throws(() => imageNameFor(pvName, prefix), (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.ok(error.message.includes(fragment), error.message);
        assert.ok(error.message.includes('allowed: an RBD image name'), error.message);
        return true;
      });
    });
  }
});

const CLASS = {
  monitors: '10.0.0.1:6789, [v2:10.0.0.2:3300,v1:10.0.0.2:6789]',
  adminId: 'provisioner',
  adminSecretName: 'ceph-admin',
  adminSecretNamespace: 'ceph',
  pool: 'kube',
  userId: 'kube',
  userSecretName: 'ceph-user',
  imageFeatures: 'layering,exclusive-lock',
  clusterID: 'c0ffee',
};
const IMAGE = 'pvc-0b5f3c4e-1111-2222-3333-444455556666';

function build(extra: Record<string, string> = {}, claimSpec: NonNullable<V1PersistentVolumeClaim['spec']> = {},
  options: { size?: number | bigint; mountOptions?: string[] } = {}): V1PersistentVolume {
  return buildVolume({
    params: parseClassParameters({ ...CLASS, ...extra }),
    claim: claim(claimSpec),
    imageName: IMAGE,
    imageSizeBytes: options.size ?? GiB,
    mountOptions: options.mountOptions,
  });
}

const EXPECTED_ANNOTATIONS = {
  [ANNOTATIONS.monitors]: '10.0.0.1:6789,[v2:10.0.0.2:3300,v1:10.0.0.2:6789]',
  [ANNOTATIONS.clusterID]: 'c0ffee',
  [ANNOTATIONS.pool]: 'kube',
  [ANNOTATIONS.image]: IMAGE,
  [ANNOTATIONS.adminId]: 'provisioner',
  [ANNOTATIONS.adminSecretName]: 'ceph-admin',
  [ANNOTATIONS.adminSecretNamespace]: 'ceph',
};

describe('buildVolume: csi source (default)', () => {
  const pv = build();
  test('apiVersion and kind', () => {
    assert.equal(pv.apiVersion, 'v1');
    assert.equal(pv.kind, 'PersistentVolume');
  });
  test('annotations carry what delete needs, under our prefix', () => {
    assert.deepEqual(pv.metadata, { annotations: EXPECTED_ANNOTATIONS });
  });
  test('capacity is the image size', () => assert.deepEqual(pv.spec?.capacity, { storage: '1Gi' }));
  test('access and volume modes come from the claim', () => {
    assert.deepEqual(pv.spec?.accessModes, ['ReadWriteOnce']);
    assert.equal(pv.spec?.volumeMode, 'Filesystem');
  });
  test('no rbd source, no mount options, nothing the controller stamps', () => {
    assert.deepEqual(Object.keys(pv.spec ?? {}).sort(), ['accessModes', 'capacity', 'csi', 'volumeMode']);
  });
  test('spec.csi in ceph-csi\'s static-volume shape', () => {
    assert.deepEqual(pv.spec?.csi, {
      driver: 'rbd.csi.ceph.com',
      volumeHandle: IMAGE,
      fsType: 'ext4',
      nodeStageSecretRef: { name: 'ceph-user', namespace: 'apps' },
      volumeAttributes: {
        clusterID: 'c0ffee',
        pool: 'kube',
        staticVolume: 'true',
        imageFeatures: 'layering,exclusive-lock',
      },
    });
  });
  test('optional attributes appear when set', () => {
    const csi = build({ dataPool: 'kube-ec', radosNamespace: 'tenant-a', mounter: 'rbd-nbd' }).spec?.csi;
    assert.deepEqual(csi?.volumeAttributes, {
      clusterID: 'c0ffee', pool: 'kube', staticVolume: 'true', imageFeatures: 'layering,exclusive-lock',
      dataPool: 'kube-ec', radosNamespace: 'tenant-a', mounter: 'rbd-nbd',
    });
  });
  test('imageFeatures "" gives an empty attribute', () => {
    assert.equal(build({ imageFeatures: '' }).spec?.csi?.volumeAttributes?.['imageFeatures'], '');
  });
  test('a custom driver and fsType', () => {
    const csi = build({ csiDriver: 'rook-ceph.rbd.csi.ceph.com', fsType: 'xfs' }).spec?.csi;
    assert.equal(csi?.driver, 'rook-ceph.rbd.csi.ceph.com');
    assert.equal(csi?.fsType, 'xfs');
  });
  test('a resolved node secret (node-secret.ts) is what nodeStageSecretRef names', () => {
    const resolved = buildVolume({ params: parseClassParameters(CLASS), claim: claim(), imageName: IMAGE, imageSizeBytes: GiB, nodeStageSecret: { namespace: 'rbd-provisioner', name: 'rbd-node-apps-ceph-user-0123abcd' } });
    assert.deepEqual(resolved.spec?.csi?.nodeStageSecretRef, { namespace: 'rbd-provisioner', name: 'rbd-node-apps-ceph-user-0123abcd' });
  });
  test('the class\'s user secret namespace wins over the claim\'s', () => {
    assert.deepEqual(build({ userSecretNamespace: 'ceph' }).spec?.csi?.nodeStageSecretRef, { name: 'ceph-user', namespace: 'ceph' });
  });
  test('Block mode has no fsType', () => {
    const block = build({}, { volumeMode: 'Block', accessModes: ['ReadWriteMany'] });
    assert.equal(block.spec?.volumeMode, 'Block');
    assert.deepEqual(block.spec?.accessModes, ['ReadWriteMany']);
    assert.equal(block.spec?.csi?.fsType, undefined);
    assert.ok(!('fsType' in (block.spec?.csi ?? {})));
  });
  test('mount options from the class', () => {
    assert.deepEqual(build({}, {}, { mountOptions: ['discard', 'noatime'] }).spec?.mountOptions, ['discard', 'noatime']);
  });
  test('a radosNamespace annotation appears only when set', () => {
    assert.equal(build({ radosNamespace: 'tenant-a' }).metadata?.annotations?.[ANNOTATIONS.radosNamespace], 'tenant-a');
    assert.ok(!(ANNOTATIONS.radosNamespace in (pv.metadata?.annotations ?? {})));
  });
  test('a derived clusterID is used in attributes and annotations alike', () => {
    const { clusterID: _, ...rest } = CLASS;
    const derived = buildVolume({ params: parseClassParameters(rest), claim: claim(), imageName: IMAGE, imageSizeBytes: GiB });
    const id = derived.spec?.csi?.volumeAttributes?.['clusterID'];
    assert.match(id ?? '', /^rbd-[0-9a-f]{32}$/);
    assert.equal(derived.metadata?.annotations?.[ANNOTATIONS.clusterID], id);
  });
  test('the claim namespace is needed when the class names no user secret namespace', () => {
    const noNamespace: V1PersistentVolumeClaim = { metadata: { name: 'x' }, spec: claim().spec };
    assertClaimError(() => buildVolume({
      params: parseClassParameters(CLASS), claim: noNamespace, imageName: IMAGE, imageSizeBytes: GiB,
    }), 'metadata.namespace', 'missing', 'namespace');
  });
  test('the claim is checked again', () => {
    assertClaimError(() => build({}, { accessModes: ['ReadWriteMany'] }), 'spec.accessModes', 'needs volumeMode Block',
      'ReadWriteOnce');
  });
});

describe('buildVolume: capacity is exact', () => {
  const cases: Array<[number | bigint, string]> = [
    [GiB, '1Gi'], [MiB, '1Mi'], [3 * MiB, '3Mi'], [1536 * MiB, '1536Mi'], [954 * MiB, '954Mi'],
    [10n * 1024n ** 4n, '10Ti'], [1000, '1000'], [4097, '4097'], [8192, '8Ki'], [5n * 1024n ** 5n, '5Pi'],
  ];
  for (const [size, expected] of cases) {
    test(`${size} bytes -> ${expected}`, () => assert.equal(build({}, {}, { size }).spec?.capacity?.['storage'], expected));
  }
  for (const size of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, 0n]) {
    test(`${size} bytes is refused`, () => assert.throws(() => build({}, {}, { size }), RangeError));
  }
});

describe('buildVolume: in-tree rbd source', () => {
  const pv = build({ volumeSource: 'rbd' });
  test('spec.rbd field by field', () => {
    assert.deepEqual(pv.spec?.rbd, {
      monitors: ['10.0.0.1:6789', '10.0.0.2:6789'],
      image: IMAGE,
      pool: 'kube',
      user: 'kube',
      secretRef: { name: 'ceph-user', namespace: 'apps' },
      fsType: 'ext4',
      readOnly: false,
    });
  });
  test('no csi source', () => {
    assert.deepEqual(Object.keys(pv.spec ?? {}).sort(), ['accessModes', 'capacity', 'rbd', 'volumeMode']);
  });
  test('same annotations as the csi source', () => assert.deepEqual(pv.metadata?.annotations, EXPECTED_ANNOTATIONS));
  test('without a user secret nodes use their keyring', () => {
    const { userSecretName: _, ...withoutUserSecret } = CLASS;
    const params = parseClassParameters({ ...withoutUserSecret, volumeSource: 'rbd' });
    const rbd = buildVolume({ params, claim: claim(), imageName: IMAGE, imageSizeBytes: GiB }).spec?.rbd;
    assert.ok(rbd);
    assert.ok(!('secretRef' in rbd));
  });
  test('the class\'s user secret namespace', () => {
    assert.deepEqual(build({ volumeSource: 'rbd', userSecretNamespace: 'ceph' }).spec?.rbd?.secretRef,
      { name: 'ceph-user', namespace: 'ceph' });
  });
  test('Block mode has no fsType', () => {
    const rbd = build({ volumeSource: 'rbd' }, { volumeMode: 'Block' }).spec?.rbd;
    assert.ok(rbd && !('fsType' in rbd));
  });
  test('userId defaults to adminId', () => {
    const { userId: _, ...rest } = CLASS;
    const rbd = buildVolume({
      params: parseClassParameters({ ...rest, volumeSource: 'rbd' }), claim: claim(), imageName: IMAGE, imageSizeBytes: GiB,
    }).spec?.rbd;
    assert.equal(rbd?.user, 'provisioner');
  });
});

describe('readDeleteTarget', () => {
  const expected = {
    monitors: '10.0.0.1:6789,[v2:10.0.0.2:3300,v1:10.0.0.2:6789]',
    pool: 'kube',
    radosNamespace: '',
    image: IMAGE,
    adminId: 'provisioner',
    adminSecret: { name: 'ceph-admin', namespace: 'ceph' },
  };
  test('csi PV', () => assert.deepEqual(readDeleteTarget(build()), expected));
  test('rbd PV', () => assert.deepEqual(readDeleteTarget(build({ volumeSource: 'rbd' })), expected));
  test('rados namespace', () => {
    assert.deepEqual(readDeleteTarget(build({ radosNamespace: 'tenant-a' })), { ...expected, radosNamespace: 'tenant-a' });
  });
  test('works from the PV alone, whatever the controller stamped', () => {
    const pv = build();
    pv.metadata = {
      ...pv.metadata, name: 'pvc-x', annotations: { ...pv.metadata?.annotations, 'pv.kubernetes.io/provisioned-by': 'x' },
    };
    pv.spec = { ...pv.spec, storageClassName: 'gone', persistentVolumeReclaimPolicy: 'Delete' };
    assert.deepEqual(readDeleteTarget(pv), expected);
  });

  const required = [ANNOTATIONS.monitors, ANNOTATIONS.pool, ANNOTATIONS.image, ANNOTATIONS.adminId,
    ANNOTATIONS.adminSecretName, ANNOTATIONS.adminSecretNamespace];
  for (const key of required) {
    test(`missing ${key} is named`, () => {
      const pv = build();
      delete pv.metadata?.annotations?.[key];
      assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${key}"]`, 'missing');
    });
    test(`empty ${key} is named`, () => {
      const pv = build();
      pv.metadata!.annotations![key] = '';
      assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${key}"]`, 'missing');
    });
  }
  test('cluster id is not needed to delete', () => {
    const pv = build();
    delete pv.metadata?.annotations?.[ANNOTATIONS.clusterID];
    assert.deepEqual(readDeleteTarget(pv), expected);
  });
  test('a PV without annotations', () => {
    assertRecordError(() => readDeleteTarget({ spec: {} }), `metadata.annotations["${ANNOTATIONS.monitors}"]`, 'missing');
  });

  const invalid: Array<[string, string, string]> = [
    [ANNOTATIONS.monitors, 'mon_a', 'not a host name'],
    [ANNOTATIONS.pool, 'kube/other', 'not allowed'],
    [ANNOTATIONS.adminId, 'ad min', 'not allowed'],
    [ANNOTATIONS.adminSecretName, 'UPPER', 'not allowed'],
    [ANNOTATIONS.adminSecretNamespace, 'a.b', 'not allowed'],
    [ANNOTATIONS.radosNamespace, 'a/b', 'not allowed'],
  ];
  for (const [key, value, fragment] of invalid) {
    test(`invalid ${key} is named`, () => {
      const pv = build();
      pv.metadata!.annotations![key] = value;
      assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${key}"]`, fragment);
    });
  }

  const mismatches: Array<[string, Record<string, string>, string, string]> = [
    ['image vs csi volumeHandle', {}, ANNOTATIONS.image, 'spec.csi.volumeHandle'],
    ['image vs rbd image', { volumeSource: 'rbd' }, ANNOTATIONS.image, 'spec.rbd.image'],
  ];
  for (const [title, extra, key, sourceField] of mismatches) {
    test(`refuses an edited annotation: ${title}`, () => {
      const pv = build(extra);
      pv.metadata!.annotations![key] = 'someone-elses-image';
      assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${key}"]`,
        `does not match ${sourceField} "${IMAGE}"; refusing to delete`);
    });
  }
  test('refuses an edited pool (csi)', () => {
    const pv = build();
    pv.metadata!.annotations![ANNOTATIONS.pool] = 'other';
    assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${ANNOTATIONS.pool}"]`,
      'does not match spec.csi.volumeAttributes.pool "kube"');
  });
  test('refuses an edited pool (rbd)', () => {
    const pv = build({ volumeSource: 'rbd' });
    pv.metadata!.annotations![ANNOTATIONS.pool] = 'other';
    assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${ANNOTATIONS.pool}"]`, 'spec.rbd.pool "kube"');
  });
  test('refuses a rados namespace that the csi attributes do not have', () => {
    const pv = build();
    pv.metadata!.annotations![ANNOTATIONS.radosNamespace] = 'tenant-b';
    assertRecordError(() => readDeleteTarget(pv), `metadata.annotations["${ANNOTATIONS.radosNamespace}"]`,
      'does not match spec.csi.volumeAttributes.radosNamespace ""');
  });
  test('refuses a PV with neither source', () => {
    const pv = build();
    delete pv.spec?.csi;
    assertRecordError(() => readDeleteTarget(pv), 'spec', 'neither a csi nor an rbd volume source');
  });
});

describe('round trip: build then read gives back the delete target', () => {
  // Deterministic pseudo-random inputs (mulberry32), so a failure reproduces.
  function random(seed: number) {
    let state = seed;
    return () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const next = random(20240601);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const word = (alphabet: string, min: number, max: number) => {
    const length = min + Math.floor(next() * (max - min + 1));
    return Array.from({ length }, () => pick([...alphabet])).join('');
  };
  const lower = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const octet = () => String(Math.floor(next() * 256));
  const monitor = () => pick([
    () => `${octet()}.${octet()}.${octet()}.${octet()}`,
    () => `${octet()}.${octet()}.${octet()}.${octet()}:${1 + Math.floor(next() * 65535)}`,
    () => `mon-${word(lower, 1, 8)}.ceph.svc:6789`,
    () => `v1:10.0.0.${octet()}:6789`,
    () => `[v2:10.1.0.${octet()}:3300,v1:10.1.0.${octet()}:6789]`,
    () => `[fd00::${Math.floor(next() * 65535).toString(16)}]:6789`,
  ])();

  for (let i = 0; i < 300; i++) {
    const volumeSource = pick(['csi', 'rbd'] as const);
    const params: Record<string, string> = {
      monitors: Array.from({ length: 1 + Math.floor(next() * 3) }, monitor).join(pick([',', ', '])),
      [pick(['adminSecretName', 'ADMINSECRETNAME', 'csi.storage.k8s.io/provisioner-secret-name'])]: word(lower, 1, 20),
      userSecretName: word(lower, 1, 20),
      volumeSource,
    };
    if (next() < 0.5) params['adminId'] = word(lower, 1, 10);
    if (next() < 0.5) params['adminSecretNamespace'] = word(lower, 1, 20);
    if (next() < 0.5) params['pool'] = word(lower, 1, 1) + word(`${lower}._-`, 0, 12);
    if (volumeSource === 'csi' && next() < 0.5) params['radosNamespace'] = word(lower, 1, 12);
    const prefix = next() < 0.5 ? word(lower, 1, 10) + '-' : '';
    if (prefix) params['imageNamePrefix'] = prefix;
    const hex = (n: number) => word('0123456789abcdef', n, n);
    const pvName = `pvc-${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`;

    test(`case ${i}`, () => {
      const parsed = parseClassParameters(params);
      const image = imageNameFor(pvName, parsed.imageNamePrefix);
      const pv = buildVolume({
        params: parsed,
        claim: claim({ volumeMode: pick(['Filesystem', 'Block']) }, word(lower, 1, 20)),
        imageName: image,
        imageSizeBytes: (1 + Math.floor(next() * 1_000_000)) * MiB,
      });
      // Through JSON, as the PV travels through the API server.
      const stored = JSON.parse(JSON.stringify(pv)) as V1PersistentVolume;
      const target = readDeleteTarget(stored);
      assert.deepEqual(target, deleteTargetOf(parsed, image));
      assert.equal(target.image, `${prefix}${pvName}`);
      assert.equal(target.pool, params['pool'] ?? 'rbd');
      assert.equal(target.adminId, params['adminId'] ?? 'admin');
      assert.equal(target.adminSecret.namespace, params['adminSecretNamespace'] ?? 'default');
      assert.equal(target.radosNamespace, params['radosNamespace'] ?? '');
      assert.equal(target.monitors, params['monitors']!.split(/, ?(?![^[]*\])/).join(','));
    });
  }
});

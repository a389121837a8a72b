// StorageClass parameters -> a validated, typed description of what to create. Pure: no Kubernetes or Ceph calls.
//
// The keys of the retired external-storage rbd-provisioner keep their meaning and defaults, matched
// case-insensitively as it did; ceph-csi spellings are accepted as aliases. One departure: it took an empty adminId
// or pool for its default, and here an empty value is an error wherever "" means nothing of its own. Every error
// names the key and the allowed values, and never contains more than a short, quoted excerpt of what the user wrote.

import { createHash } from 'node:crypto';
import { checkFeatures, IMAGE_FEATURES, type ImageFeature } from '../ceph/features.js';
import { MONITORS_ALLOWED, parseMonitors, type MonitorEntry } from '../ceph/monitors.js';
import { CEPH_NAMES, nameProblem, quote, type NameRule } from '../ceph/names.js';
import { MAX_ORDER, MIN_ORDER } from '../ceph/options.js';
import { ValidationError } from '../ceph/validation.js';
import { DNS_LABEL, DNS_SUBDOMAIN } from '../kube/names.js';
import { isPowerOfTwo, MiB, parseByteSize } from './size.js';

export class ParameterError extends Error {
  override readonly name = 'ParameterError';
  constructor(
    /** The parameter key, spelled as the user should write it. */
    readonly field: string,
    readonly problem: string,
    /** Human-readable description of the allowed values. */
    readonly allowed: string,
  ) {
    super(`StorageClass parameter "${field}": ${problem}; allowed: ${allowed}`);
  }
}

export { IMAGE_FEATURES, type ImageFeature };

export const FS_TYPES = ['ext4', 'xfs', 'ext3', 'btrfs'] as const;
export type FsType = (typeof FS_TYPES)[number];
export const VOLUME_SOURCES = ['csi', 'rbd'] as const;
export type VolumeSourceKind = (typeof VOLUME_SOURCES)[number];
export const MOUNTERS = ['rbd', 'rbd-nbd'] as const;
export type Mounter = (typeof MOUNTERS)[number];

export const DEFAULTS = {
  adminId: 'admin',
  adminSecretNamespace: 'default',
  pool: 'rbd',
  imageFeatures: ['layering'] as readonly ImageFeature[],
  fsType: 'ext4' as FsType,
  objectSize: 4 * MiB,
  imageNamePrefix: '',
  volumeSource: 'csi' as VolumeSourceKind,
  csiDriver: 'rbd.csi.ceph.com',
} as const;

const MIN_OBJECT_SIZE = 2 ** MIN_ORDER;
const MAX_OBJECT_SIZE = 2 ** MAX_ORDER;

export interface SecretRef {
  readonly name: string;
  readonly namespace: string;
}

export interface ClassParameters {
  /** Monitor addresses for librados `mon_host`, comma-separated, as validated. */
  readonly monitors: string;
  /** ceph-csi clusterID: the class's, else derived from the monitors and RADOS namespace (see deriveClusterID). */
  readonly clusterID: string;
  /** Ceph client id (without `client.`) that creates and removes images. */
  readonly adminId: string;
  readonly adminSecret: SecretRef;
  readonly pool: string;
  readonly dataPool: string | undefined;
  /** "" is the pool's default namespace. */
  readonly radosNamespace: string;
  /** Ceph client id nodes map the image with. */
  readonly userId: string;
  /**
   * The secret nodes map the image with; read by the provisioner only to give ceph-csi a Secret it reads as userId
   * (node-secret.ts). `namespace` undefined means the claim's
   * namespace (the legacy default), resolved when the PV is built. Undefined as a whole only for volumeSource "rbd",
   * where nodes then fall back to their own keyring.
   */
  readonly userSecret: { readonly name: string; readonly namespace: string | undefined } | undefined;
  readonly imageFormat: 2;
  /** Canonical (bit) order, no duplicates. */
  readonly imageFeatures: readonly ImageFeature[];
  readonly fsType: FsType;
  /** Bytes; a power of two. */
  readonly objectSize: number;
  /** log2(objectSize), the `order` librbd takes. */
  readonly objectOrder: number;
  /** Both or neither; bytes and object count. */
  readonly striping: { readonly unit: number; readonly count: number } | undefined;
  readonly imageNamePrefix: string;
  readonly volumeSource: VolumeSourceKind;
  readonly csiDriver: string;
  readonly mounter: Mounter | undefined;
}

// Canonical key -> accepted spellings; the first is the one errors name when several could apply.
const KEY_SPELLINGS = {
  monitors: ['monitors'],
  adminId: ['adminId'],
  adminSecretName: ['adminSecretName', 'csi.storage.k8s.io/provisioner-secret-name'],
  adminSecretNamespace: ['adminSecretNamespace', 'csi.storage.k8s.io/provisioner-secret-namespace'],
  pool: ['pool'],
  dataPool: ['dataPool'],
  userId: ['userId'],
  userSecretName: ['userSecretName', 'csi.storage.k8s.io/node-stage-secret-name'],
  userSecretNamespace: ['userSecretNamespace', 'csi.storage.k8s.io/node-stage-secret-namespace'],
  imageFormat: ['imageFormat'],
  imageFeatures: ['imageFeatures'],
  fsType: ['fsType', 'csi.storage.k8s.io/fstype'],
  clusterID: ['clusterID'],
  radosNamespace: ['radosNamespace'],
  objectSize: ['objectSize'],
  stripeUnit: ['stripeUnit'],
  stripeCount: ['stripeCount'],
  imageNamePrefix: ['imageNamePrefix'],
  volumeSource: ['volumeSource'],
  csiDriver: ['csiDriver'],
  mounter: ['mounter'],
} as const satisfies Record<string, readonly string[]>;
type Key = keyof typeof KEY_SPELLINGS;

/** Every accepted parameter key, in documentation order. */
export const KNOWN_PARAMETER_KEYS: readonly string[] = Object.values(KEY_SPELLINGS).flat();

const SPELLING_INDEX: ReadonlyMap<string, { key: Key; spelling: string }> = new Map(
  (Object.entries(KEY_SPELLINGS) as Array<[Key, readonly string[]]>).flatMap(([key, spellings]) =>
    spellings.map((spelling) => [spelling.toLowerCase(), { key, spelling }] as const)),
);

// ---- names ------------------------------------------------------------------------------------------------------

// Ceph and Kubernetes names follow the rules of their own layer (src/ceph/names.ts, src/kube/names.ts); only the
// rules no other layer checks are written here.
export const NAME_RULES = {
  cephId: CEPH_NAMES.cephId,
  pool: CEPH_NAMES.pool,
  radosNamespace: CEPH_NAMES.radosNamespace,
  image: CEPH_NAMES.image,
  secretName: { ...DNS_SUBDOMAIN, allowed: `a Secret name (${DNS_SUBDOMAIN.allowed})` },
  namespace: { ...DNS_LABEL, allowed: `a namespace name (${DNS_LABEL.allowed})` },
  // ceph-csi keys its config map by clusterID and limits it to 36 bytes (a UUID fits).
  clusterID: {
    pattern: /^[A-Za-z0-9._-]+$/, maxLength: 36,
    allowed: '1-36 letters, digits, ".", "_" and "-" (e.g. the cluster fsid, as in ceph-csi\'s config map)',
  },
  // The CSI spec's rule for driver names.
  csiDriver: {
    pattern: /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, maxLength: 63,
    allowed: 'a CSI driver name: at most 63 letters, digits, "." and "-", starting and ending alphanumeric',
  },
  // Prefixes image names (`<prefix>pvc-<uid>`), so it starts as an image name must.
  imageNamePrefix: {
    pattern: CEPH_NAMES.image.pattern, maxLength: 64,
    allowed: 'empty for none, or up to 64 letters, digits, ".", "_" and "-" starting with a letter or digit',
  },
} as const satisfies Record<string, NameRule>;

// ---- monitors ---------------------------------------------------------------------------------------------------

/** Monitors as the in-tree rbd volume plugin takes them (msgr1 host[:port]); throws if one has no msgr1 address. */
export function inTreeMonitorList(monitors: string): string[] {
  return parseMonitors(monitors).map((entry) => {
    if (entry.v1Address === undefined) {
      throw new SyntaxError(`${quote(entry.address)} has no msgr1 (v1) address, which the in-tree rbd volume source needs`);
    }
    return entry.v1Address;
  });
}

/**
 * A stable clusterID for classes that name none: the same monitors (in any order) and RADOS namespace give the same
 * id, at most 36 characters as ceph-csi requires. ceph-csi's config map holds one radosNamespace per clusterID, so a
 * non-empty namespace is part of the id: two classes on the same monitors and different namespaces get two entries.
 * The default namespace ("") gives exactly the id of the monitors alone, what every PV made before namespaces counted
 * carries. Computed offline (no Ceph connection), so `rbd-provisioner cluster-id` tells it before any claim.
 */
export function deriveClusterID(entries: readonly MonitorEntry[], radosNamespace = ''): string {
  const monitors = entries.map((entry) => entry.address).sort().join(',');
  // A monitor address never holds a NUL, so no monitors/namespace pair can hash like another.
  const canonical = radosNamespace === '' ? monitors : `${monitors}\u0000radosNamespace=${radosNamespace}`;
  return `rbd-${createHash('sha256').update(canonical).digest('hex').slice(0, 32)}`;
}

/**
 * The clusterID a class gets: `clusterID` when given, else deriveClusterID. For the `cluster-id` subcommand, which
 * must print exactly what parseClassParameters would: both call this. Throws ParameterError for a bad value.
 */
export function classClusterID(monitors: string, radosNamespace: string, clusterID?: string): string {
  let entries: MonitorEntry[];
  try {
    entries = parseMonitors(monitors);
  } catch (error) {
    throw new ParameterError('monitors', (error as Error).message, MONITORS_ALLOWED);
  }
  if (radosNamespace !== '') {
    const problem = nameProblem(NAME_RULES.radosNamespace, radosNamespace);
    if (problem) throw new ParameterError('radosNamespace', problem, NAME_RULES.radosNamespace.allowed);
  }
  if (clusterID !== undefined) {
    const problem = nameProblem(NAME_RULES.clusterID, clusterID);
    if (problem) throw new ParameterError('clusterID', problem, NAME_RULES.clusterID.allowed);
    return clusterID;
  }
  return deriveClusterID(entries, radosNamespace);
}

// ---- parsing ----------------------------------------------------------------------------------------------------

interface RawValue { readonly value: string; readonly field: string }

function collect(params: Record<string, string>): Map<Key, RawValue> {
  const found = new Map<Key, RawValue>();
  for (const [writtenKey, rawValue] of Object.entries(params)) {
    const known = SPELLING_INDEX.get(writtenKey.toLowerCase());
    if (!known) {
      throw new ParameterError(writtenKey, 'unknown parameter', KNOWN_PARAMETER_KEYS.join(', '));
    }
    if (typeof rawValue !== 'string') {
      throw new ParameterError(known.spelling, 'value is not a string', 'a string value');
    }
    const value = rawValue.trim();
    const earlier = found.get(known.key);
    // An empty value under one spelling neither conflicts with nor replaces another spelling's value; alone, it is
    // judged by parseClassParameters.
    if (earlier && value === '') continue;
    if (earlier && earlier.value !== '' && earlier.value !== value) {
      const [primary] = KEY_SPELLINGS[known.key];
      const other = earlier.field === known.spelling
        ? 'itself, written twice in different case'
        : `"${earlier.field === primary ? known.spelling : earlier.field}"`;
      throw new ParameterError(
        primary,
        `conflicts with ${other}: ${quote(earlier.value)} vs ${quote(value)}`,
        'the same value under every spelling of a key, or only one of them',
      );
    }
    found.set(known.key, { value, field: known.spelling });
  }
  return found;
}

// Keys whose empty value is a value of its own: no features, the pool's default RADOS namespace (librados names it
// ""), no name prefix. Every other key refuses "" rather than taking it for its default: `pool: ""` (often a template
// whose value was not set) once created images in pool "rbd", which nobody writing it asked for.
type EmptyIsAValue = 'imageFeatures' | 'radosNamespace' | 'imageNamePrefix';
const EMPTY_IS_A_VALUE: ReadonlySet<Key> = new Set<EmptyIsAValue>(['imageFeatures', 'radosNamespace', 'imageNamePrefix']);

/** What leaving out each optional key gives: the error for an empty value says to do that instead. */
const WHEN_ABSENT: Record<Exclude<Key, EmptyIsAValue | 'monitors' | 'adminSecretName'>, string> = {
  adminId: `the default "${DEFAULTS.adminId}"`,
  adminSecretNamespace: `the default "${DEFAULTS.adminSecretNamespace}"`,
  pool: `the default "${DEFAULTS.pool}"`,
  dataPool: "data in the image's own pool",
  userId: 'the same id as adminId',
  userSecretName: 'nodes to map with their own keyring (volumeSource "rbd" only)',
  userSecretNamespace: "the claim's namespace",
  imageFormat: 'format 2',
  fsType: `the default "${DEFAULTS.fsType}"`,
  clusterID: 'an id derived from the monitors and radosNamespace',
  objectSize: 'the default 4MiB',
  stripeUnit: 'no striping',
  stripeCount: 'no striping',
  volumeSource: `the default "${DEFAULTS.volumeSource}"`,
  csiDriver: `the default "${DEFAULTS.csiDriver}"`,
  mounter: "ceph-csi's default mounter",
};

/**
 * Parses and validates a StorageClass's parameters. Throws ParameterError naming the first bad key and what it
 * allows. An empty value is refused, except for the keys where "" means something (EMPTY_IS_A_VALUE).
 */
export function parseClassParameters(params: Record<string, string> | undefined): ClassParameters {
  const raw = collect(params ?? {});
  const field = (key: Key): string => raw.get(key)?.field ?? KEY_SPELLINGS[key][0];
  const fail = (key: Key, problem: string, allowed: string): never => {
    throw new ParameterError(field(key), problem, allowed);
  };
  /** The value as written; undefined when absent; "" only for EMPTY_IS_A_VALUE keys. */
  const given = (key: Key, allowed: string): string | undefined => {
    const value = raw.get(key)?.value;
    if (value !== '' || EMPTY_IS_A_VALUE.has(key)) return value;
    const absent = (WHEN_ABSENT as Partial<Record<Key, string>>)[key];
    return fail(key, absent === undefined ? 'missing: the value is empty' : `empty; leave the key out for ${absent}`, allowed);
  };
  const name = (key: Key, rule: NameRule, fallback?: string): string => {
    const value = given(key, rule.allowed) ?? fallback;
    if (value === undefined) return fail(key, 'missing', rule.allowed);
    const problem = nameProblem(rule, value);
    if (problem) fail(key, problem, rule.allowed);
    return value;
  };
  /** Undefined when absent (or "" where that is a value). */
  const optionalName = (key: Key, rule: NameRule): string | undefined =>
    (given(key, rule.allowed) ?? '') === '' ? undefined : name(key, rule);
  const oneOf = <T extends string>(key: Key, choices: readonly T[], fallback: T | undefined): T | undefined => {
    const value = given(key, choices.join(', '));
    if (value === undefined) return fallback;
    if (!(choices as readonly string[]).includes(value)) fail(key, `unknown value ${quote(value)}`, choices.join(', '));
    return value as T;
  };

  // monitors
  const monitorsText = given('monitors', MONITORS_ALLOWED);
  if (monitorsText === undefined) fail('monitors', 'missing', MONITORS_ALLOWED);
  let monitorEntries: MonitorEntry[] = [];
  try {
    monitorEntries = parseMonitors(monitorsText!);
  } catch (error) {
    fail('monitors', (error as Error).message, MONITORS_ALLOWED);
  }
  const monitors = monitorEntries.map((entry) => entry.address).join(',');

  // identities and secrets
  const adminId = name('adminId', NAME_RULES.cephId, DEFAULTS.adminId);
  const adminSecret: SecretRef = {
    name: name('adminSecretName', NAME_RULES.secretName),
    namespace: name('adminSecretNamespace', NAME_RULES.namespace, DEFAULTS.adminSecretNamespace),
  };
  const userId = name('userId', NAME_RULES.cephId, adminId);
  const userSecretName = optionalName('userSecretName', NAME_RULES.secretName);
  const userSecretNamespace = optionalName('userSecretNamespace', NAME_RULES.namespace);

  // placement
  const pool = name('pool', NAME_RULES.pool, DEFAULTS.pool);
  const dataPool = optionalName('dataPool', NAME_RULES.pool);
  const radosNamespace = optionalName('radosNamespace', NAME_RULES.radosNamespace) ?? '';
  const clusterID = optionalName('clusterID', NAME_RULES.clusterID) ?? deriveClusterID(monitorEntries, radosNamespace);

  // image layout
  const imageFormat = given('imageFormat', '2');
  if (imageFormat === '1') {
    fail('imageFormat', 'format 1 is deprecated and unsupported: librbd creates format-1 images without features, ' +
      'striping or a data pool', '2');
  } else if (imageFormat !== undefined && imageFormat !== '2') {
    fail('imageFormat', `unknown image format ${quote(imageFormat)}`, '2');
  }
  const imageFeatures = parseFeatures(raw.get('imageFeatures')?.value, field('imageFeatures'));
  const objectSize = layoutSize('objectSize', given('objectSize', OBJECT_SIZE_ALLOWED), DEFAULTS.objectSize, fail);
  if (!isPowerOfTwo(objectSize) || objectSize < MIN_OBJECT_SIZE || objectSize > MAX_OBJECT_SIZE) {
    fail('objectSize', `${objectSize} bytes is not a power of two between 4KiB and 32MiB`, OBJECT_SIZE_ALLOWED);
  }
  const striping = parseStriping(
    given('stripeUnit', STRIPE_UNIT_ALLOWED), given('stripeCount', STRIPE_COUNT_ALLOWED), objectSize, fail);

  // the PV
  const fsType = oneOf('fsType', FS_TYPES, DEFAULTS.fsType)!;
  const imageNamePrefix = optionalName('imageNamePrefix', NAME_RULES.imageNamePrefix) ?? DEFAULTS.imageNamePrefix;
  const volumeSource = oneOf('volumeSource', VOLUME_SOURCES, DEFAULTS.volumeSource)!;
  const csiDriver = name('csiDriver', NAME_RULES.csiDriver, DEFAULTS.csiDriver);
  const mounter = oneOf('mounter', MOUNTERS, undefined);

  if (volumeSource === 'csi' && userSecretName === undefined) {
    fail('userSecretName', 'missing; ceph-csi maps the image on nodes with this secret (volumeSource "csi")',
      `${NAME_RULES.secretName.allowed}, or volumeSource "rbd" to use the nodes' own keyring`);
  }
  if (volumeSource === 'rbd') {
    const onlyForCsi = (key: Key) => {
      if (raw.has(key)) {
        fail(key, 'only applies to volumeSource "csi"', 'omit it, or set volumeSource "csi"');
      }
    };
    onlyForCsi('csiDriver');
    onlyForCsi('mounter');
    if (radosNamespace !== '') {
      fail('radosNamespace', 'the in-tree rbd volume source cannot map images in a RADOS namespace',
        'omit it, or set volumeSource "csi"');
    }
    try {
      inTreeMonitorList(monitors);
    } catch (error) {
      fail('monitors', (error as Error).message,
        'with volumeSource "rbd": host, host:port, v1:host:port, or an address vector that includes a v1 address');
    }
  }

  return {
    monitors,
    clusterID,
    adminId,
    adminSecret,
    pool,
    dataPool,
    radosNamespace,
    userId,
    userSecret: userSecretName === undefined ? undefined : { name: userSecretName, namespace: userSecretNamespace },
    imageFormat: 2,
    imageFeatures,
    fsType,
    objectSize,
    objectOrder: Math.log2(objectSize),
    striping,
    imageNamePrefix,
    volumeSource,
    csiDriver,
    mounter,
  };
}

const FEATURES_ALLOWED = `a comma-separated list of ${IMAGE_FEATURES.join(', ')} (object-map and journaling need ` +
  'exclusive-lock, fast-diff needs object-map), or "" for none';

function parseFeatures(value: string | undefined, field: string): ImageFeature[] {
  if (value === undefined) return [...DEFAULTS.imageFeatures];
  const requested = value.split(',').map((item) => item.trim());
  if (requested.includes('striping')) {
    throw new ParameterError(field, 'the striping feature is implied by stripeUnit and stripeCount; set those instead',
      FEATURES_ALLOWED);
  }
  try {
    return checkFeatures(requested, field);
  } catch (err) {
    if (err instanceof ValidationError) throw new ParameterError(field, err.problem, FEATURES_ALLOWED);
    throw err;
  }
}

const OBJECT_SIZE_ALLOWED = 'a power of two from 4KiB to 32MiB, as bytes or with K/KiB/M/MiB (e.g. 4M, 4MiB, 4194304)';
const STRIPE_UNIT_ALLOWED = 'a power of two from 4KiB up to objectSize, as bytes or with K/KiB/M/MiB, ' +
  'set together with stripeCount';
const STRIPE_COUNT_ALLOWED = 'a whole number from 1 upwards, set together with stripeUnit';

type Fail = (key: Key, problem: string, allowed: string) => never;

function layoutSize(key: 'objectSize' | 'stripeUnit', value: string | undefined, fallback: number, fail: Fail): number {
  if (value === undefined) return fallback;
  try {
    return parseByteSize(value);
  } catch {
    return fail(key, `${quote(value)} is not a size`, key === 'objectSize' ? OBJECT_SIZE_ALLOWED : STRIPE_UNIT_ALLOWED);
  }
}

function parseStriping(
  unitText: string | undefined, countText: string | undefined, objectSize: number, fail: Fail,
): ClassParameters['striping'] {
  if (unitText === undefined && countText === undefined) return undefined;
  if (unitText === undefined) return fail('stripeUnit', 'missing while stripeCount is set', STRIPE_UNIT_ALLOWED);
  if (countText === undefined) return fail('stripeCount', 'missing while stripeUnit is set', STRIPE_COUNT_ALLOWED);
  const unit = layoutSize('stripeUnit', unitText, 0, fail);
  // A power of two no larger than the (power-of-two) object size always divides it, as librbd requires.
  if (!isPowerOfTwo(unit) || unit < MIN_OBJECT_SIZE) {
    fail('stripeUnit', `${unit} bytes is not a power of two of at least 4KiB`, STRIPE_UNIT_ALLOWED);
  }
  if (unit > objectSize) fail('stripeUnit', `${unit} bytes is larger than objectSize (${objectSize})`, STRIPE_UNIT_ALLOWED);
  if (!/^\d+$/.test(countText) || !Number.isSafeInteger(Number(countText)) || Number(countText) < 1) {
    fail('stripeCount', `${quote(countText)} is not a whole number of at least 1`, STRIPE_COUNT_ALLOWED);
  }
  return { unit, count: Number(countText) };
}

// Snapshots of our volumes as records and handles: what a VolumeSnapshotClass may say, what a VolumeSnapshotContent
// keeps, and the snapshot handle. Pure functions; the Ceph side is in provisioner.ts and clones.ts.
//
// A snapshot of a claim is an image of its own, `snapshot-<content uid>`: a clone of the claim's image at that moment,
// with one snapshot, `snapshot`, that restores are cloned from. So it outlives its source: the source image can be
// deleted (it waits in the trash while the snapshot still reads through it) and the snapshot stays valid.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { nameProblem, quote } from '../ceph/names.js';
import { SnapshotError, type SnapshotRecord } from '../controllers/snapshot/snapshotter.js';
import { NAME_RULES, type SecretRef } from './parameters.js';
import { ANNOTATION_PREFIX, ANNOTATIONS, annotationsFor, type DeleteTarget, readDeleteTarget, readTargetAnnotations, VolumeRecordError } from './volume.js';

/** The one snapshot on a snapshot image. */
export const SNAPSHOT_NAME = 'snapshot';
export const SNAPSHOT_IMAGE_PREFIX = 'snapshot-';
/** The record's own keys, beside the PV's (ANNOTATIONS): which snapshot of the image, and whether we made it. */
export const SNAPSHOT_ANNOTATIONS = {
  snapshot: `${ANNOTATION_PREFIX}snapshot`,
  /** "created" for a snapshot image of ours (deleting it removes the image); "imported" for one we were given. */
  origin: `${ANNOTATION_PREFIX}snapshot-origin`,
  /** The source image, for a snapshot still to be cut. */
  sourceImage: `${ANNOTATION_PREFIX}source-image`,
} as const;

export class SnapshotParameterError extends Error {
  override readonly name = 'SnapshotParameterError';
  constructor(readonly field: string, readonly problem: string, readonly allowed: string) {
    super(`VolumeSnapshotClass parameter "${field}": ${problem}; allowed: ${allowed}`);
  }
}

/** Accepted spellings per key: ours first, then ceph-csi's where it has one. */
const SNAPSHOT_CLASS_KEYS = {
  monitors: ['monitors'],
  pool: ['pool'],
  radosNamespace: ['radosNamespace'],
  clusterID: ['clusterID'],
  adminId: ['adminId'],
  adminSecretName: ['adminSecretName', 'csi.storage.k8s.io/snapshotter-secret-name'],
  adminSecretNamespace: ['adminSecretNamespace', 'csi.storage.k8s.io/snapshotter-secret-namespace'],
} as const;
type SnapshotClassKey = keyof typeof SNAPSHOT_CLASS_KEYS;
const ALL_KEYS = Object.values(SNAPSHOT_CLASS_KEYS).flat();

export interface SnapshotClassParameters {
  monitors?: string;
  pool?: string;
  radosNamespace?: string;
  clusterID?: string;
  adminId?: string;
  adminSecret?: SecretRef;
}

/** Every key optional (a dynamic snapshot takes what it lacks from its source PV); none may be empty or unknown. */
export function parseSnapshotClassParameters(params: Record<string, string> | undefined): SnapshotClassParameters {
  const values = new Map<SnapshotClassKey, { field: string; value: string }>();
  for (const [field, value] of Object.entries(params ?? {})) {
    const key = (Object.keys(SNAPSHOT_CLASS_KEYS) as SnapshotClassKey[]).find((k) => (SNAPSHOT_CLASS_KEYS[k] as readonly string[]).includes(field));
    if (key === undefined) throw new SnapshotParameterError(field, 'unknown parameter', ALL_KEYS.join(', '));
    if (values.has(key)) throw new SnapshotParameterError(field, `given twice (also as "${values.get(key)!.field}")`, SNAPSHOT_CLASS_KEYS[key].join(' or '));
    values.set(key, { field, value });
  }
  const read = (key: SnapshotClassKey, rule: { allowed: string } & Parameters<typeof nameProblem>[0]): string | undefined => {
    const entry = values.get(key);
    if (entry === undefined) return undefined;
    if (entry.value === '') throw new SnapshotParameterError(entry.field, 'empty; leave the key out to use the source PV\'s', rule.allowed);
    const problem = nameProblem(rule, entry.value);
    if (problem) throw new SnapshotParameterError(entry.field, problem, rule.allowed);
    return entry.value;
  };
  const monitorsEntry = values.get('monitors');
  if (monitorsEntry?.value === '') throw new SnapshotParameterError('monitors', 'empty', 'comma-separated monitor addresses');
  const adminSecretName = read('adminSecretName', NAME_RULES.secretName);
  const adminSecretNamespace = read('adminSecretNamespace', NAME_RULES.namespace);
  if ((adminSecretName === undefined) !== (adminSecretNamespace === undefined)) {
    const missing = adminSecretName === undefined ? 'adminSecretName' : 'adminSecretNamespace';
    throw new SnapshotParameterError(missing, 'missing: the Secret needs both its name and its namespace', SNAPSHOT_CLASS_KEYS[missing].join(' or '));
  }
  const out: SnapshotClassParameters = {};
  if (monitorsEntry !== undefined) out.monitors = monitorsEntry.value;
  const pool = read('pool', NAME_RULES.pool);
  if (pool !== undefined) out.pool = pool;
  const radosNamespace = read('radosNamespace', NAME_RULES.radosNamespace);
  if (radosNamespace !== undefined) out.radosNamespace = radosNamespace;
  const clusterID = read('clusterID', NAME_RULES.clusterID);
  if (clusterID !== undefined) out.clusterID = clusterID;
  const adminId = read('adminId', NAME_RULES.cephId);
  if (adminId !== undefined) out.adminId = adminId;
  if (adminSecretName !== undefined && adminSecretNamespace !== undefined) out.adminSecret = { name: adminSecretName, namespace: adminSecretNamespace };
  return out;
}

/** `pool[/namespace]/image@snapshot`, as `rbd` spells a snapshot. */
export interface SnapshotHandle {
  pool: string;
  radosNamespace: string;
  image: string;
  snapshot: string;
}

const HANDLE_ALLOWED = 'pool/image@snapshot or pool/namespace/image@snapshot, as rbd spells a snapshot';

export function formatSnapshotHandle(handle: SnapshotHandle): string {
  const pool = handle.radosNamespace === '' ? handle.pool : `${handle.pool}/${handle.radosNamespace}`;
  return `${pool}/${handle.image}@${handle.snapshot}`;
}

export function parseSnapshotHandle(text: string, field = 'spec.source.snapshotHandle'): SnapshotHandle {
  const at = text.lastIndexOf('@');
  const parts = at < 0 ? [] : text.slice(0, at).split('/');
  const fail = (problem: string): never => {
    throw new SnapshotError('final', 'InvalidSnapshotHandle', `VolumeSnapshotContent field "${field}": ${problem}; allowed: ${HANDLE_ALLOWED}`);
  };
  if (at < 0 || parts.length < 2 || parts.length > 3) fail(`${quote(text)} is not a snapshot spec`);
  const [pool, radosNamespace, image] = parts.length === 3 ? parts as [string, string, string] : [parts[0]!, '', parts[1]!];
  const snapshot = text.slice(at + 1);
  for (const [what, rule, value] of [
    ['pool', NAME_RULES.pool, pool], ['image', NAME_RULES.image, image], ['snapshot', NAME_RULES.image, snapshot],
  ] as const) {
    const problem = nameProblem(rule, value);
    if (problem) fail(`its ${what} ${quote(value)}: ${problem}`);
  }
  if (radosNamespace !== '') {
    const problem = nameProblem(NAME_RULES.radosNamespace, radosNamespace);
    if (problem) fail(`its namespace ${quote(radosNamespace)}: ${problem}`);
  }
  return { pool, radosNamespace, image, snapshot };
}

/** The record for a new snapshot of `sourceVolume`: the PV's cluster and pool, its credentials unless the class names others. */
export function snapshotRecordFor(name: string, sourceVolume: V1PersistentVolume, params: SnapshotClassParameters): SnapshotRecord {
  let source: DeleteTarget;
  try {
    source = readDeleteTarget(sourceVolume);
  } catch (err) {
    if (err instanceof VolumeRecordError) throw new SnapshotError('final', 'InvalidVolumeRecord', `source ${err.message}`, { cause: err });
    throw err;
  }
  for (const [key, value, actual] of [['pool', params.pool, source.pool], ['monitors', params.monitors, source.monitors]] as const) {
    if (value !== undefined && value !== actual) {
      throw new SnapshotError('final', 'InvalidParameter', `VolumeSnapshotClass parameter "${key}": ${quote(value)} differs from the source volume's ${quote(actual)}; ` +
        'a snapshot is made where its volume is: leave the key out');
    }
  }
  const image = `${SNAPSHOT_IMAGE_PREFIX}${name}`;
  const target: DeleteTarget = {
    ...source,
    image,
    adminId: params.adminId ?? source.adminId,
    adminSecret: params.adminSecret ?? source.adminSecret,
  };
  const clusterID = sourceVolume.metadata?.annotations?.[ANNOTATIONS.clusterID] ?? '';
  return {
    ...annotationsFor(target, clusterID),
    [SNAPSHOT_ANNOTATIONS.snapshot]: SNAPSHOT_NAME,
    [SNAPSHOT_ANNOTATIONS.origin]: 'created',
    [SNAPSHOT_ANNOTATIONS.sourceImage]: source.image,
  };
}

const IMPORT_NEEDS = ['monitors', 'adminId', 'adminSecretName'] as const;

/** The record of a snapshot we are given (a pre-provisioned content): everything but the handle from its class. */
export function importRecordFor(snapshotHandle: string, params: SnapshotClassParameters): SnapshotRecord {
  const handle = parseSnapshotHandle(snapshotHandle);
  const missing = IMPORT_NEEDS.filter((key) => (key === 'adminSecretName' ? params.adminSecret : params[key]) === undefined);
  if (missing.length > 0) {
    throw new SnapshotError('final', 'InvalidParameter', `VolumeSnapshotClass parameters ${missing.map((m) => `"${m}"`).join(', ')}: missing; ` +
      'a pre-provisioned snapshot is found with its class\'s monitors, adminId and adminSecretName/-Namespace');
  }
  const target: DeleteTarget = {
    monitors: params.monitors!, pool: handle.pool, radosNamespace: handle.radosNamespace, image: handle.image,
    adminId: params.adminId!, adminSecret: params.adminSecret!,
  };
  return { ...annotationsFor(target, params.clusterID ?? ''), [SNAPSHOT_ANNOTATIONS.snapshot]: handle.snapshot, [SNAPSHOT_ANNOTATIONS.origin]: 'imported' };
}

export interface SnapshotLocation {
  target: DeleteTarget;
  snapshot: string;
  origin: 'created' | 'imported';
  sourceImage: string | undefined;
  clusterID: string;
}

/** Reads a record back, every value validated again (annotations are editable). */
export function readSnapshotRecord(record: SnapshotRecord): SnapshotLocation {
  let target: DeleteTarget;
  try {
    target = readTargetAnnotations(record, 'VolumeSnapshotContent', 'this snapshot was not made or imported by rbd-provisioner');
  } catch (err) {
    if (err instanceof VolumeRecordError) throw new SnapshotError('final', 'InvalidSnapshotRecord', err.message, { cause: err });
    throw err;
  }
  const field = (key: string) => `VolumeSnapshotContent field "metadata.annotations["${key}"]"`;
  const snapshot = record[SNAPSHOT_ANNOTATIONS.snapshot] ?? '';
  const problem = nameProblem(NAME_RULES.image, snapshot);
  if (problem) throw new SnapshotError('final', 'InvalidSnapshotRecord', `${field(SNAPSHOT_ANNOTATIONS.snapshot)}: ${problem}`);
  const origin = record[SNAPSHOT_ANNOTATIONS.origin];
  if (origin !== 'created' && origin !== 'imported') {
    throw new SnapshotError('final', 'InvalidSnapshotRecord', `${field(SNAPSHOT_ANNOTATIONS.origin)}: ${quote(origin ?? '')}; allowed: created, imported`);
  }
  // Only a snapshot image of ours is ever removed whole.
  if (origin === 'created' && !target.image.startsWith(SNAPSHOT_IMAGE_PREFIX)) {
    throw new SnapshotError('final', 'InvalidSnapshotRecord', `${field(ANNOTATIONS.image)}: ${quote(target.image)} is not a snapshot image of ours; refusing to touch it`);
  }
  const sourceImage = record[SNAPSHOT_ANNOTATIONS.sourceImage];
  return { target, snapshot, origin, sourceImage: sourceImage === undefined || sourceImage === '' ? undefined : sourceImage, clusterID: record[ANNOTATIONS.clusterID] ?? '' };
}

export function handleOf(location: SnapshotLocation): string {
  return formatSnapshotHandle({ pool: location.target.pool, radosNamespace: location.target.radosNamespace, image: location.target.image, snapshot: location.snapshot });
}

// Claim checks, the PV we return for a new image, and what deletion reads back from that PV. Pure functions.
//
// The PV carries everything deletion needs in annotations (never a key), so deletion works after the StorageClass is
// gone. The controller stamps name, claimRef, storageClassName, reclaim policy, provisioned-by and the finalizer.

import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { MONITORS_ALLOWED, parseMonitors } from '../ceph/monitors.js';
import { nameProblem, quote } from '../ceph/names.js';
import { type ClassParameters, inTreeMonitorList, NAME_RULES, type SecretRef } from './parameters.js';
import { formatBytes, MAX_BYTES, quantityToWholeMiB } from './size.js';

/** A claim that cannot be served as written; `field` is the claim's JSON path. */
export class ClaimError extends Error {
  override readonly name = 'ClaimError';
  constructor(readonly field: string, readonly problem: string, readonly allowed: string) {
    super(`PersistentVolumeClaim field "${field}": ${problem}; allowed: ${allowed}`);
  }
}

/** A PV that does not carry (or contradicts) what deletion needs; `field` names the annotation or spec field. */
export class VolumeRecordError extends Error {
  override readonly name = 'VolumeRecordError';
  constructor(readonly field: string, readonly problem: string, kind = 'PersistentVolume') {
    super(`${kind} field "${field}": ${problem}`);
  }
}

// ---- claims -----------------------------------------------------------------------------------------------------

const STORAGE_REQUEST = 'spec.resources.requests.storage';
const STORAGE_ALLOWED =
  'a positive Kubernetes quantity such as 1Gi, 500Mi, 1.5Gi, 10G or 1073741824, below 8Pi (rounded up to whole MiB)';

/**
 * The claim's storage request in bytes, rounded up to whole MiB. Only the request counts: a limit is a ceiling the
 * volume may later grow to, not a size to create now.
 */
export function requestedBytes(claim: V1PersistentVolumeClaim): number {
  const request: unknown = claim.spec?.resources?.requests?.['storage'];
  if (request === undefined || request === '') throw new ClaimError(STORAGE_REQUEST, 'missing', STORAGE_ALLOWED);
  if (typeof request !== 'string') throw new ClaimError(STORAGE_REQUEST, 'not a quantity string', STORAGE_ALLOWED);
  try {
    return quantityToWholeMiB(request);
  } catch (error) {
    const why = error instanceof RangeError ? error.message : 'not a Kubernetes quantity';
    throw new ClaimError(STORAGE_REQUEST, `${quote(request)} is ${why}`, STORAGE_ALLOWED);
  }
}

export const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteOncePod', 'ReadWriteMany'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];
export const VOLUME_MODES = ['Filesystem', 'Block'] as const;
export type VolumeMode = (typeof VOLUME_MODES)[number];

export interface ClaimShape {
  readonly accessModes: readonly AccessMode[];
  readonly volumeMode: VolumeMode;
}

const ACCESS_MODES_ALLOWED =
  'ReadWriteOnce, ReadOnlyMany, ReadWriteOncePod; ReadWriteMany only with volumeMode Block';

/** Access and volume modes we can serve: RWO, ROX and RWOP; RWX only on raw block devices. */
export function checkAccessModes(claim: V1PersistentVolumeClaim): ClaimShape {
  const volumeMode = claim.spec?.volumeMode ?? 'Filesystem';
  if (!(VOLUME_MODES as readonly string[]).includes(volumeMode)) {
    throw new ClaimError('spec.volumeMode', `unknown volume mode ${quote(volumeMode)}`, VOLUME_MODES.join(', '));
  }
  const accessModes = claim.spec?.accessModes ?? [];
  if (accessModes.length === 0) throw new ClaimError('spec.accessModes', 'missing', ACCESS_MODES_ALLOWED);
  for (const mode of accessModes) {
    if (!(ACCESS_MODES as readonly string[]).includes(mode)) {
      throw new ClaimError('spec.accessModes', `unknown access mode ${quote(mode)}`, ACCESS_MODES_ALLOWED);
    }
    // Two nodes mounting one ext4/xfs image at once corrupt it; raw devices leave coordination to the application.
    if (mode === 'ReadWriteMany' && volumeMode !== 'Block') {
      throw new ClaimError('spec.accessModes', 'ReadWriteMany needs volumeMode Block', ACCESS_MODES_ALLOWED);
    }
  }
  return { accessModes: [...new Set(accessModes)] as AccessMode[], volumeMode: volumeMode as VolumeMode };
}

/**
 * Everything about a claim that must hold before an image is created: no selector (a new volume cannot match
 * one), no data source unless the controller resolved it (else we would hand out an empty volume where content was
 * asked for), modes, and size.
 */
export function checkClaim(claim: V1PersistentVolumeClaim, sourceResolved = false): ClaimShape & { readonly requestedBytes: number } {
  if (claim.spec?.selector) {
    throw new ClaimError('spec.selector', 'dynamically provisioned volumes cannot match a selector', 'no selector');
  }
  if (!sourceResolved && (claim.spec?.dataSource || claim.spec?.dataSourceRef)) {
    const field = claim.spec.dataSourceRef ? 'spec.dataSourceRef' : 'spec.dataSource';
    throw new ClaimError(field, 'cloning and restoring from snapshots are not supported', 'no data source');
  }
  return { ...checkAccessModes(claim), requestedBytes: requestedBytes(claim) };
}

// ---- names ------------------------------------------------------------------------------------------------------

/** The image for a PV: `<prefix><pv name>`, the same on every retry so a crashed create is found again. */
export function imageNameFor(pvName: string, prefix: string): string {
  const image = `${prefix}${pvName}`;
  const problem = nameProblem(NAME_RULES.image, image);
  if (problem) throw new TypeError(`image name for PV ${quote(pvName)}: ${problem}; allowed: ${NAME_RULES.image.allowed}`);
  return image;
}

// ---- the PV -----------------------------------------------------------------------------------------------------

export const ANNOTATION_PREFIX = 'rbd.provisioner.ceph.io/';
export const ANNOTATIONS = {
  monitors: `${ANNOTATION_PREFIX}monitors`,
  clusterID: `${ANNOTATION_PREFIX}cluster-id`,
  pool: `${ANNOTATION_PREFIX}pool`,
  radosNamespace: `${ANNOTATION_PREFIX}rados-namespace`,
  image: `${ANNOTATION_PREFIX}image`,
  adminId: `${ANNOTATION_PREFIX}admin-id`,
  adminSecretName: `${ANNOTATION_PREFIX}admin-secret-name`,
  adminSecretNamespace: `${ANNOTATION_PREFIX}admin-secret-namespace`,
} as const;

export interface BuildVolumeInput {
  readonly params: ClassParameters;
  readonly claim: V1PersistentVolumeClaim;
  readonly imageName: string;
  /** The image's real size as librbd reports it. */
  readonly imageSizeBytes: number | bigint;
  /** The StorageClass's mountOptions. */
  readonly mountOptions?: readonly string[] | undefined;
  /**
   * csi only: the Secret ceph-csi's node plugin reads (node-secret.ts decides which). When absent, the class's user
   * Secret as is, for callers that know it already reads as the class's userId in ceph-csi's rules.
   */
  readonly nodeStageSecret?: SecretRef | undefined;
}

export function buildVolume(input: BuildVolumeInput): V1PersistentVolume {
  const { params, claim, imageName } = input;
  const { accessModes, volumeMode } = checkAccessModes(claim);
  const fsType = volumeMode === 'Filesystem' ? params.fsType : undefined;
  const userSecret = userSecretRef(params, claim);
  const nodeStageSecret = input.nodeStageSecret ?? userSecret;

  const spec: NonNullable<V1PersistentVolume['spec']> = {
    capacity: { storage: capacityOf(input.imageSizeBytes) },
    accessModes: [...accessModes],
    volumeMode,
  };
  if (input.mountOptions && input.mountOptions.length > 0) spec.mountOptions = [...input.mountOptions];

  if (params.volumeSource === 'csi') {
    // ceph-csi's static-volume shape (docs/static-pvc.md): volumeHandle is the image name, and the node plugin reads
    // clusterID, pool, dataPool, imageFeatures and mounter from the attributes.
    const volumeAttributes: Record<string, string> = {
      clusterID: params.clusterID,
      pool: params.pool,
      staticVolume: 'true',
      imageFeatures: params.imageFeatures.join(','),
    };
    if (params.dataPool !== undefined) volumeAttributes['dataPool'] = params.dataPool;
    // ceph-csi takes the namespace from its config map entry for clusterID; recorded here so the PV is self-describing.
    if (params.radosNamespace !== '') volumeAttributes['radosNamespace'] = params.radosNamespace;
    if (params.mounter !== undefined) volumeAttributes['mounter'] = params.mounter;
    spec.csi = {
      driver: params.csiDriver,
      volumeHandle: imageName,
      volumeAttributes,
      ...(fsType !== undefined && { fsType }),
      ...(nodeStageSecret !== undefined && { nodeStageSecretRef: { ...nodeStageSecret } }),
    };
  } else {
    spec.rbd = {
      monitors: inTreeMonitorList(params.monitors),
      image: imageName,
      pool: params.pool,
      user: params.userId,
      readOnly: false,
      ...(fsType !== undefined && { fsType }),
      ...(userSecret !== undefined && { secretRef: userSecret }),
    };
  }

  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { annotations: annotationsFor(deleteTargetOf(params, imageName), params.clusterID) },
    spec,
  };
}

function capacityOf(bytes: number | bigint): string {
  const valid = typeof bytes === 'bigint' ? bytes > 0n : Number.isSafeInteger(bytes) && bytes > 0 && bytes <= MAX_BYTES;
  if (!valid) throw new RangeError(`image size ${String(bytes)} is not a positive whole number of bytes`);
  return formatBytes(bytes);
}

// The class's user Secret; without a namespace, the legacy default is the claim's. The in-tree plugin reads its `key`
// as userId's key; ceph-csi reads it by its own rules (node-secret.ts).
function userSecretRef(params: ClassParameters, claim: V1PersistentVolumeClaim): SecretRef | undefined {
  if (params.userSecret === undefined) return undefined;
  const namespace = params.userSecret.namespace ?? claim.metadata?.namespace;
  if (!namespace) throw new ClaimError('metadata.namespace', 'missing', 'the claim\'s namespace');
  return { name: params.userSecret.name, namespace };
}

// ---- what deletion needs ----------------------------------------------------------------------------------------

export interface DeleteTarget {
  /** librados mon_host. */
  readonly monitors: string;
  readonly pool: string;
  /** "" is the pool's default namespace. */
  readonly radosNamespace: string;
  readonly image: string;
  readonly adminId: string;
  readonly adminSecret: SecretRef;
}

/** What deletion of `imageName` will need, straight from the class: also what to clean up if saving the PV fails. */
export function deleteTargetOf(params: ClassParameters, imageName: string): DeleteTarget {
  return {
    monitors: params.monitors,
    pool: params.pool,
    radosNamespace: params.radosNamespace,
    image: imageName,
    adminId: params.adminId,
    adminSecret: { ...params.adminSecret },
  };
}

export function annotationsFor(target: DeleteTarget, clusterID: string): Record<string, string> {
  const annotations: Record<string, string> = {
    [ANNOTATIONS.monitors]: target.monitors,
    [ANNOTATIONS.clusterID]: clusterID,
    [ANNOTATIONS.pool]: target.pool,
    [ANNOTATIONS.image]: target.image,
    [ANNOTATIONS.adminId]: target.adminId,
    [ANNOTATIONS.adminSecretName]: target.adminSecret.name,
    [ANNOTATIONS.adminSecretNamespace]: target.adminSecret.namespace,
  };
  if (target.radosNamespace !== '') annotations[ANNOTATIONS.radosNamespace] = target.radosNamespace;
  return annotations;
}

/**
 * Reads back what deleting this PV's image needs. Every value is validated again (annotations are editable), and
 * the image and pool must agree with the volume source, which the API server keeps immutable: a PV whose
 * annotations were edited to point elsewhere is refused rather than used to remove another image.
 */
export function readDeleteTarget(pv: V1PersistentVolume): DeleteTarget {
  const target = readTargetAnnotations(pv.metadata?.annotations ?? {}, 'PersistentVolume', 'this PV was not provisioned by rbd-provisioner');
  checkAgainstSource(pv, target, (key) => `metadata.annotations["${key}"]`);
  return target;
}

/**
 * The image and credentials recorded in an object's annotations (a PV's, or a VolumeSnapshotContent's), each value
 * validated again: annotations are editable. `kind` and `notOurs` word the errors.
 */
export function readTargetAnnotations(annotations: Record<string, string>, kind: string, notOurs: string): DeleteTarget {
  const annotationField = (key: string) => `metadata.annotations["${key}"]`;
  const read = (key: string, rule?: Parameters<typeof nameProblem>[0], optional = false): string => {
    const value = annotations[key];
    if (value === undefined || value === '') {
      if (optional) return '';
      throw new VolumeRecordError(annotationField(key), `missing; ${notOurs} or its annotations were removed`, kind);
    }
    const problem = rule ? nameProblem(rule, value) : undefined;
    if (problem) throw new VolumeRecordError(annotationField(key), `${problem}; expected ${rule!.allowed}`, kind);
    return value;
  };

  const monitors = read(ANNOTATIONS.monitors);
  try {
    parseMonitors(monitors);
  } catch (error) {
    throw new VolumeRecordError(annotationField(ANNOTATIONS.monitors), `${(error as Error).message}; expected ${MONITORS_ALLOWED}`, kind);
  }
  return {
    monitors,
    pool: read(ANNOTATIONS.pool, NAME_RULES.pool),
    radosNamespace: read(ANNOTATIONS.radosNamespace, NAME_RULES.radosNamespace, true),
    image: read(ANNOTATIONS.image, NAME_RULES.image),
    adminId: read(ANNOTATIONS.adminId, NAME_RULES.cephId),
    adminSecret: {
      name: read(ANNOTATIONS.adminSecretName, NAME_RULES.secretName),
      namespace: read(ANNOTATIONS.adminSecretNamespace, NAME_RULES.namespace),
    },
  };
}

function checkAgainstSource(pv: V1PersistentVolume, target: DeleteTarget, annotationField: (key: string) => string) {
  const source = pv.spec?.csi
    ? {
      kind: 'csi',
      image: ['spec.csi.volumeHandle', pv.spec.csi.volumeHandle],
      pool: ['spec.csi.volumeAttributes.pool', pv.spec.csi.volumeAttributes?.['pool']],
      radosNamespace: ['spec.csi.volumeAttributes.radosNamespace', pv.spec.csi.volumeAttributes?.['radosNamespace'] ?? ''],
    } as const
    : pv.spec?.rbd
      ? {
        kind: 'rbd',
        image: ['spec.rbd.image', pv.spec.rbd.image],
        pool: ['spec.rbd.pool', pv.spec.rbd.pool ?? 'rbd'],
        radosNamespace: undefined,
      } as const
      : undefined;
  if (!source) throw new VolumeRecordError('spec', 'has neither a csi nor an rbd volume source');
  const agree = (annotation: string, value: string, [sourceField, sourceValue]: readonly [string, string | undefined]) => {
    if (value !== sourceValue) {
      throw new VolumeRecordError(annotationField(annotation),
        `${quote(value)} does not match ${sourceField} ${quote(sourceValue ?? '')}; refusing to delete`);
    }
  };
  agree(ANNOTATIONS.image, target.image, source.image);
  agree(ANNOTATIONS.pool, target.pool, source.pool);
  if (source.radosNamespace) agree(ANNOTATIONS.radosNamespace, target.radosNamespace, source.radosNamespace);
}

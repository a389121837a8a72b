// PVs of the retired external-storage rbd-provisioner (kubernetes-incubator/external-storage, ceph/rbd): reading
// them, what deleting their image needs, and the csi PV and claim `rbd-provisioner migrate` replaces them with. Pure.
//
// Its PVs carry an in-tree `spec.rbd` (monitors, pool, image `kubernetes-dynamic-pvc-<uuid>`, user, secretRef = the
// user Secret, fsType) and `pv.kubernetes.io/provisioned-by: ceph.com/rbd`. The admin id and Secret a delete needs
// were never on the PV: the old provisioner read them from the StorageClass at delete time. So do we, while the class
// exists; an admin may also write them on the PV (our own annotation keys), which is what `migrate` does first.

import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { MONITORS_ALLOWED, parseMonitors } from '../ceph/monitors.js';
import { nameProblem, quote } from '../ceph/names.js';
import { IMAGE_FEATURES, NAME_RULES, parseClassParameters, type ClassParameters, type SecretRef, DEFAULTS } from './parameters.js';
import { ANN_PROVISIONED_BY } from '../controllers/provision/decisions.js';
import { ANNOTATIONS, buildVolume, VolumeRecordError, type DeleteTarget } from './volume.js';

/** The retired provisioner's default name: what its PVs carry in `pv.kubernetes.io/provisioned-by`. */
export const LEGACY_PROVISIONER_NAME = 'ceph.com/rbd';
/** The old provisioner's own identity annotation (its name, unless it ran with another id). */
export const LEGACY_IDENTITY_ANNOTATION = 'rbdProvisionerIdentity';

/**
 * The progress of a migration, JSON, on the PV being migrated and then on its replacement: everything a re-run needs
 * to finish what a crash interrupted. It never holds a key.
 */
export const MIGRATION_ANNOTATION = 'rbd.provisioner.ceph.io/migration';

/** A legacy PV whose fields are not what the old provisioner wrote; `field` is the PV's JSON path. */
export { VolumeRecordError };

/** What delete or migrate cannot find out by itself; the message names what is missing and how to give it. */
export class LegacyAdminError extends Error {
  override readonly name = 'LegacyAdminError';
}

export interface LegacyVolume {
  readonly name: string;
  readonly uid: string;
  /** librados mon_host form of spec.rbd.monitors. */
  readonly monitors: string;
  readonly pool: string;
  readonly image: string;
  /** spec.rbd.user: the cephx id nodes map with. */
  readonly userId: string;
  /** spec.rbd.secretRef: the user's Secret (data key `key`). */
  readonly userSecret: SecretRef | undefined;
  readonly fsType: string | undefined;
  readonly storageClassName: string;
  /** The API's default is Retain: a PV without a policy is never taken for Delete. */
  readonly reclaimPolicy: string;
  readonly phase: string | undefined;
  readonly claim: { readonly namespace: string; readonly name: string; readonly uid: string } | undefined;
}

/** Whether a PV was provisioned by one of these names (the retired provisioner's) and is still in-tree rbd. */
export function isLegacyVolume(pv: V1PersistentVolume, names: readonly string[]): boolean {
  const by = pv.metadata?.annotations?.[ANN_PROVISIONED_BY];
  return by !== undefined && names.includes(by) && pv.spec?.rbd != null;
}

/** Reads and checks a legacy PV. Throws VolumeRecordError naming the field. */
export function readLegacyVolume(pv: V1PersistentVolume): LegacyVolume {
  const rbd = pv.spec?.rbd;
  if (rbd == null) throw new VolumeRecordError('spec.rbd', 'missing: not an in-tree rbd PV of the retired provisioner');
  const monitorList = rbd.monitors ?? [];
  if (monitorList.length === 0) throw new VolumeRecordError('spec.rbd.monitors', `missing; expected ${MONITORS_ALLOWED}`);
  let monitors: string;
  try {
    monitors = parseMonitors(monitorList.join(',')).map((entry) => entry.address).join(',');
  } catch (error) {
    throw new VolumeRecordError('spec.rbd.monitors', `${(error as Error).message}; expected ${MONITORS_ALLOWED}`);
  }
  const checked = (field: string, value: string, rule: Parameters<typeof nameProblem>[0]): string => {
    const problem = nameProblem(rule, value);
    if (problem) throw new VolumeRecordError(field, `${problem}; expected ${rule.allowed}`);
    return value;
  };
  const ref = pv.spec?.claimRef;
  const claim = ref?.name !== undefined && ref.name !== '' && ref.namespace !== undefined && ref.namespace !== ''
    ? { namespace: ref.namespace, name: ref.name, uid: ref.uid ?? '' }
    : undefined;
  let userSecret: SecretRef | undefined;
  if (rbd.secretRef?.name !== undefined && rbd.secretRef.name !== '') {
    // The old provisioner always wrote the namespace; the in-tree plugin falls back to the claim's otherwise.
    const namespace = rbd.secretRef.namespace ?? claim?.namespace ?? '';
    userSecret = {
      name: checked('spec.rbd.secretRef.name', rbd.secretRef.name, NAME_RULES.secretName),
      namespace: checked('spec.rbd.secretRef.namespace', namespace, NAME_RULES.namespace),
    };
  }
  return {
    name: pv.metadata?.name ?? '',
    uid: pv.metadata?.uid ?? '',
    monitors,
    pool: checked('spec.rbd.pool', rbd.pool ?? 'rbd', NAME_RULES.pool),
    image: checked('spec.rbd.image', rbd.image, NAME_RULES.image),
    userId: checked('spec.rbd.user', rbd.user ?? 'admin', NAME_RULES.cephId),
    userSecret,
    fsType: rbd.fsType === undefined || rbd.fsType === '' ? undefined : rbd.fsType,
    storageClassName: pv.spec?.storageClassName ?? '',
    reclaimPolicy: pv.spec?.persistentVolumeReclaimPolicy ?? 'Retain',
    phase: pv.status?.phase,
    claim,
  };
}

export interface LegacyAdmin {
  readonly adminId: string;
  readonly adminSecret: SecretRef;
  /** Where it was read: the PV's annotations, or the StorageClass. */
  readonly from: 'pv' | 'class';
}

/** A class parameter, matched case-insensitively as the old provisioner did. */
function classParameter(storageClass: V1StorageClass, key: string): string | undefined {
  const lower = key.toLowerCase();
  const found = Object.entries(storageClass.parameters ?? {}).find(([k]) => k.toLowerCase() === lower);
  const value = found?.[1]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** The one command that gives a PV the admin credentials its delete needs, without any key. */
export function annotateAdminCommand(pvName: string): string {
  return `kubectl annotate pv ${pvName} ${ANNOTATIONS.adminId}=<admin id> ${ANNOTATIONS.adminSecretName}=<Secret name> ${ANNOTATIONS.adminSecretNamespace}=<Secret namespace>`;
}

/**
 * The admin id and Secret to delete (or migrate) a legacy PV's image with: from the PV's own annotations when an
 * admin (or migrate) wrote them, else from its StorageClass (adminId, adminSecretName, adminSecretNamespace, with the
 * old provisioner's defaults "admin" and "default"). Throws LegacyAdminError saying what is missing and how to fix it.
 */
export function legacyAdminOf(pv: V1PersistentVolume, storageClass: V1StorageClass | undefined): LegacyAdmin {
  const pvName = pv.metadata?.name ?? '';
  const annotations = pv.metadata?.annotations ?? {};
  const check = (what: string, value: string, rule: Parameters<typeof nameProblem>[0]): string => {
    const problem = nameProblem(rule, value);
    if (problem) throw new LegacyAdminError(`PersistentVolume ${pvName}: ${what} ${quote(value)}: ${problem}; allowed: ${rule.allowed}`);
    return value;
  };
  const secretName = annotations[ANNOTATIONS.adminSecretName];
  if (secretName !== undefined && secretName !== '') {
    return {
      adminId: check(`annotation ${ANNOTATIONS.adminId}`, annotations[ANNOTATIONS.adminId] || DEFAULTS.adminId, NAME_RULES.cephId),
      adminSecret: {
        name: check(`annotation ${ANNOTATIONS.adminSecretName}`, secretName, NAME_RULES.secretName),
        namespace: check(`annotation ${ANNOTATIONS.adminSecretNamespace}`, annotations[ANNOTATIONS.adminSecretNamespace] || DEFAULTS.adminSecretNamespace, NAME_RULES.namespace),
      },
      from: 'pv',
    };
  }
  const className = pv.spec?.storageClassName ?? '';
  const fix = `recreate StorageClass ${quote(className)} with its parameters adminId, adminSecretName and adminSecretNamespace, ` +
    `or give the PV its admin Secret: ${annotateAdminCommand(pvName)}, or convert it with "rbd-provisioner migrate"`;
  if (storageClass === undefined) {
    throw new LegacyAdminError(`PersistentVolume ${pvName} of the retired rbd-provisioner carries no Ceph admin id and admin Secret, ` +
      `and its StorageClass ${quote(className)}, where the old provisioner kept them, no longer exists; to delete its image, ${fix}`);
  }
  const adminSecretName = classParameter(storageClass, 'adminSecretName');
  if (adminSecretName === undefined) {
    throw new LegacyAdminError(`PersistentVolume ${pvName}: its StorageClass ${quote(className)} has no parameter "adminSecretName", ` +
      `and the PV carries no admin Secret; to delete its image, ${fix}`);
  }
  return {
    adminId: check(`StorageClass ${quote(className)} parameter "adminId"`, classParameter(storageClass, 'adminId') ?? DEFAULTS.adminId, NAME_RULES.cephId),
    adminSecret: {
      name: check(`StorageClass ${quote(className)} parameter "adminSecretName"`, adminSecretName, NAME_RULES.secretName),
      namespace: check(`StorageClass ${quote(className)} parameter "adminSecretNamespace"`, classParameter(storageClass, 'adminSecretNamespace') ?? DEFAULTS.adminSecretNamespace, NAME_RULES.namespace),
    },
    from: 'class',
  };
}

/** What deleting a legacy PV's image needs (the same shape as one of ours). Throws VolumeRecordError, LegacyAdminError. */
export function legacyDeleteTarget(pv: V1PersistentVolume, storageClass: V1StorageClass | undefined): DeleteTarget {
  const legacy = readLegacyVolume(pv);
  const admin = legacyAdminOf(pv, storageClass);
  return { monitors: legacy.monitors, pool: legacy.pool, radosNamespace: '', image: legacy.image, adminId: admin.adminId, adminSecret: admin.adminSecret };
}

// ---- conversion to csi ------------------------------------------------------------------------------------------

/**
 * The class parameters our provisioner would have used to make this volume: the PV's placement and user, the admin
 * credentials, the image's own features. Parsed by the same parser as a StorageClass, so the PV built from them is
 * exactly what our provisioner builds (clusterID derived from the monitors as for a class without one).
 */
export function legacyClassParameters(legacy: LegacyVolume, admin: LegacyAdmin, imageFeatures: readonly string[], options: { clusterID?: string; csiDriver?: string } = {}): ClassParameters {
  if (legacy.userSecret === undefined) {
    throw new VolumeRecordError('spec.rbd.secretRef', 'missing; ceph-csi maps the image on nodes with the user Secret, so a csi PV needs one');
  }
  // librbd reports features no class can ask for (striping is implied by the layout; data-pool, operations, ...).
  const features = imageFeatures.filter((feature) => (IMAGE_FEATURES as readonly string[]).includes(feature));
  return parseClassParameters({
    monitors: legacy.monitors,
    pool: legacy.pool,
    adminId: admin.adminId,
    adminSecretName: admin.adminSecret.name,
    adminSecretNamespace: admin.adminSecret.namespace,
    userId: legacy.userId,
    userSecretName: legacy.userSecret.name,
    userSecretNamespace: legacy.userSecret.namespace,
    imageFeatures: features.join(','),
    ...(legacy.fsType === undefined ? {} : { fsType: legacy.fsType }),
    ...(options.clusterID === undefined ? {} : { clusterID: options.clusterID }),
    ...(options.csiDriver === undefined ? {} : { csiDriver: options.csiDriver }),
  });
}

/** What migrate keeps (in MIGRATION_ANNOTATION) to finish a conversion after a crash at any step. */
export interface MigrationRecord {
  /** The legacy PV and the claim bound to it when the migration started. */
  readonly oldPv: string;
  readonly newPv: string;
  readonly claim: { readonly namespace: string; readonly name: string; readonly uid: string };
  /** The legacy PV's reclaim policy, restored on the new PV at the end. */
  readonly reclaimPolicy: string;
  /** The claim to recreate (metadata trimmed, spec.volumeName = newPv). */
  readonly claimTemplate: V1PersistentVolumeClaim;
  /** done: the new PV carries the original policy and the image our ownership metadata. */
  readonly done?: boolean;
}

/** The new PV's name: another than the legacy PV's, so that both exist for a while and a crash never loses either. */
export function migratedVolumeName(oldPv: string): string {
  return `${oldPv.slice(0, 248)}-csi`;
}

// Annotations of a bound claim that belong to its old binding or its old provisioner, not to the claim itself.
const CLAIM_ANNOTATIONS_DROPPED = [
  'pv.kubernetes.io/bind-completed', 'pv.kubernetes.io/bound-by-controller', 'volume.kubernetes.io/selected-node',
  'volume.beta.kubernetes.io/storage-provisioner', 'volume.kubernetes.io/storage-provisioner', 'kubectl.kubernetes.io/last-applied-configuration',
];

/** The claim as recreated: same name, labels, annotations and request, pre-bound to the new PV. */
export function claimTemplateOf(claim: V1PersistentVolumeClaim, newPv: string): V1PersistentVolumeClaim {
  const annotations = Object.fromEntries(Object.entries(claim.metadata?.annotations ?? {}).filter(([key]) => !CLAIM_ANNOTATIONS_DROPPED.includes(key)));
  const spec = claim.spec ?? {};
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: claim.metadata?.name ?? '',
      namespace: claim.metadata?.namespace ?? '',
      ...(claim.metadata?.labels === undefined ? {} : { labels: { ...claim.metadata.labels } }),
      ...(Object.keys(annotations).length === 0 ? {} : { annotations }),
    },
    spec: {
      ...(spec.accessModes === undefined ? {} : { accessModes: [...spec.accessModes] }),
      ...(spec.resources === undefined ? {} : { resources: spec.resources }),
      ...(spec.storageClassName === undefined ? {} : { storageClassName: spec.storageClassName }),
      ...(spec.volumeMode === undefined ? {} : { volumeMode: spec.volumeMode }),
      volumeName: newPv,
    },
  };
}

export interface ConvertInput {
  readonly pv: V1PersistentVolume;
  /** The live claim bound to the PV; on a resumed migration, the recorded template (the claim may be gone). */
  readonly claim: V1PersistentVolumeClaim;
  /** A migration already under way: its record (original policy, claim) wins over what the PV says now. */
  readonly record?: MigrationRecord;
  readonly admin: LegacyAdmin;
  /** The image's size and features as librbd reports them. */
  readonly imageSizeBytes: number;
  readonly imageFeatures: readonly string[];
  /** The Secret ceph-csi reads on nodes (node-secret.ts decides which, as for a new volume). */
  readonly nodeStageSecret: SecretRef | undefined;
  readonly provisionerName: string;
  readonly clusterID?: string;
  readonly csiDriver?: string;
}

/**
 * The csi PV that replaces a legacy one: buildVolume's shape (volumeHandle = the image, clusterID, pool, our delete
 * annotations), then what the controller stamps (provisioned-by, storageClassName, mount options), pre-bound to the
 * claim by namespace and name (the recreated claim has a new uid), Retain until the migration is done, and the record.
 */
export function convertVolume(input: ConvertInput): { volume: V1PersistentVolume; record: MigrationRecord } {
  const legacy = readLegacyVolume(input.pv);
  if (legacy.claim === undefined && input.record === undefined) throw new VolumeRecordError('spec.claimRef', 'missing: the PV is not bound to a claim; only bound PVs are migrated');
  const params = legacyClassParameters(legacy, input.admin, input.imageFeatures, { ...(input.clusterID === undefined ? {} : { clusterID: input.clusterID }), ...(input.csiDriver === undefined ? {} : { csiDriver: input.csiDriver }) });
  const newPv = migratedVolumeName(legacy.name);
  const built = buildVolume({
    params,
    claim: input.claim,
    imageName: legacy.image,
    imageSizeBytes: input.imageSizeBytes,
    mountOptions: input.pv.spec?.mountOptions,
    nodeStageSecret: input.nodeStageSecret,
  });
  const record: MigrationRecord = input.record ?? {
    oldPv: legacy.name,
    newPv,
    claim: legacy.claim!,
    reclaimPolicy: legacy.reclaimPolicy,
    claimTemplate: claimTemplateOf(input.claim, newPv),
  };
  const volume: V1PersistentVolume = {
    ...built,
    metadata: {
      name: newPv,
      labels: { ...(input.pv.metadata?.labels ?? {}) },
      annotations: { ...built.metadata?.annotations, [ANN_PROVISIONED_BY]: input.provisionerName, [MIGRATION_ANNOTATION]: JSON.stringify(record) },
    },
    spec: {
      ...built.spec,
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: record.claim.namespace, name: record.claim.name },
      storageClassName: legacy.storageClassName,
      persistentVolumeReclaimPolicy: 'Retain',
      ...(input.pv.spec?.nodeAffinity === undefined ? {} : { nodeAffinity: input.pv.spec.nodeAffinity }),
    },
  };
  return { volume, record };
}

/** The record on a PV, or undefined; throws VolumeRecordError when it is there but unreadable. */
export function readMigrationRecord(pv: V1PersistentVolume): MigrationRecord | undefined {
  const text = pv.metadata?.annotations?.[MIGRATION_ANNOTATION];
  if (text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as MigrationRecord;
    if (typeof record.oldPv !== 'string' || typeof record.newPv !== 'string' || typeof record.claim?.uid !== 'string' || typeof record.reclaimPolicy !== 'string' || record.claimTemplate === undefined) {
      throw new TypeError('fields missing');
    }
    return record;
  } catch (error) {
    throw new VolumeRecordError(`metadata.annotations["${MIGRATION_ANNOTATION}"]`, `unreadable (${(error as Error).message}); it was edited by hand: restore it or remove it and start over`);
  }
}

// Pure decisions: which claims to provision for and what to do with which volumes. No I/O, table-tested.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';

export const ANN_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
export const ANN_BETA_STORAGE_PROVISIONER = 'volume.beta.kubernetes.io/storage-provisioner';
export const ANN_SELECTED_NODE = 'volume.kubernetes.io/selected-node';
export const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
export const ANN_BETA_STORAGE_CLASS = 'volume.beta.kubernetes.io/storage-class';
export const PV_FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';

export function volumeNameFor(claim: V1PersistentVolumeClaim): string {
  return `pvc-${claim.metadata?.uid ?? ''}`;
}

export function claimClassName(claim: V1PersistentVolumeClaim): string | undefined {
  return claim.spec?.storageClassName ?? claim.metadata?.annotations?.[ANN_BETA_STORAGE_CLASS];
}

export function claimKey(claim: V1PersistentVolumeClaim): string {
  return `${claim.metadata?.namespace ?? ''}/${claim.metadata?.name ?? ''}`;
}

export type ClaimDecision =
  | { action: 'skip'; reason: string }
  | { action: 'fail'; reason: string; message: string; retry: 'slow' | 'backoff' }
  | { action: 'provision'; pvName: string; storageClass: V1StorageClass; selectedNode?: string; dataSource?: ClaimDataSource };

/** What a claim's data asks to be copied from, in its own namespace. */
export interface ClaimDataSource {
  kind: 'PersistentVolumeClaim' | 'VolumeSnapshot';
  name: string;
}

const DATA_SOURCES_ALLOWED = 'kind PersistentVolumeClaim (apiGroup "") or kind VolumeSnapshot (apiGroup snapshot.storage.k8s.io), in the claim\'s namespace';

/** The claim's data source (dataSourceRef wins, as in Kubernetes); a string says why it cannot be served. */
export function claimDataSource(claim: V1PersistentVolumeClaim): ClaimDataSource | string | undefined {
  const ref = claim.spec?.dataSourceRef as { apiGroup?: string; kind?: string; name?: string; namespace?: string } | undefined | null;
  const source = ref ?? claim.spec?.dataSource;
  if (source == null) return undefined;
  const field = ref != null ? 'spec.dataSourceRef' : 'spec.dataSource';
  const namespace = ref?.namespace;
  if (namespace !== undefined && namespace !== '' && namespace !== claim.metadata?.namespace) {
    return `PersistentVolumeClaim field "${field}.namespace": "${namespace}" is another namespace; cross-namespace data sources are not supported; allowed: ${DATA_SOURCES_ALLOWED}`;
  }
  const apiGroup = source.apiGroup ?? '';
  const name = source.name ?? '';
  if (source.kind === 'PersistentVolumeClaim' && apiGroup === '' && name !== '') return { kind: 'PersistentVolumeClaim', name };
  if (source.kind === 'VolumeSnapshot' && apiGroup === 'snapshot.storage.k8s.io' && name !== '') return { kind: 'VolumeSnapshot', name };
  return `PersistentVolumeClaim field "${field}": kind "${source.kind ?? ''}" of apiGroup "${apiGroup}"${name === '' ? ' without a name' : ''} is not supported; allowed: ${DATA_SOURCES_ALLOWED}`;
}

export interface ClaimContext {
  provisionerName: string;
  storageClass(name: string): V1StorageClass | undefined;
  volumeExists(pvName: string): boolean;
}

export function decideClaim(claim: V1PersistentVolumeClaim, context: ClaimContext): ClaimDecision {
  const annotations = claim.metadata?.annotations ?? {};
  if (claim.metadata?.deletionTimestamp !== undefined && claim.metadata.deletionTimestamp !== null) {
    return { action: 'skip', reason: 'the claim is being deleted' };
  }
  if ((claim.spec?.volumeName ?? '') !== '') return { action: 'skip', reason: 'the claim already names a volume' };
  const requested = annotations[ANN_STORAGE_PROVISIONER] ?? annotations[ANN_BETA_STORAGE_PROVISIONER];
  if (requested !== context.provisionerName) return { action: 'skip', reason: 'the claim is not for this provisioner' };
  const uid = claim.metadata?.uid ?? '';
  if (uid === '') return { action: 'skip', reason: 'the claim has no uid' };
  const pvName = volumeNameFor(claim);
  if (context.volumeExists(pvName)) return { action: 'skip', reason: 'its PV already exists; the PV controller binds it' };
  const className = claimClassName(claim) ?? '';
  if (className === '') return { action: 'skip', reason: 'the claim names no StorageClass' };
  const storageClass = context.storageClass(className);
  if (storageClass === undefined) {
    return { action: 'fail', reason: 'StorageClassNotFound', message: `storageclass.storage.k8s.io "${className}" not found`, retry: 'slow' };
  }
  if (storageClass.provisioner !== context.provisionerName) {
    return { action: 'skip', reason: 'the StorageClass names another provisioner' };
  }
  const selectedNode = annotations[ANN_SELECTED_NODE];
  const hasNode = selectedNode !== undefined && selectedNode !== '';
  if (storageClass.volumeBindingMode === 'WaitForFirstConsumer' && !hasNode) {
    return { action: 'skip', reason: 'WaitForFirstConsumer: no node selected yet' };
  }
  if (claim.spec?.selector !== undefined && claim.spec.selector !== null) {
    return { action: 'fail', reason: 'SelectorNotSupported', message: 'claim.spec.selector is not supported by dynamic provisioning', retry: 'slow' };
  }
  const dataSource = claimDataSource(claim);
  if (typeof dataSource === 'string') return { action: 'fail', reason: 'DataSourceNotSupported', message: dataSource, retry: 'slow' };
  return { action: 'provision', pvName, storageClass, ...(hasNode ? { selectedNode } : {}), ...(dataSource === undefined ? {} : { dataSource }) };
}

export type VolumeDecision =
  | { action: 'skip'; reason: string }
  | { action: 'delete' }
  | { action: 'add-finalizer' }
  | { action: 'remove-finalizer'; reason: string };

export function hasOurFinalizer(volume: V1PersistentVolume): boolean {
  return (volume.metadata?.finalizers ?? []).includes(PV_FINALIZER);
}

/**
 * takeOver: retired provisioners (--take-over-provisioner) whose PVs we delete when they are Released with policy
 * Delete, and otherwise leave exactly as they are (no finalizer of ours: they are not ours until then).
 */
export function decideVolume(volume: V1PersistentVolume, provisionerName: string, takeOver: readonly string[] = []): VolumeDecision {
  const provisionedBy = volume.metadata?.annotations?.[ANN_PROVISIONED_BY];
  if (provisionedBy !== provisionerName) {
    if (provisionedBy === undefined || !takeOver.includes(provisionedBy)) return { action: 'skip', reason: 'the PV was not provisioned by us' };
    return decideTakenOverVolume(volume, provisionedBy);
  }
  const finalizer = hasOurFinalizer(volume);
  const deleting = volume.metadata?.deletionTimestamp !== undefined && volume.metadata.deletionTimestamp !== null;
  // The API defaults a PV's policy to Retain; never treat a missing policy as Delete.
  const policy = volume.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
  const phase = volume.status?.phase;

  if (policy !== 'Delete') {
    return finalizer ? { action: 'remove-finalizer', reason: `reclaim policy is ${policy}` } : { action: 'skip', reason: `reclaim policy is ${policy}` };
  }
  if (deleting && !finalizer) return { action: 'skip', reason: 'being deleted and our finalizer is gone: the volume was removed' };
  if (phase === 'Released') return { action: 'delete' };
  if (deleting && phase === 'Failed') return { action: 'delete' };
  if (!deleting && !finalizer && phase === 'Bound') return { action: 'add-finalizer' };
  if (deleting && phase === 'Bound') return { action: 'skip', reason: 'bound: pv-protection holds it until the claim is gone' };
  return { action: 'skip', reason: `phase ${phase ?? 'unknown'}: nothing to do` };
}

function decideTakenOverVolume(volume: V1PersistentVolume, provisionedBy: string): VolumeDecision {
  const policy = volume.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
  if (policy !== 'Delete') return { action: 'skip', reason: `a PV of ${provisionedBy} (taken over) with reclaim policy ${policy}: kept` };
  if (volume.metadata?.deletionTimestamp != null) return { action: 'skip', reason: `a PV of ${provisionedBy} (taken over) being deleted: nothing to do` };
  if (volume.status?.phase === 'Released') return { action: 'delete' };
  return { action: 'skip', reason: `a PV of ${provisionedBy} (taken over) in phase ${volume.status?.phase ?? 'unknown'}: only a Released one is deleted` };
}

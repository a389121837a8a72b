// Stamps the generic parts onto the PV the provisioner built.
import type { V1NodeSelectorTerm, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass, V1TopologySelectorTerm, V1VolumeNodeAffinity } from '@kubernetes/client-node';
import { ANN_PROVISIONED_BY, PV_FINALIZER, claimClassName } from './decisions.js';

export interface StampInput {
  pvName: string;
  claim: V1PersistentVolumeClaim;
  storageClass: V1StorageClass;
  provisionerName: string;
}

/** Returns a new object; the provisioner's PV is not modified. */
export function stampVolume(built: V1PersistentVolume, input: StampInput): V1PersistentVolume {
  const { claim, storageClass } = input;
  const policy = storageClass.reclaimPolicy ?? 'Delete';
  const finalizers = [...(built.metadata?.finalizers ?? [])];
  if (policy === 'Delete' && !finalizers.includes(PV_FINALIZER)) finalizers.push(PV_FINALIZER);
  const mountOptions = built.spec?.mountOptions !== undefined && built.spec.mountOptions.length > 0 ? built.spec.mountOptions : storageClass.mountOptions;
  const nodeAffinity = built.spec?.nodeAffinity ?? nodeAffinityOf(storageClass.allowedTopologies);
  const metadata = { ...(built.metadata ?? {}) };
  delete metadata.resourceVersion;
  delete metadata.uid;
  return {
    ...built,
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      ...metadata,
      name: input.pvName,
      annotations: { ...(built.metadata?.annotations ?? {}), [ANN_PROVISIONED_BY]: input.provisionerName },
      ...(finalizers.length > 0 ? { finalizers } : {}),
    },
    spec: {
      ...(built.spec ?? {}),
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata?.namespace ?? '',
        name: claim.metadata?.name ?? '',
        uid: claim.metadata?.uid ?? '',
        ...(claim.metadata?.resourceVersion === undefined ? {} : { resourceVersion: claim.metadata.resourceVersion }),
      },
      storageClassName: claimClassName(claim) ?? storageClass.metadata?.name ?? '',
      persistentVolumeReclaimPolicy: policy,
      ...(mountOptions === undefined || mountOptions.length === 0 ? {} : { mountOptions }),
      ...(nodeAffinity === undefined ? {} : { nodeAffinity }),
    },
  };
}

/**
 * The class's allowedTopologies as the PV's node affinity, as external-provisioner does: the scheduler honours them
 * only while the claim is unbound, and a Pod that uses the volume later must land where the admin allowed it too.
 * Terms are ORed and, within a term, the label expressions ANDed, in both shapes.
 */
function nodeAffinityOf(allowed: V1TopologySelectorTerm[] | undefined): V1VolumeNodeAffinity | undefined {
  const terms: V1NodeSelectorTerm[] = (allowed ?? [])
    .map((term) => (term.matchLabelExpressions ?? []).map((e) => ({ key: e.key, operator: 'In', values: [...e.values] })))
    .filter((expressions) => expressions.length > 0)
    .map((matchExpressions) => ({ matchExpressions }));
  return terms.length === 0 ? undefined : { required: { nodeSelectorTerms: terms } };
}

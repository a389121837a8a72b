// The ceph-csi config loop's storage interface (ClusterEntries), for RBD: which entry of ceph-csi's config map a
// StorageClass or one of our PVs needs. Classes say it through their parameters (parameters.ts, the same clusterID
// as their PVs get); a PV through what it carries: the clusterID the node plugin reads from its volume attributes, and
// the monitors recorded in its annotations (volume.ts), so that it keeps its entry after its class is gone.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { parseMonitors } from '../ceph/monitors.js';
import { nameProblem } from '../ceph/names.js';
import type { ClusterEntries, ClusterEntry } from '../controllers/csiconfig/decisions.js';
import { NAME_RULES, parseClassParameters } from './parameters.js';
import { ANNOTATIONS } from './volume.js';

export const rbdClusterEntries: ClusterEntries = {
  forClass(parameters): ClusterEntry | undefined {
    const params = parseClassParameters(parameters);
    // In-tree rbd PVs carry their monitors themselves; ceph-csi never sees them.
    if (params.volumeSource !== 'csi') return undefined;
    return {
      clusterID: params.clusterID,
      monitors: parseMonitors(params.monitors).map((entry) => entry.address),
      radosNamespace: params.radosNamespace,
    };
  },

  forVolume(volume: V1PersistentVolume): ClusterEntry | undefined {
    const csi = volume.spec?.csi;
    if (csi === undefined) return undefined;
    const clusterID = csi.volumeAttributes?.['clusterID'];
    const monitorsText = volume.metadata?.annotations?.[ANNOTATIONS.monitors];
    if (clusterID === undefined || monitorsText === undefined || nameProblem(NAME_RULES.clusterID, clusterID) !== undefined) return undefined;
    let monitors: string[];
    try {
      monitors = parseMonitors(monitorsText).map((entry) => entry.address);
    } catch {
      return undefined;
    }
    const radosNamespace = csi.volumeAttributes?.['radosNamespace'] ?? volume.metadata?.annotations?.[ANNOTATIONS.radosNamespace] ?? '';
    if (radosNamespace !== '' && nameProblem(NAME_RULES.radosNamespace, radosNamespace) !== undefined) return undefined;
    return { clusterID, monitors, radosNamespace };
  },
};

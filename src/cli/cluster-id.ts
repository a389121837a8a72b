// `rbd-provisioner cluster-id`: prints the ceph-csi clusterID a StorageClass with these parameters gets, before any
// claim exists, so an admin can fill ceph-csi's config map by hand (or check what --ceph-csi-config writes). It calls
// the same function as the StorageClass parser; it reads no cluster and needs no credentials.
import { parseArgs } from 'node:util';
import { parseMonitors } from '../ceph/monitors.js';
import { classClusterID, ParameterError } from '../rbd/parameters.js';

export const CLUSTER_ID_USAGE = `Usage: rbd-provisioner cluster-id --monitors=<list> [--rados-namespace=<ns>] [--cluster-id=<id>] [--entry]

Prints the clusterID of a StorageClass with these parameters: its clusterID parameter when given, else the id
derived from its monitors and radosNamespace (what PVs of the class carry, and what ceph-csi's config map needs).

  --monitors          the class's "monitors" parameter, e.g. "10.0.0.1:6789,10.0.0.2:6789"
  --rados-namespace   the class's "radosNamespace" parameter (default: none)
  --cluster-id        the class's "clusterID" parameter, if it sets one (printed back once checked)
  --entry             print the whole entry for ceph-csi's config.json instead of the id alone
`;

export interface CommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Runs the subcommand on its arguments (after "cluster-id"); returns the exit code: 0, or 2 for bad usage. */
export function clusterIdCommand(args: readonly string[], out: CommandOutput): number {
  let values: { monitors?: string; 'rados-namespace'?: string; 'cluster-id'?: string; entry?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        monitors: { type: 'string' },
        'rados-namespace': { type: 'string' },
        'cluster-id': { type: 'string' },
        entry: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    out.stderr(`rbd-provisioner cluster-id: ${(error as Error).message}\n\n${CLUSTER_ID_USAGE}`);
    return 2;
  }
  if (values.help === true) {
    out.stdout(CLUSTER_ID_USAGE);
    return 0;
  }
  if (values.monitors === undefined) {
    out.stderr(`rbd-provisioner cluster-id: --monitors is required\n\n${CLUSTER_ID_USAGE}`);
    return 2;
  }
  const radosNamespace = (values['rados-namespace'] ?? '').trim();
  const given = values['cluster-id']?.trim();
  let clusterID: string;
  try {
    clusterID = classClusterID(values.monitors, radosNamespace, given === '' ? undefined : given);
  } catch (error) {
    if (!(error instanceof ParameterError)) throw error;
    out.stderr(`rbd-provisioner cluster-id: ${error.message}\n`);
    return 2;
  }
  if (values.entry === true) {
    const monitors = parseMonitors(values.monitors).map((monitor) => monitor.address);
    out.stdout(`${JSON.stringify({ clusterID, monitors, rbd: { radosNamespace } }, null, 2)}\n`);
  } else {
    out.stdout(`${clusterID}\n`);
  }
  return 0;
}

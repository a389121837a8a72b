// The ceph-csi config loop (--ceph-csi-config=<namespace>/<name>, off by default): keeps, in ceph-csi's config map,
// the entries ({clusterID, monitors, rbd: {radosNamespace}}) that our StorageClasses and our PVs need, so that the
// node plugin finds the monitors for a PV's clusterID and installing a class is enough. One key: the ConfigMap.
// Class and PV events enqueue it; each run reads the map live, merges (decisions.ts: only entries we own change) and
// writes it back with the resourceVersion it read, re-reading on a conflict. A run that succeeds comes back after
// the resync period, so an entry of ours removed by hand is written again.
import type { V1ConfigMap, V1PersistentVolume, V1StorageClass } from '@kubernetes/client-node';
import type { Clock } from '../../kube/clock.js';
import { type KubeFacade, KubeApiError, isAlreadyExists } from '../../kube/client.js';
import { type EventRecorder, referenceTo } from '../../kube/events.js';
import type { Informer } from '../../kube/informer.js';
import type { ProcessResult } from '../../kube/workqueue.js';
import { type Logger, describeError, operationLogger } from '../../logger.js';
import { type ControlLoop, LoopKeys } from '../loop.js';
import { type Metrics, startOperation } from '../metrics.js';
import { ANN_PROVISIONED_BY } from '../provision/decisions.js';
import {
  CONFIG_KEY, type ClusterEntries, type ClusterEntry, type Conflict, type Disagreement, type EntrySource, OWNERSHIP_ANNOTATION,
  mergeConfig, wantedEntries,
} from './decisions.js';

export interface ConfigMapRef {
  readonly namespace: string;
  readonly name: string;
}

export interface CsiConfigLoopDeps {
  provisionerName: string;
  target: ConfigMapRef;
  classes: Informer<V1StorageClass>;
  volumes: Informer<V1PersistentVolume>;
  entries: ClusterEntries;
  kube: Pick<KubeFacade, 'readConfigMap' | 'createConfigMap' | 'replaceConfigMap'>;
  events: EventRecorder;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** How soon a run that succeeded runs again (an entry of ours removed by hand comes back then). */
  resyncPeriodMs: number;
  /** Conflicting writes re-read and merged again at once this many times, then backoff. */
  maxConflictRetries?: number;
}

export const REASON_CONFLICT = 'CephCsiConfigConflict';
/** A stale resourceVersion (409), or the map created by someone else meanwhile: read it again and merge. */
const isWriteRace = (error: unknown): boolean => (error instanceof KubeApiError && error.status === 409) || isAlreadyExists(error);
export const REASON_UNREADABLE = 'CephCsiConfigUnreadable';

const describeEntry = (monitors: unknown, radosNamespace: unknown): string =>
  `monitors ${JSON.stringify(monitors)} and radosNamespace ${JSON.stringify(radosNamespace)}`;

export function createCsiConfigLoop(deps: CsiConfigLoopDeps): ControlLoop {
  const { classes, clock, entries, events, kube, logger, metrics, provisionerName, target, volumes } = deps;
  const key = `${target.namespace}/${target.name}`;
  const where = `ceph-csi config map ${key}`;
  const keys = new LoopKeys();
  const maxConflictRetries = deps.maxConflictRetries ?? 5;
  /** Source (kind/name) -> what we last reported about it, so a standing conflict is reported once per term. */
  const reported = new Map<string, string>();

  const isOurClass = (sc: V1StorageClass): boolean => sc.provisioner === provisionerName;
  const isOurVolume = (pv: V1PersistentVolume): boolean => pv.metadata?.annotations?.[ANN_PROVISIONED_BY] === provisionerName;
  // Parameters of a class and the volume source of a PV are immutable: adds and deletes are what change the entries.
  classes.addHandlers({
    onAdd: (sc) => isOurClass(sc) && keys.add(key),
    onDelete: (sc) => isOurClass(sc) && keys.add(key),
  });
  volumes.addHandlers({
    onAdd: (pv) => isOurVolume(pv) && keys.add(key),
    onDelete: (pv) => isOurVolume(pv) && keys.add(key),
  });

  function sources(log: Logger): EntrySource[] {
    const found: EntrySource[] = [];
    for (const sc of classes.list()) {
      if (!isOurClass(sc)) continue;
      const name = sc.metadata?.name ?? '';
      try {
        const entry = entries.forClass(sc.parameters);
        if (entry !== undefined) found.push({ kind: 'StorageClass', name, entry });
      } catch (error) {
        // The provision loop reports a bad class on its claims; its PVs (if any) still bring their entry.
        log.debug('the class has bad parameters; no entry for it', { storageClass: name, error: describeError(error) });
      }
    }
    for (const pv of volumes.list()) {
      if (!isOurVolume(pv)) continue;
      const entry = entries.forVolume(pv);
      if (entry !== undefined) found.push({ kind: 'PersistentVolume', name: pv.metadata?.name ?? '', entry });
    }
    return found;
  }

  function warnOnce(source: EntrySource, message: string, sourceObject: V1StorageClass | V1PersistentVolume | undefined): void {
    const id = `${source.kind}/${source.name}`;
    if (reported.get(id) === message) return;
    reported.set(id, message);
    if (sourceObject === undefined) return;
    const ref = source.kind === 'StorageClass' ? referenceTo(sourceObject, 'StorageClass', 'storage.k8s.io/v1') : referenceTo(sourceObject, 'PersistentVolume');
    events.event(ref, 'Warning', REASON_CONFLICT, message);
  }

  const objectOf = (source: EntrySource): V1StorageClass | V1PersistentVolume | undefined =>
    source.kind === 'StorageClass' ? classes.get(source.name) : volumes.get(source.name);

  function reportConflicts(all: EntrySource[], conflicts: readonly Conflict[], disagreements: readonly Disagreement[], log: Logger): void {
    const current = new Set<string>();
    for (const conflict of conflicts) {
      // The classes that need this clusterID hear of it (they are what an admin fixes); the PVs only when no class does.
      const needing = all.filter((s) => s.entry.clusterID === conflict.clusterID);
      const classesNeeding = needing.filter((s) => s.kind === 'StorageClass');
      for (const source of classesNeeding.length > 0 ? classesNeeding : needing) {
        const message = `${where} has an entry for clusterID "${conflict.clusterID}" written by someone else, with ` +
          `${describeEntry(conflict.theirs.monitors, conflict.theirs.radosNamespace)}; ${source.kind === 'StorageClass' ? 'this class' : 'this PV'} ` +
          `needs ${describeEntry(source.entry.monitors, source.entry.radosNamespace)}. It is left as it is: correct or remove that entry ` +
          'if it is stale, or give the class a clusterID of its own (recreate it with another clusterID parameter, or without one ' +
          'for the id derived from its monitors and radosNamespace: `rbd-provisioner cluster-id --monitors ...` prints it).';
        log.warn('a clusterID of ours has another writer\'s entry with other contents; not overwriting it', {
          clusterID: conflict.clusterID, [source.kind === 'StorageClass' ? 'storageClass' : 'pv']: source.name,
        });
        current.add(`${source.kind}/${source.name}`);
        warnOnce(source, message, objectOf(source));
      }
    }
    for (const { source, kept } of disagreements) {
      if (source.kind !== 'StorageClass') continue;
      const message = `clusterID "${source.entry.clusterID}" of this class is also the clusterID of ${kept.kind} ${kept.name}, with ` +
        `${describeEntry(kept.entry.monitors, kept.entry.radosNamespace)}; this class needs ` +
        `${describeEntry(source.entry.monitors, source.entry.radosNamespace)}, and ceph-csi's config map holds one entry per ` +
        `clusterID. The entry of ${kept.kind} ${kept.name} is kept: recreate this class with a clusterID of its own (or none).`;
      log.warn('two classes of ours want one clusterID with different contents; keeping the first', { clusterID: source.entry.clusterID, storageClass: source.name, kept: kept.name });
      current.add(`${source.kind}/${source.name}`);
      warnOnce(source, message, objectOf(source));
    }
    // A conflict resolved and back later is reported again.
    for (const id of [...reported.keys()]) if (!current.has(id)) reported.delete(id);
    metrics.cephCsiConfigConflicts.set(current.size);
  }

  async function write(existing: V1ConfigMap | undefined, configJson: string, ownership: string | undefined, signal: AbortSignal): Promise<void> {
    if (existing === undefined) {
      await kube.createConfigMap(target.namespace, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: target.name, namespace: target.namespace, ...(ownership === undefined ? {} : { annotations: { [OWNERSHIP_ANNOTATION]: ownership } }) },
        data: { [CONFIG_KEY]: configJson },
      }, signal);
      return;
    }
    const annotations = { ...existing.metadata?.annotations };
    if (ownership === undefined) delete annotations[OWNERSHIP_ANNOTATION];
    else annotations[OWNERSHIP_ANNOTATION] = ownership;
    // Everything else as read: other keys, labels, owner references; the resourceVersion makes it a compare-and-swap.
    await kube.replaceConfigMap(target.namespace, target.name, {
      ...existing,
      metadata: { ...existing.metadata, annotations },
      data: { ...existing.data, [CONFIG_KEY]: configJson },
    }, signal);
  }

  async function sync(signal: AbortSignal): Promise<ProcessResult> {
    const log = operationLogger(logger, { op: 'ceph-csi-config', configMap: key });
    const done = startOperation(clock, metrics.cephCsiConfigSyncs, metrics.cephCsiConfigSyncDuration, {});
    const all = sources(log);
    const { wanted, disagreements } = wantedEntries(all);
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) {
        done('aborted');
        return undefined;
      }
      try {
        const existing = await kube.readConfigMap(target.namespace, target.name, signal);
        const merged = mergeConfig({
          configJson: existing?.data?.[CONFIG_KEY],
          ownership: existing?.metadata?.annotations?.[OWNERSHIP_ANNOTATION],
          provisionerName,
          wanted,
        });
        if (merged.kind === 'unreadable') {
          log.warn('ceph-csi\'s config map cannot be read; not touching it, trying again slowly', { problem: merged.problem });
          if (existing !== undefined) {
            events.event(referenceTo(existing, 'ConfigMap'), 'Warning', REASON_UNREADABLE, `${merged.problem}: entries for this provisioner's clusterIDs cannot be kept until it is fixed`);
          }
          done('unreadable');
          return { retry: 'slow' };
        }
        reportConflicts(all, merged.conflicts, disagreements, log);
        metrics.cephCsiConfigOwnedEntries.set(merged.owned.length);
        if (!merged.changed) {
          log.debug('ceph-csi\'s config map already holds our entries', { owned: merged.owned });
          done('unchanged');
          return { requeueAfterMs: deps.resyncPeriodMs };
        }
        await write(existing, merged.configJson, merged.ownership, signal);
        log.info(existing === undefined ? 'created ceph-csi\'s config map with our entries' : 'updated our entries in ceph-csi\'s config map', {
          added: merged.added, updated: merged.updated, removed: merged.removed, owned: merged.owned,
        });
        done(existing === undefined ? 'created' : 'updated');
        return { requeueAfterMs: deps.resyncPeriodMs };
      } catch (error) {
        if (signal.aborted) {
          done('aborted');
          return undefined;
        }
        // (Not isConflict: a 422 from a replace is an invalid object, e.g. an immutable map, not a race.)
        if (isWriteRace(error) && attempt < maxConflictRetries) {
          log.info('ceph-csi\'s config map changed while we wrote it; reading it again', { attempt });
          continue;
        }
        if (error instanceof KubeApiError && error.status === 403) {
          log.error('not allowed to read or write ceph-csi\'s config map; check the RBAC (a Role in its namespace with get, update and create on it)', { error: describeError(error) });
          done('forbidden');
          return { retry: 'slow' };
        }
        log.warn('keeping ceph-csi\'s config map failed; retrying with backoff', { error: describeError(error) });
        done(isWriteRace(error) ? 'conflict' : 'failed');
        return { retry: 'backoff' };
      }
    }
  }

  return {
    name: 'ceph-csi-config',
    // One ConfigMap: one key, one worker.
    workers: 1,
    process: (_key, signal) => sync(signal),
    start(sink) {
      keys.attach(sink);
      reported.clear();
      keys.add(key);
      logger.info('ceph-csi config loop started', { configMap: key });
    },
    stop: () => keys.attach(undefined),
  };
}

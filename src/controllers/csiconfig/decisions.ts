// Pure decisions of the ceph-csi config loop: which entries ceph-csi's config map (key config.json, a JSON list of
// {clusterID, monitors, rbd: {radosNamespace}, ...}) must hold for our classes and PVs, and how to get there while
// touching nothing that is not ours. No I/O, table-tested.
//
// Ownership: the clusterIDs this provisioner wrote are listed in an annotation on the ConfigMap, under its own
// provisioner name (several provisioners may share one map). Only those entries are ever changed or dropped. An entry
// written by someone else stays as it is, byte for byte in meaning: when it has one of our clusterIDs with the same
// monitors and namespace, it serves our PVs and we leave it theirs; with other monitors or another namespace it is a
// conflict, reported, never overwritten. Keys of the map other than config.json, keys of the list's entries that we
// do not know (cephFS, readAffinity, netNamespaceFilePath, ...) and other keys of our own entries are kept. An entry
// that two provisioners both need with the same contents is listed under both, and stays until neither needs it.
import type { V1PersistentVolume } from '@kubernetes/client-node';

export const CONFIG_KEY = 'config.json';
/** On the ConfigMap: JSON object, provisioner name -> the clusterIDs whose entries it wrote and keeps. */
export const OWNERSHIP_ANNOTATION = 'rbd.provisioner.ceph.io/ceph-csi-cluster-ids';

/** What ceph-csi needs to reach a cluster for a clusterID. */
export interface ClusterEntry {
  readonly clusterID: string;
  /** Monitor addresses, one per list item, as the class wrote them (ceph-csi joins them with "," into mon_host). */
  readonly monitors: readonly string[];
  /** "" is the pool's default namespace. */
  readonly radosNamespace: string;
}

/**
 * The storage knowledge this loop needs, implemented by the RBD side (src/rbd/cluster-entries.ts) and injected by
 * main.ts: which entry a StorageClass's parameters or one of our PVs needs in ceph-csi's map.
 */
export interface ClusterEntries {
  /** Undefined when the class needs no entry (its PVs are not ceph-csi volumes). Throws when its parameters are bad. */
  forClass(parameters: Record<string, string> | undefined): ClusterEntry | undefined;
  /** Undefined when the PV needs no entry (not a ceph-csi volume) or does not say enough to build one. */
  forVolume(volume: V1PersistentVolume): ClusterEntry | undefined;
}

/** Who needs an entry: events about a conflict go to it. */
export interface EntrySource {
  readonly kind: 'StorageClass' | 'PersistentVolume';
  readonly name: string;
  readonly entry: ClusterEntry;
}

/** An entry that cannot be written because another source of ours wants the same clusterID differently. */
export interface Disagreement {
  readonly source: EntrySource;
  /** The source whose entry is kept. */
  readonly kept: EntrySource;
}

const sameMonitors = (a: readonly string[], b: readonly string[]): boolean => {
  const left = [...new Set(a.map((m) => m.trim()))].sort();
  const right = [...new Set(b.map((m) => m.trim()))].sort();
  return left.length === right.length && left.every((m, i) => m === right[i]);
};

export const sameEntry = (a: ClusterEntry, b: ClusterEntry): boolean =>
  a.clusterID === b.clusterID && a.radosNamespace === b.radosNamespace && sameMonitors(a.monitors, b.monitors);

/**
 * The entries our sources need, by clusterID. Classes come first (they say what new PVs get; a PV keeps the clusterID
 * it was made with, and its monitors may be older), each kind in name order, so the choice is stable. A later source
 * that wants the same clusterID with other monitors or namespace is a disagreement.
 */
export function wantedEntries(sources: readonly EntrySource[]): { wanted: Map<string, ClusterEntry>; disagreements: Disagreement[] } {
  const order = (s: EntrySource): number => (s.kind === 'StorageClass' ? 0 : 1);
  const sorted = [...sources].sort((a, b) => order(a) - order(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const kept = new Map<string, EntrySource>();
  const disagreements: Disagreement[] = [];
  for (const source of sorted) {
    const first = kept.get(source.entry.clusterID);
    if (first === undefined) kept.set(source.entry.clusterID, source);
    else if (!sameEntry(first.entry, source.entry)) disagreements.push({ source, kept: first });
  }
  return { wanted: new Map([...kept].map(([id, source]) => [id, source.entry])), disagreements };
}

/** An entry of another writer with one of our clusterIDs and other contents: left alone. */
export interface Conflict {
  readonly clusterID: string;
  readonly ours: ClusterEntry;
  readonly theirs: { readonly monitors: unknown; readonly radosNamespace: unknown };
}

export interface MergeInput {
  /** config.json as found; undefined when the map or the key is absent. */
  readonly configJson: string | undefined;
  /** The ownership annotation as found. */
  readonly ownership: string | undefined;
  readonly provisionerName: string;
  readonly wanted: ReadonlyMap<string, ClusterEntry>;
}

export type MergeResult =
  | { readonly kind: 'unreadable'; readonly problem: string }
  | {
    readonly kind: 'merged';
    /** False: the map already says all this; write nothing. */
    readonly changed: boolean;
    readonly configJson: string;
    /** Undefined: no provisioner owns anything; drop the annotation. */
    readonly ownership: string | undefined;
    readonly added: readonly string[];
    readonly updated: readonly string[];
    readonly removed: readonly string[];
    /** Our clusterIDs whose entries are ours after the merge. */
    readonly owned: readonly string[];
    readonly conflicts: readonly Conflict[];
  };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function parseOwnership(text: string | undefined): Record<string, string[]> {
  if (text === undefined || text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) return {};
    const result: Record<string, string[]> = {};
    for (const [owner, ids] of Object.entries(parsed)) {
      if (Array.isArray(ids)) result[owner] = ids.filter((id): id is string => typeof id === 'string');
    }
    return result;
  } catch {
    // Unreadable: nothing is known to be ours, so nothing is changed or dropped; what we need is added (or reported).
    return {};
  }
}

/** What an entry of the list says about namespace: ceph-csi's rbd.radosNamespace, or the older top-level key. */
function namespaceOf(entry: JsonObject): unknown {
  const rbd = entry['rbd'];
  if (isObject(rbd) && rbd['radosNamespace'] !== undefined) return rbd['radosNamespace'];
  return entry['radosNamespace'] ?? '';
}

function matches(entry: JsonObject, wanted: ClusterEntry): boolean {
  const monitors = entry['monitors'];
  return Array.isArray(monitors) && monitors.every((m) => typeof m === 'string')
    && namespaceOf(entry) === wanted.radosNamespace
    && sameMonitors(monitors as string[], wanted.monitors);
}

/** Our entry as it should be: the wanted values over whatever else it holds (other keys, other rbd keys). */
function withWanted(entry: JsonObject, wanted: ClusterEntry): JsonObject {
  const rbd = isObject(entry['rbd']) ? entry['rbd'] : {};
  const current = entry['monitors'];
  // The same monitors in another order are the same entry: not rewritten.
  const keep = Array.isArray(current) && current.every((m) => typeof m === 'string') && sameMonitors(current as string[], wanted.monitors);
  return { ...entry, clusterID: wanted.clusterID, monitors: keep ? current : [...wanted.monitors], rbd: { ...rbd, radosNamespace: wanted.radosNamespace } };
}

function newEntry(wanted: ClusterEntry): JsonObject {
  return { clusterID: wanted.clusterID, monitors: [...wanted.monitors], rbd: { radosNamespace: wanted.radosNamespace } };
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isObject(value)) return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  return JSON.stringify(value);
}

/** The ownership annotation's value: stable (sorted) so that an unchanged ownership is never rewritten. */
function formatOwnership(ownership: Record<string, string[]>): string | undefined {
  const owners = Object.keys(ownership).filter((owner) => (ownership[owner] ?? []).length > 0).sort();
  if (owners.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(owners.map((owner) => [owner, [...(ownership[owner] ?? [])].sort()])));
}

/**
 * Brings config.json to what `wanted` needs, changing only entries this provisioner owns. Pure: the caller reads the
 * map, merges, and writes it back with the resourceVersion it read.
 */
export function mergeConfig(input: MergeInput): MergeResult {
  let list: unknown;
  try {
    list = input.configJson === undefined || input.configJson.trim() === '' ? [] : JSON.parse(input.configJson);
  } catch (error) {
    return { kind: 'unreadable', problem: `${CONFIG_KEY} is not JSON (${(error as Error).message})` };
  }
  if (!Array.isArray(list)) return { kind: 'unreadable', problem: `${CONFIG_KEY} is not a JSON list` };

  const ownership = parseOwnership(input.ownership);
  const ownedBefore = new Set(ownership[input.provisionerName] ?? []);
  // Entries another provisioner sharing this map also keeps: we drop our claim on them, never the entry.
  const ownedByOthers = new Set(Object.entries(ownership).flatMap(([owner, ids]) => (owner === input.provisionerName ? [] : ids)));
  const result: Json[] = [];
  const handled = new Set<string>();
  const owned = new Set<string>();
  const added: string[] = [];
  const updated: string[] = [];
  const removed: string[] = [];
  const conflicts: Conflict[] = [];

  for (const item of list as Json[]) {
    const id = isObject(item) && typeof item['clusterID'] === 'string' ? item['clusterID'] : undefined;
    if (id !== undefined && isObject(item) && ownedBefore.has(id)) {
      const wanted = input.wanted.get(id);
      const shared = ownedByOthers.has(id);
      // Ours and no longer needed, or a second copy of ours: dropped, unless another provisioner keeps it too.
      if (wanted === undefined || handled.has(id)) {
        if (shared) result.push(item);
        else removed.push(id);
        continue;
      }
      // Shared with another provisioner that wants other contents: theirs as much as ours, so not overwritten.
      if (shared && !matches(item, wanted)) {
        result.push(item);
        handled.add(id);
        // Still ours too: once the other provisioner lets it go, it is ours alone to bring to what we need.
        owned.add(id);
        conflicts.push({ clusterID: id, ours: wanted, theirs: { monitors: item['monitors'], radosNamespace: namespaceOf(item) } });
        continue;
      }
      const next = withWanted(item, wanted);
      if (canonical(next) !== canonical(item)) updated.push(id);
      result.push(next);
      handled.add(id);
      owned.add(id);
      continue;
    }
    result.push(item);
    if (id === undefined || !isObject(item) || handled.has(id)) continue;
    const wanted = input.wanted.get(id);
    if (wanted === undefined) continue;
    // Another writer's entry for one of our clusterIDs: it serves our PVs when it says the same; else it is theirs.
    handled.add(id);
    if (!matches(item, wanted)) {
      conflicts.push({ clusterID: id, ours: wanted, theirs: { monitors: item['monitors'], radosNamespace: namespaceOf(item) } });
    } else if (ownedByOthers.has(id)) {
      // Kept by another provisioner sharing the map, and just what we need: we keep it too, so that it stays while
      // either of us needs it (the other drops only its claim on it).
      owned.add(id);
    }
  }
  for (const id of [...input.wanted.keys()].sort()) {
    if (handled.has(id)) continue;
    result.push(newEntry(input.wanted.get(id)!));
    added.push(id);
    owned.add(id);
  }

  const nextOwnership = formatOwnership({ ...ownership, [input.provisionerName]: [...owned] });
  const listChanged = added.length > 0 || updated.length > 0 || removed.length > 0;
  const configJson = listChanged || input.configJson === undefined ? `${JSON.stringify(result, null, 2)}\n` : input.configJson;
  const ownershipBefore = input.ownership === undefined || input.ownership === '' ? undefined : input.ownership;
  const changed = listChanged || nextOwnership !== ownershipBefore;
  return { kind: 'merged', changed, configJson, ownership: nextOwnership, added, updated, removed, owned: [...owned].sort(), conflicts };
}

// Copy-on-write copies of images: clones of a claim's image, snapshot images, and restores of snapshots. Every step
// is idempotent under deterministic names, so a retry after a crash or a timeout finishes what the first try began
// and never makes a second copy.
//
// A copy is an RBD clone of a snapshot. Clone format 2 (Mimic and later clients) needs no protection: the snapshot a
// clone was made from is removed right away and librbd keeps it, hidden in the "trash" snapshot namespace, until its
// last clone is flattened or removed; the source image can then be deleted while its clones live (it waits in the
// trash). Format 1 needs the snapshot protected while any clone depends on it, so there every copy is flattened at
// once and the snapshot released: slower, but nothing is left depending on anything.
import { type Cluster, type CreateImageOptions, type Image, ImageExists, ImageNotFound, type Parent, type Pool } from '../ceph/index.js';

/**
 * When copies are flattened, with ceph-csi's defaults (its --rbdsoftmaxclonedepth, --rbdhardmaxclonedepth and
 * --maxsnapshotsonimage): the users who move from it keep the same chains. A copy deeper than `softDepth` is flattened
 * in the background, after its claim is bound; one deeper than `hardDepth` before it is handed out, so no chain ever
 * grows past it. An image with `maxSnapshots` snapshots (trash ones included: each stands for a clone) gets no more
 * dependants: copies made from it then are flattened before they are handed out, which frees their snapshot again.
 * RBD allows 510 snapshots per image.
 */
export interface CloneLimits {
  softDepth: number;
  hardDepth: number;
  maxSnapshots: number;
}

export const DEFAULT_CLONE_LIMITS: CloneLimits = { softDepth: 4, hardDepth: 8, maxSnapshots: 450 };

/** What a finished copy needs next. */
export type FlattenNeed = 'none' | 'background' | 'now';

/** The temporary snapshot a copy is made from, on its source; named after the copy so a retry finds it. */
export const copySnapshotName = (target: string): string => `rbd-provisioner-copy-${target}`;
const COPY_SNAPSHOT_PREFIX = 'rbd-provisioner-copy-';
export const isCopySnapshot = (name: string): boolean => name.startsWith(COPY_SNAPSHOT_PREFIX);

const cloneFormats = new WeakMap<Cluster, Promise<1 | 2>>();

/**
 * Format 2 when the cluster requires clients of Mimic or later (librbd's own rule for its "auto" default); format 1
 * otherwise. Asked once per connection.
 */
export function cloneFormatOf(cluster: Cluster): Promise<1 | 2> {
  let format = cloneFormats.get(cluster);
  if (format === undefined) {
    format = cluster.monCommand({ prefix: 'osd dump', format: 'json' }).then(
      (dump) => (releaseAtLeastMimic((dump as { require_min_compat_client?: unknown }).require_min_compat_client) ? 2 : 1),
    );
    format.catch(() => cloneFormats.delete(cluster));
    cloneFormats.set(cluster, format);
  }
  return format;
}

const RELEASES = ['argonaut', 'bobtail', 'cuttlefish', 'dumpling', 'emperor', 'firefly', 'giant', 'hammer', 'infernalis', 'jewel', 'kraken', 'luminous'];

/** Every release after luminous is mimic or later; unknown names count as newer (releases only ever get added). */
export function releaseAtLeastMimic(release: unknown): boolean {
  return typeof release === 'string' && release !== '' && !RELEASES.includes(release);
}

/** Snapshots on an image, by namespace: trash ones are kept only for the clones that still depend on them. */
export async function snapshotsByNamespace(image: Image): Promise<{ user: string[]; trash: number; other: number }> {
  const result = { user: [] as string[], trash: 0, other: 0 };
  for (const snapshot of await image.listSnapshots()) {
    const namespace = await image.snapshotNamespace(snapshot.id);
    if (namespace === 'user') result.user.push(snapshot.name);
    else if (namespace === 'trash') result.trash += 1;
    else result.other += 1;
  }
  return result;
}

/** How many parents an image's data goes through (0 for an image that is not a clone). Stops counting past `limit`. */
export async function cloneDepth(pool: Pool, image: Image, limit: number): Promise<number> {
  let depth = 0;
  let parent = await image.parent();
  while (parent !== undefined && depth <= limit) {
    depth += 1;
    parent = await parentOfParent(pool, parent);
  }
  return depth;
}

async function parentOfParent(pool: Pool, parent: Parent): Promise<Parent | undefined> {
  const samePool = parent.pool === pool.name && parent.namespace === pool.namespace;
  const parentPool = samePool ? pool : await pool.cluster.openPool(parent.pool, parent.namespace);
  try {
    return await parentPool.withImage(parent.imageId, (image) => image.parent(), { readOnly: true, byId: true });
  } catch (err) {
    if (err instanceof ImageNotFound) return undefined;
    throw err;
  } finally {
    if (!samePool) await parentPool.close();
  }
}

export interface CopyOptions {
  format: 1 | 2;
  /** The new image's features, object size, data pool: as for a new image of its class. */
  image: CreateImageOptions;
}

/**
 * Makes `target` a copy of what `source` holds now: a snapshot of the source, a clone of it, and the snapshot released
 * (format 2: into the trash namespace; format 1: after flattening the copy). A target that exists already is an
 * earlier try of the same copy: its remaining steps are finished.
 */
export async function copyImage(pool: Pool, source: string, target: string, options: CopyOptions): Promise<void> {
  const snapshot = copySnapshotName(target);
  let cloned = false;
  await pool.withImage(source, async (image) => {
    const existing = new Set((await image.listSnapshots()).map((s) => s.name));
    if (!(await imageExists(pool, target))) {
      if (!existing.has(snapshot)) await image.createSnapshot(snapshot);
      if (options.format === 1 && !(await image.isSnapshotProtected(snapshot))) await image.protectSnapshot(snapshot);
      try {
        await pool.cloneImage(pool, source, snapshot, target, { ...options.image, cloneFormat: options.format });
      } catch (err) {
        if (!(err instanceof ImageExists)) throw err;
      }
      cloned = true;
    }
    if (!cloned && !existing.has(snapshot)) return;
    if (options.format === 1) {
      await pool.withImage(target, (copy) => copy.flatten());
      if (await image.isSnapshotProtected(snapshot)) await image.unprotectSnapshot(snapshot);
    }
    await removeSnapshotIfPresent(image, snapshot);
  });
}

/** Clones `parent@snapshot` (a snapshot image's snapshot, same pool) into `target`; format 1 flattens it at once. */
export async function cloneSnapshot(pool: Pool, parent: string, snapshot: string, target: string, options: CopyOptions): Promise<void> {
  if (!(await imageExists(pool, target))) {
    try {
      await pool.cloneImage(pool, parent, snapshot, target, { ...options.image, cloneFormat: options.format });
    } catch (err) {
      if (!(err instanceof ImageExists)) throw err;
    }
  }
  if (options.format === 1) await pool.withImage(target, (copy) => copy.flatten());
}

/** What a new copy needs, from its depth and from how many snapshots its source carries. */
export async function flattenNeed(pool: Pool, copy: Image, limits: CloneLimits, sourceSnapshots: number): Promise<FlattenNeed> {
  const depth = await cloneDepth(pool, copy, limits.hardDepth);
  if (depth === 0) return 'none';
  if (depth > limits.hardDepth || sourceSnapshots >= limits.maxSnapshots) return 'now';
  return depth > limits.softDepth ? 'background' : 'none';
}

/** Snapshots an image carries, all namespaces: the count the per-image limit is about. */
export async function snapshotCount(pool: Pool, image: string): Promise<number> {
  return pool.withImage(image, async (source) => (await source.listSnapshots()).length, { readOnly: true });
}

/** By name (one open), not by listing the pool. */
export async function imageExists(pool: Pool, name: string): Promise<boolean> {
  try {
    await pool.withImage(name, async () => undefined, { readOnly: true });
    return true;
  } catch (err) {
    if (err instanceof ImageNotFound) return false;
    throw err;
  }
}

export async function removeSnapshotIfPresent(image: Image, snapshot: string): Promise<void> {
  try {
    await image.removeSnapshot(snapshot);
  } catch (err) {
    if (!(err instanceof ImageNotFound)) throw err;
  }
}

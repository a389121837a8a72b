import { invoke } from './calls.js';
import { native } from './native.js';
import { featureNames } from './features.js';
import { checkSnapshotName } from './names.js';
import { checkSize } from './options.js';
import type { Pool } from './pool.js';
import type { ImageHandle } from './rbd-native.js';

export interface ImageInfo {
  size: number;
  objectSize: number;
  objects: number;
  order: number;
  /** RADOS object name prefix of the data objects ("rbd_data.<id>"). */
  blockNamePrefix: string;
}

export interface Watcher {
  address: string;
  id: number;
  cookie: string;
}

export interface Snapshot {
  id: number;
  name: string;
  size: number;
}

/**
 * user: made by someone; trash: removed, but kept by librbd for the clone v2 children that still depend on it;
 * group and mirror: made by group and mirror snapshots.
 */
export type SnapshotNamespace = 'user' | 'group' | 'trash' | 'mirror';
const SNAPSHOT_NAMESPACES: readonly SnapshotNamespace[] = ['user', 'group', 'trash', 'mirror'];

/** Where a clone's data comes from until it is flattened. */
export interface Parent {
  pool: string;
  namespace: string;
  imageName: string;
  imageId: string;
  /** The parent image is in the trash (deleted while this clone needed it). */
  inTrash: boolean;
  snapshotId: number;
  snapshotName: string;
}

/** An open image. Always close() it: a read-write open holds a watch that makes the image look in use. */
export class Image {
  constructor(
    private readonly handle: ImageHandle,
    readonly pool: Pool,
    readonly name: string,
  ) {}

  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return invoke(this.pool.cluster.observer, op, fn);
  }

  async stat(): Promise<ImageInfo> {
    const s = await this.call('rbd_stat', () => native.rbdStat(this.handle));
    return { size: s.size, objectSize: s.objSize, objects: s.numObjs, order: s.order, blockNamePrefix: s.blockNamePrefix };
  }

  /** Enabled features by name, e.g. ['layering', 'exclusive-lock']. */
  async features(): Promise<string[]> {
    return featureNames(await this.call('rbd_get_features', () => native.rbdGetFeatures(this.handle)));
  }

  async id(): Promise<string> {
    return this.call('rbd_get_id', () => native.rbdGetId(this.handle));
  }

  async resize(size: number): Promise<void> {
    checkSize(size);
    return this.call('rbd_resize', () => native.rbdResize(this.handle, size));
  }

  /** Copies the parent's data into this clone so it no longer depends on the parent snapshot. */
  async flatten(): Promise<void> {
    return this.call('rbd_flatten', () => native.rbdFlatten(this.handle));
  }

  /** Writes data at offset (tests and tools write known content; the controller never writes volume data). */
  async write(offset: number, data: Buffer): Promise<number> {
    return this.call('rbd_write2', () => native.rbdWrite2(this.handle, offset, data));
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return this.call('rbd_read2', () => native.rbdRead2(this.handle, offset, length));
  }

  /** The value, or undefined when the key is not set. */
  async getMetadata(key: string): Promise<string | undefined> {
    checkMetadataKey(key);
    try {
      return await this.call('rbd_metadata_get', () => native.rbdMetadataGet(this.handle, key));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async setMetadata(key: string, value: string): Promise<void> {
    checkMetadataKey(key);
    if (typeof value !== 'string') throw new TypeError(`metadata value for "${key}" must be a string`);
    return this.call('rbd_metadata_set', () => native.rbdMetadataSet(this.handle, key, value));
  }

  async removeMetadata(key: string): Promise<void> {
    checkMetadataKey(key);
    return this.call('rbd_metadata_remove', () => native.rbdMetadataRemove(this.handle, key));
  }

  async listMetadata(): Promise<Record<string, string>> {
    return this.call('rbd_metadata_list', () => native.rbdMetadataList(this.handle));
  }

  /** Clients that have the image open read-write (our own open included). */
  async watchers(): Promise<Watcher[]> {
    return this.call('rbd_watchers_list', () => native.rbdWatchersList(this.handle));
  }

  async listSnapshots(): Promise<Snapshot[]> {
    return this.call('rbd_snap_list', () => native.rbdSnapList(this.handle));
  }

  async snapshotNamespace(snapshotId: number): Promise<SnapshotNamespace> {
    const type = await this.call('rbd_snap_get_namespace_type', () => native.rbdSnapGetNamespaceType(this.handle, snapshotId));
    return SNAPSHOT_NAMESPACES[type] ?? 'user';
  }

  /** The parent of a clone; undefined for an image that is not (or no longer) a clone. */
  async parent(): Promise<Parent | undefined> {
    try {
      const p = await this.call('rbd_get_parent', () => native.rbdGetParent(this.handle));
      return { pool: p.pool, namespace: p.namespace, imageName: p.imageName, imageId: p.imageId, inTrash: p.trash, snapshotId: p.snapId, snapshotName: p.snapName };
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async createSnapshot(name: string): Promise<void> {
    checkSnapshotName(name);
    return this.call('rbd_snap_create', () => native.rbdSnapCreate(this.handle, name));
  }

  async removeSnapshot(name: string): Promise<void> {
    checkSnapshotName(name);
    return this.call('rbd_snap_remove', () => native.rbdSnapRemove(this.handle, name));
  }

  async protectSnapshot(name: string): Promise<void> {
    checkSnapshotName(name);
    return this.call('rbd_snap_protect', () => native.rbdSnapProtect(this.handle, name));
  }

  async unprotectSnapshot(name: string): Promise<void> {
    checkSnapshotName(name);
    return this.call('rbd_snap_unprotect', () => native.rbdSnapUnprotect(this.handle, name));
  }

  async isSnapshotProtected(name: string): Promise<boolean> {
    checkSnapshotName(name);
    return this.call('rbd_snap_is_protected', () => native.rbdSnapIsProtected(this.handle, name));
  }

  /** Safe to call twice; later calls on this image reject with HandleClosed. */
  async close(): Promise<void> {
    return this.call('rbd_close', () => native.rbdClose(this.handle));
  }
}

export function checkMetadataKey(key: unknown): void {
  if (typeof key !== 'string' || key === '' || key.length > 255) {
    throw new TypeError(`metadata key: expected a non-empty string of at most 255 characters, got ${JSON.stringify(key)}`);
  }
}

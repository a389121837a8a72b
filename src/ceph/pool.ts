import { invoke } from './calls.js';
import { InvalidArgument, explainCreateNotFound } from './errors.js';
import type { Cluster } from './cluster.js';
import { decodeString, decodeStringMap, encodeStringAndU64, encodeStringMap } from './encoding.js';
import { checkMetadataKey, Image } from './image.js';
import { native } from './native.js';
import { checkImageId, checkImageName, checkSnapshotName } from './names.js';
import { checkSize, toNativeImageOptions, type CreateImageOptions } from './options.js';
import type { IoCtxHandle } from './rbd-native.js';

/** Why an image is in the trash (librbd's rbd_trash_image_source_t). */
export type TrashSource = 'user' | 'mirroring' | 'migration' | 'removing' | 'user-parent';
const TRASH_SOURCES: readonly TrashSource[] = ['user', 'mirroring', 'migration', 'removing', 'user-parent'];

export interface TrashEntry {
  id: string;
  name: string;
  source: TrashSource;
  /** Seconds since the epoch. */
  deletedAt: number;
  /** Before this time (seconds since the epoch) a remove needs force. */
  deferredUntil: number;
}

export interface PoolUsage {
  usedBytes: number;
  objects: number;
  /** 0 means no quota. */
  quotaMaxBytes: number;
  quotaMaxObjects: number;
  clusterAvailableBytes: number;
  /**
   * The monitors flagged the pool full: an OSD it maps to passed the cluster's full ratio. Writes would pause until
   * they time out, though clusterAvailableBytes may be far from 0.
   */
  poolFull: boolean;
}

/** metadata_list pages: keys per call, and the reply buffer they must fit in. */
const METADATA_PAGE = 64;
const METADATA_PAGE_BYTES = 256 * 1024;

/** An I/O context on one pool and RADOS namespace: pool-level image operations. */
export class Pool {
  constructor(
    private readonly handle: IoCtxHandle,
    readonly cluster: Cluster,
    readonly name: string,
    readonly namespace: string,
  ) {}

  /** "pool" or "pool/namespace", as `rbd` spells it. */
  get spec(): string {
    return this.namespace ? `${this.name}/${this.namespace}` : this.name;
  }

  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return invoke(this.cluster.observer, op, fn);
  }

  /**
   * Creates a format 2 image. ImageExists when the name is taken; PoolNotFound or NamespaceNotFound, naming which,
   * when the data pool or the RADOS namespace is missing.
   */
  async createImage(name: string, size: number, options: CreateImageOptions = {}): Promise<void> {
    checkImageName(name);
    checkSize(size);
    const nativeOptions = toNativeImageOptions(options);
    try {
      await this.call('rbd_create4', () => native.rbdCreate4(this.handle, name, size, nativeOptions));
    } catch (err) {
      throw await explainCreateNotFound(err, {
        pool: this.name, namespace: this.namespace, dataPool: nativeOptions.dataPool,
        poolExists: (pool) => this.cluster.poolExists(pool),
      });
    }
  }

  /** Clones a snapshot (protected, for clone format 1) of an image of `parent` (may be this pool) into this pool. */
  async cloneImage(parent: Pool, parentImage: string, parentSnapshot: string, name: string, options: CreateImageOptions = {}): Promise<void> {
    checkImageName(parentImage, 'parentImage');
    checkSnapshotName(parentSnapshot, 'parentSnapshot');
    checkImageName(name);
    const nativeOptions = toNativeImageOptions(options);
    return this.call('rbd_clone3', () =>
      native.rbdClone3(parent.handle, parentImage, parentSnapshot, this.handle, name, nativeOptions));
  }

  /**
   * Removes an image in place. Without object-map this walks every possible data object, so it takes time in
   * proportion to the image's size: prefer moveToTrash + removeFromTrash for large images.
   */
  async removeImage(name: string): Promise<void> {
    checkImageName(name);
    return this.call('rbd_remove', () => native.rbdRemove(this.handle, name));
  }

  /** Moves an image to the pool's trash: constant time whatever its size. */
  async moveToTrash(name: string, delaySeconds = 0): Promise<void> {
    checkImageName(name);
    return this.call('rbd_trash_move', () => native.rbdTrashMove(this.handle, name, delaySeconds));
  }

  async listTrash(): Promise<TrashEntry[]> {
    const entries = await this.call('rbd_trash_list', () => native.rbdTrashList(this.handle));
    return entries.map((e) => ({
      id: e.id,
      name: e.name,
      source: TRASH_SOURCES[e.source] ?? 'user',
      deletedAt: e.deletionTime,
      deferredUntil: e.defermentEndTime,
    }));
  }

  async removeFromTrash(id: string, force = false): Promise<void> {
    checkImageId(id);
    return this.call('rbd_trash_remove', () => native.rbdTrashRemove(this.handle, id, force));
  }

  /** The id librbd gave an image (format 2), read from its id object: one round trip, no open. */
  async imageId(name: string): Promise<string> {
    checkImageName(name);
    const output = await this.call('rados_exec', () => native.radosExec(this.handle, `rbd_id.${name}`, 'rbd', 'get_id', Buffer.alloc(0), 256));
    return checkImageId(decodeString(output));
  }

  /**
   * Sets metadata keys of an image in one write to its header object (cls_rbd's metadata_set takes a map): all keys
   * or none, without opening the image; ImageNotFound when the header is missing. librbd's rbd_metadata_set needs an
   * open image, writes one key per call and, with exclusive-lock, takes the image's lock first. Skipping librbd is
   * right only for keys librbd itself does not read (the `conf_` keys are its configuration overrides: refused), on
   * an image no client has open (a new one, or one whose watchers were just counted), so no open image misses it.
   * Works on an image in the trash too (its header stays until it is purged).
   */
  async writeMetadataToHeader(id: string, entries: Record<string, string>): Promise<void> {
    checkImageId(id);
    for (const [key, value] of Object.entries(entries)) {
      checkMetadataKey(key);
      if (key.startsWith('conf_')) throw new TypeError(`metadata key "${key}": librbd's configuration overrides are set through an open image`);
      if (typeof value !== 'string') throw new TypeError(`metadata value for "${key}" must be a string`);
    }
    // On an existing header only: a half-made image (no header) must not get one holding nothing but these keys.
    const input = encodeStringMap(entries);
    await this.call('rados_write_op_exec', () => native.radosWriteOpExec(this.handle, `rbd_header.${id}`, 'rbd', 'metadata_set', input));
  }

  async listImages(): Promise<string[]> {
    return (await this.listImageSpecs()).map((s) => s.name);
  }

  /** Images with their ids ('' for a format 1 image, which has none). */
  async listImageSpecs(): Promise<{ id: string; name: string }[]> {
    const specs = await this.call('rbd_list2', () => native.rbdList2(this.handle));
    return specs.map((s) => ({ id: s.id, name: s.name }));
  }

  /**
   * An image's metadata (format 2), read from its header with cls_rbd's metadata_list: a round trip per 64 keys and
   * no open, where an open reads the whole header and copies librbd's configuration (6 ms of CPU here against 0.2).
   * ImageNotFound when the header is missing (a half-made image). Works on an image in the trash too.
   */
  async readMetadataFromHeader(id: string): Promise<Record<string, string>> {
    checkImageId(id);
    const metadata: Record<string, string> = {};
    for (let after = ''; ;) {
      let page: [string, string][];
      try {
        const output = await this.call('rados_exec', () => native.radosExec(this.handle, `rbd_header.${id}`, 'rbd', 'metadata_list', encodeStringAndU64(after, METADATA_PAGE), METADATA_PAGE_BYTES));
        page = decodeStringMap(output);
      } catch (err) {
        // ERANGE: values too long for the reply buffer. Rare enough to pay for an open.
        if (!(err instanceof InvalidArgument)) throw err;
        return this.withImage(id, (image) => image.listMetadata(), { readOnly: true, byId: true });
      }
      for (const [key, value] of page) metadata[key] = value;
      if (page.length < METADATA_PAGE) return metadata;
      after = page[page.length - 1]![0];
    }
  }

  /** Marks a new pool as an RBD pool (what `rbd pool init` does). */
  async initRbd(force = false): Promise<void> {
    return this.call('rbd_pool_init', () => native.rbdPoolInit(this.handle, force));
  }

  /**
   * Opens an image. A read-write open registers a watch on the image (others see it in watchers()) until
   * close(); read-only opens do not.
   */
  async openImage(name: string, options: { readOnly?: boolean } = {}): Promise<Image> {
    checkImageName(name);
    const readOnly = options.readOnly ?? false;
    const handle = await this.call(readOnly ? 'rbd_open_read_only' : 'rbd_open', () => native.rbdOpen(this.handle, name, readOnly));
    return new Image(handle, this, name);
  }

  /** Opens an image by id: the only way to reach one in the trash (to read its metadata, say). */
  async openImageById(id: string, options: { readOnly?: boolean } = {}): Promise<Image> {
    checkImageId(id);
    const readOnly = options.readOnly ?? false;
    const handle = await this.call(readOnly ? 'rbd_open_by_id_read_only' : 'rbd_open_by_id', () => native.rbdOpenById(this.handle, id, readOnly));
    return new Image(handle, this, `id:${id}`);
  }

  /** Opens an image (by name, or by id with byId), runs fn, and closes the image whatever happens. */
  async withImage<T>(name: string, fn: (image: Image) => Promise<T>, options: { readOnly?: boolean; byId?: boolean } = {}): Promise<T> {
    const image = options.byId ? await this.openImageById(name, options) : await this.openImage(name, options);
    try {
      return await fn(image);
    } finally {
      await image.close();
    }
  }

  /** Bytes and objects used, the pool's quota and the cluster's free space: can a new image fit? */
  async usage(): Promise<PoolUsage> {
    const [stat, quota, cluster, flags] = await Promise.all([
      this.call('rados_ioctx_pool_stat', () => native.radosIoctxPoolStat(this.handle)),
      this.cluster.poolQuota(this.name),
      this.cluster.usage(),
      this.cluster.poolFlags(this.name),
    ]);
    return {
      usedBytes: stat.numBytes,
      objects: stat.numObjects,
      quotaMaxBytes: quota.maxBytes,
      quotaMaxObjects: quota.maxObjects,
      clusterAvailableBytes: cluster.availableBytes,
      poolFull: flags.includes('full'),
    };
  }

  /** Safe to call twice. Open images keep the I/O context alive until they are closed. */
  async close(): Promise<void> {
    return this.call('rados_ioctx_destroy', () => native.radosIoctxDestroy(this.handle));
  }
}

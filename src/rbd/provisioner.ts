// The RBD provisioner: creates and removes images for the generic controller. Everything Kubernetes-generic (which
// claims, PV names, claimRef, finalizers, events, retries) is the controller's; this file only talks to Ceph.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import {
  CEPHX_KEY_ALLOWED, CephError, cephxKeyProblem, ImageBusy, ImageExists, ImageHasSnapshots, ImageNotFound, InvalidArgument,
  NamespaceNotFound, NoSpace, PermissionDenied, PoolNotFound, Timeout, ValidationError, type Cluster, type ClusterTarget,
  type ConnectionPool, type Image, type Parent, type Pool, type PoolUsage,
} from '../ceph/index.js';
import { DeleteError, ProvisionError } from '../controllers/provision/errors.js';
import type { DataSource, DeleteContext, OwnedVolume, ProvisionRequest, Provisioner, VolumeLocation } from '../controllers/provision/provisioner.js';
import { SnapshotError, type SnapshotImportRequest, type SnapshotPlanRequest, type SnapshotRecord, type SnapshotState, type VolumeSnapshotter } from '../controllers/snapshot/snapshotter.js';
import {
  type CloneLimits, cloneFormatOf, cloneSnapshot, copyImage, DEFAULT_CLONE_LIMITS, flattenNeed, imageExists, isCopySnapshot, removeSnapshotIfPresent,
  snapshotCount, snapshotsByNamespace,
} from './clones.js';
import {
  handleOf, importRecordFor, parseSnapshotClassParameters, readSnapshotRecord, SNAPSHOT_IMAGE_PREFIX, SnapshotParameterError, snapshotRecordFor,
  type SnapshotLocation,
} from './snapshots.js';
import { type ExpandRequest, type ExpandResult, ResizeError, type VolumeResizer } from '../controllers/resize/resizer.js';
import { formatBytes, quantityToWholeMiB } from './size.js';
import { ParameterError, parseClassParameters, type ClassParameters, type SecretRef } from './parameters.js';
import { NodeSecretError } from './node-secret.js';
import { LegacyAdminError, legacyDeleteTarget } from './legacy.js';
import { ANNOTATIONS, buildVolume, checkClaim, ClaimError, deleteTargetOf, imageNameFor, readDeleteTarget, VolumeRecordError, type DeleteTarget } from './volume.js';

/** Image metadata that ties an image to its claim. Read before adopting or removing an image. */
export const OWNER_KEYS = {
  provisioner: 'rbd.provisioner.ceph.io/provisioner',
  claimNamespace: 'rbd.provisioner.ceph.io/claim-namespace',
  claimName: 'rbd.provisioner.ceph.io/claim-name',
  claimUid: 'rbd.provisioner.ceph.io/claim-uid',
  pvName: 'rbd.provisioner.ceph.io/pv-name',
} as const;

/**
 * Written before provision() hands the PV back to be saved, so an image without it provably never had a PV: from
 * then on the image follows its PV (and, if a Retain PV is deleted, stays), never orphan collection. (The key's name
 * predates that ordering; images of earlier versions carry it only when their PV was saved, a subset of the same.)
 */
export const PV_MAY_EXIST_KEY = 'rbd.provisioner.ceph.io/pv-saved';
/** Set right before a delete moves the image to the trash: the trash entries we may purge. */
export const DELETING_KEY = 'rbd.provisioner.ceph.io/deleting';

/** What an OwnedVolume's id encodes: where the image is, and its trash id when it is in the trash. */
type OwnedVolumeId = DeleteTarget & { trashId?: string };

/** A VolumeLocation with what listing it needs (the admin credentials come from the class, like a delete's). */
export interface ImageLocation extends VolumeLocation {
  target: DeleteTarget;
  imageNamePrefix: string;
}

/** Reads the cephx key from a Secret (data key `key`). Throws SecretError when it cannot. */
export type SecretReader = (ref: SecretRef, signal: AbortSignal) => Promise<string>;

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

export interface Logger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  debug(message: string, meta?: Record<string, unknown>): void;
}

/**
 * The Secret a CSI PV names in nodeStageSecretRef (src/rbd/node-secret.ts): undefined only for a class without a user
 * Secret. Throws NodeSecretError when none can work; called before any image exists.
 */
export type NodeStageSecretResolver = (params: ClassParameters, claim: V1PersistentVolumeClaim, signal: AbortSignal) => Promise<SecretRef | undefined>;

export interface RbdProvisionerOptions {
  /** The provisioner name, recorded on every image we create. */
  name: string;
  connections: ConnectionPool;
  readSecret: SecretReader;
  /** Told when Ceph refuses a key read through readSecret, so a cached copy is read again (secrets.ts). */
  secretRefused?: (ref: SecretRef) => void;
  /**
   * How long one reading of a pool's usage and quota serves the room check of every create in that pool (default
   * 2 s): a burst asks the monitors once per period, not once per claim. 0 reads it for every create.
   */
  usageTtlMs?: number;
  nodeStageSecret: NodeStageSecretResolver;
  logger: Logger;
  /** Test-only fault injection: called right after an image is created and tagged, before the PV exists. */
  afterImageCreated?: (image: string) => void;
  /** Test-only fault injection: called right after a copy's image is cloned from its source, before it is tagged and its PV exists. */
  afterCopyCreated?: (image: string) => void;
  /** Test-only fault injection: called right after a delete has moved the image to the trash, before the PV goes. */
  afterImageRemoved?: (image: string) => void;
  /** Test-only fault injection: called right after an image has grown, before its PV shows the new capacity. */
  afterImageResized?: (image: string) => void;
  /** Test-only fault injection: called right after a snapshot is cut, before its VolumeSnapshotContent says so. */
  afterSnapshotCreated?: (snapshot: string) => void;
  /** When copies are flattened; ceph-csi's defaults when absent. */
  cloneLimits?: CloneLimits;
  /**
   * Deleted images are purged from the trash by the Ceph manager (its rbd_support module's task queue, as ceph-csi
   * does), not in this process; falls back to purging here where the manager cannot (no `mgr 'profile rbd'` cap,
   * module off, no manager). Off when absent: everything is purged here.
   */
  purgeInManager?: boolean;
}

/** After the manager refused a purge for a cluster, purges there run in this process for this long before asking again. */
const MANAGER_PURGE_RETRY_MS = 10 * 60_000;

// `pvc-<uuid>` after the class's prefix: how our image names end, and where the claim uid comes from.
const PV_NAME = /(pvc-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))$/;
// Snapshot images: `snapshot-<content uid>`.
const SNAPSHOT_IMAGE = new RegExp(`^${SNAPSHOT_IMAGE_PREFIX}[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`);
const METADATA_PREFIX = 'rbd.provisioner.ceph.io/';
/** Snapshot image metadata: the creation time reported for it, the same on every retry. */
const SNAPSHOT_CREATED_KEY = 'rbd.provisioner.ceph.io/snapshot-created';

export class RbdProvisioner implements Provisioner, VolumeResizer, VolumeSnapshotter {
  // Few at once: each purge holds one of the addon's Ceph threads for as long as it runs.
  private readonly purges = new PQueue({ concurrency: 2 });
  /** The purge of each trash entry (pool spec and id) that runs or waits: one at a time per image (purge()). */
  private readonly purgesByImage = new Map<string, Promise<void>>();
  /** Clusters (by monitors) whose manager refused a purge task, and until when purges there run here. */
  private readonly managerRefused = new Map<string, number>();
  // Flattening copies deeper than the soft limit, after their claims are bound.
  private readonly flattens = new PQueue({ concurrency: 1 });
  /** Background flattens by image (imageKey), queued or running. */
  private readonly flattening = new Map<string, Promise<void>>();
  private readonly cloneLimits: CloneLimits;
  /** Pool usage by cluster and pool (ensureRoom): one reading shared by the creates of usageTtlMs. */
  private readonly usages = new Map<string, { at: number; usage: Promise<PoolUsage> }>();

  constructor(private readonly options: RbdProvisionerOptions) {
    this.cloneLimits = options.cloneLimits ?? DEFAULT_CLONE_LIMITS;
  }

  async provision(req: ProvisionRequest, signal: AbortSignal): Promise<V1PersistentVolume> {
    const params = inputOrFinal(() => parseClassParameters(req.storageClass.parameters));
    const claim = inputOrFinal(() => checkClaim(req.claim, req.source !== undefined));
    const imageName = inputOrFinal(() => imageNameFor(req.pvName, params.imageNamePrefix));
    const owner = {
      [OWNER_KEYS.provisioner]: this.options.name,
      [OWNER_KEYS.claimNamespace]: req.claim.metadata?.namespace ?? '',
      [OWNER_KEYS.claimName]: req.claim.metadata?.name ?? '',
      [OWNER_KEYS.claimUid]: req.claim.metadata?.uid ?? '',
      [OWNER_KEYS.pvName]: req.pvName,
    };
    // Before the image: a claim whose nodes could not map it fails here with nothing created, never at mount time.
    const nodeStageSecret = params.volumeSource === 'csi' ? await this.resolveNodeStageSecret(params, req.claim, signal) : undefined;
    const target = deleteTargetOf(params, imageName);
    const size = await this.withPool(target, signal, 'provision', async (pool) => {
      try {
        await this.ensureRoom(pool, target.monitors, claim.requestedBytes);
      } catch (err) {
        // A full pool must not block the retry of a create that already happened: adopt what is there.
        if (!(await imageExists(pool, imageName))) throw err;
        return await this.adopt(pool, imageName, owner, claim.requestedBytes, signal);
      }
      abortIfLost(signal);
      if (req.source !== undefined) return await this.provisionCopy(pool, target, req.source, owner, claim.requestedBytes, params, signal);
      try {
        await pool.createImage(imageName, claim.requestedBytes, {
          features: params.imageFeatures,
          objectSize: params.objectSize,
          ...(params.striping && { stripeUnit: params.striping.unit, stripeCount: params.striping.count }),
          ...(params.dataPool !== undefined && { dataPool: params.dataPool }),
        });
        // Nothing has the new image open: its keys go straight to its header object, the owner keys all at once
        // (never a partly tagged image), three round trips where opening it and setting each key took a dozen.
        const id = await pool.imageId(imageName);
        await pool.writeMetadataToHeader(id, owner);
        this.options.afterImageCreated?.(imageName);
        abortIfLost(signal);
        await pool.writeMetadataToHeader(id, { [PV_MAY_EXIST_KEY]: 'true' });
        return claim.requestedBytes;
      } catch (err) {
        // A create that failed for room or time: the next one reads the pool's usage afresh.
        if (err instanceof NoSpace || err instanceof Timeout) this.usages.delete(usageKey(pool, target.monitors));
        if (!(err instanceof ImageExists)) throw err;
        return await this.adopt(pool, imageName, owner, claim.requestedBytes, signal);
      }
    });
    return buildVolume({ params, claim: req.claim, imageName, imageSizeBytes: size, mountOptions: req.storageClass.mountOptions, nodeStageSecret });
  }

  /**
   * A new volume that starts as a copy of a claim's volume or of a snapshot: a clone (clones.ts), grown to the size
   * asked for, tagged and recorded like a new image. Source and copy share a cluster and a pool: clones across pools
   * would tie images of different classes (and their quotas and credentials) together.
   */
  private async provisionCopy(pool: Pool, target: DeleteTarget, source: DataSource, owner: Record<string, string>, requested: number, params: ClassParameters, signal: AbortSignal): Promise<number> {
    const imageName = target.image;
    const from = copySourceOf(source, target);
    const format = await cloneFormatOf(pool.cluster);
    const imageOptions = { features: params.imageFeatures, ...(params.dataPool !== undefined && { dataPool: params.dataPool }) };
    // One open of the source: its size (or the snapshot's), and how many snapshots it carries (the per-image limit).
    const { sourceSize, sourceSnapshots } = await pool.withImage(from.image, async (image) => {
      const snapshots = await image.listSnapshots();
      if (from.snapshot === undefined) return { sourceSize: (await image.stat()).size, sourceSnapshots: snapshots.length };
      const snapshot = snapshots.find((s) => s.name === from.snapshot);
      if (snapshot === undefined) throw new ProvisionError('final', 'DataSourceNotFound', `snapshot ${pool.spec}/${from.image}@${from.snapshot} does not exist`);
      return { sourceSize: snapshot.size, sourceSnapshots: snapshots.length };
    }, { readOnly: true }).catch((err: unknown) => {
      if (err instanceof ImageNotFound) throw new ProvisionError('final', 'DataSourceNotFound', `the data source's image ${pool.spec}/${from.image} does not exist`);
      throw err;
    });
    if (requested < sourceSize) {
      throw new ProvisionError('final', 'DataSourceTooLarge', `PersistentVolumeClaim field "spec.resources.requests.storage": ${formatBytes(requested)} is less than the data source's ${formatBytes(sourceSize)}; allowed: at least the source's size`);
    }
    await this.flattenDone(target, from.image);
    abortIfLost(signal);
    if (from.snapshot === undefined) await copyImage(pool, from.image, imageName, { format, image: imageOptions });
    else await cloneSnapshot(pool, from.image, from.snapshot, imageName, { format, image: imageOptions });
    this.options.afterCopyCreated?.(imageName);
    return pool.withImage(imageName, async (image) => {
      let meta = await image.listMetadata();
      // librbd copies image metadata into a clone: a copy starts with its source's claim, PV and records, which
      // describe the source, not it. The name holds this claim's uid, so no other claim made this image.
      if (meta[OWNER_KEYS.claimUid] !== owner[OWNER_KEYS.claimUid]) meta = await forgetInheritedMetadata(image, meta);
      if (Object.entries(owner).some(([key, value]) => meta[key] !== value)) await tag(image, owner);
      let { size } = await image.stat();
      if (size < requested) {
        await image.resize(requested);
        size = requested;
      }
      const need = format === 1 ? 'none' : await flattenNeed(pool, image, this.cloneLimits, sourceSnapshots);
      if (need === 'now') await image.flatten();
      abortIfLost(signal);
      if (meta[PV_MAY_EXIST_KEY] === undefined) await recordPvMayExist(image);
      if (need === 'background') this.flattenInBackground(target);
      this.options.logger.info('volume copied from its data source', { image: `${pool.spec}/${imageName}`, source: `${from.image}${from.snapshot === undefined ? '' : `@${from.snapshot}`}`, cloneFormat: format, flatten: need });
      return size;
    }).catch(async (err: unknown) => {
      if (!(err instanceof ImageNotFound)) throw err;
      return this.clearHalfMade(pool, imageName, err);
    });
  }

  /**
   * Flattens a copy whose chain passed the soft limit; a failure only leaves a longer chain, and is logged. A copy of
   * that image waits for it (flattenDone): a snapshot and clone of an image while librbd flattens it failed here
   * ("parent image or snapshot does not exist").
   */
  private flattenInBackground(target: DeleteTarget): void {
    const key = imageKey(target);
    const done = this.flattens.add(async () => {
      const signal = new AbortController().signal;
      try {
        await this.withPool(target, signal, 'provision', (pool) => pool.withImage(target.image, (image) => image.flatten()));
        this.options.logger.info('flattened a copy past the soft clone depth', { image: `${target.pool}/${target.image}` });
      } catch (err) {
        this.options.logger.warn('flattening a copy failed; its chain stays longer until the next copy of it', { image: `${target.pool}/${target.image}`, error: (err as Error).message });
      }
    }).finally(() => {
      if (this.flattening.get(key) === done) this.flattening.delete(key);
    });
    this.flattening.set(key, done);
  }

  /** Resolves once no background flatten of this image is queued or running. */
  private async flattenDone(target: DeleteTarget, image: string): Promise<void> {
    await this.flattening.get(imageKey({ ...target, image }));
  }

  // ---- snapshots (VolumeSnapshotter) ----------------------------------------------------------------------------

  planSnapshot(req: SnapshotPlanRequest): SnapshotRecord {
    return snapshotRecordFor(req.name, req.sourceVolume, snapshotClassParameters(req.parameters));
  }

  planImport(req: SnapshotImportRequest): SnapshotRecord {
    return importRecordFor(req.snapshotHandle, snapshotClassParameters(req.parameters));
  }

  /**
   * Cuts a snapshot image: a copy of the source as it is now, with one snapshot to restore from. A retry finds the
   * image of an earlier try and finishes it; its creation time is the first try's.
   */
  async createSnapshot(record: SnapshotRecord, signal: AbortSignal): Promise<SnapshotState> {
    const location = readSnapshotRecord(record);
    if (location.origin !== 'created' || location.sourceImage === undefined) return this.describeSnapshot(record, signal);
    const { target, snapshot, sourceImage } = location;
    return this.withSnapshotPool(target, signal, async (pool) => {
      const format = await cloneFormatOf(pool.cluster);
      if (!(await imageExists(pool, target.image))) {
        const sourceSnapshots = await snapshotCount(pool, sourceImage).catch((err: unknown) => {
          if (err instanceof ImageNotFound) throw new SnapshotError('final', 'SourceVolumeNotFound', `the source image ${pool.spec}/${sourceImage} does not exist`);
          throw err;
        });
        await this.flattenDone(target, sourceImage);
        abortIfLost(signal);
        await copyImage(pool, sourceImage, target.image, { format, image: {} });
        await pool.withImage(target.image, async (image) => {
          const need = format === 1 ? 'none' : await flattenNeed(pool, image, this.cloneLimits, sourceSnapshots);
          if (need === 'now') await image.flatten();
          else if (need === 'background') this.flattenInBackground(target);
        });
      } else {
        // An earlier try may have stopped between the clone and releasing the source's snapshot.
        await copyImage(pool, sourceImage, target.image, { format, image: {} });
      }
      return pool.withImage(target.image, async (image) => {
        let meta = await image.listMetadata();
        // Inherited from the source (see provisionCopy): a snapshot image belongs to no claim.
        if (meta[SNAPSHOT_CREATED_KEY] === undefined) meta = await forgetInheritedMetadata(image, meta);
        if (meta[OWNER_KEYS.provisioner] === undefined) await image.setMetadata(OWNER_KEYS.provisioner, this.options.name);
        let created = meta[SNAPSHOT_CREATED_KEY];
        if (created === undefined) {
          created = new Date().toISOString();
          await image.setMetadata(SNAPSHOT_CREATED_KEY, created);
        }
        const snapshots = await image.listSnapshots();
        let cut = snapshots.find((s) => s.name === snapshot);
        if (cut === undefined) {
          await image.createSnapshot(snapshot);
          cut = (await image.listSnapshots()).find((s) => s.name === snapshot);
        }
        if (format === 1 && !(await image.isSnapshotProtected(snapshot))) await image.protectSnapshot(snapshot);
        this.options.afterSnapshotCreated?.(target.image);
        return { snapshotHandle: handleOf(location), creationTime: new Date(created), restoreSizeBytes: cut?.size ?? (await image.stat()).size, readyToUse: true };
      });
    });
  }

  async describeSnapshot(record: SnapshotRecord, signal: AbortSignal): Promise<SnapshotState> {
    const location = readSnapshotRecord(record);
    const { target, snapshot } = location;
    return this.withSnapshotPool(target, signal, async (pool) => {
      try {
        return await pool.withImage(target.image, async (image) => {
          const found = (await image.listSnapshots()).find((s) => s.name === snapshot);
          if (found === undefined) throw new SnapshotError('final', 'SnapshotNotFound', `snapshot ${handleOf(location)} does not exist`);
          const created = await image.getMetadata(SNAPSHOT_CREATED_KEY);
          return { snapshotHandle: handleOf(location), creationTime: created === undefined ? new Date() : new Date(created), restoreSizeBytes: found.size, readyToUse: true };
        }, { readOnly: true });
      } catch (err) {
        if (err instanceof ImageNotFound) throw new SnapshotError('final', 'SnapshotNotFound', `snapshot ${handleOf(location)} does not exist: its image is missing`);
        throw err;
      }
    });
  }

  /**
   * Removes the snapshot; for a snapshot image of ours, the image too, through the trash like a volume's: it waits
   * there while restores still read through it, and is purged after the last of them goes.
   */
  async deleteSnapshot(record: SnapshotRecord, signal: AbortSignal): Promise<void> {
    const location = readSnapshotRecord(record);
    const { target, snapshot } = location;
    await this.withSnapshotPool(target, signal, async (pool) => {
      try {
        await pool.withImage(target.image, async (image) => {
          if (location.origin === 'created' && (await image.getMetadata(OWNER_KEYS.provisioner)) !== this.options.name) {
            throw new SnapshotError('final', 'SnapshotNotOurs', `image ${pool.spec}/${target.image} does not carry our metadata; not removing it`);
          }
          if ((await image.listSnapshots()).some((s) => s.name === snapshot)) {
            if (await image.isSnapshotProtected(snapshot)) await image.unprotectSnapshot(snapshot);
            await removeSnapshotIfPresent(image, snapshot);
          }
        });
      } catch (err) {
        if (!(err instanceof ImageNotFound)) throw err;
      }
      if (location.origin === 'created') await this.removeImage(pool, target, signal, undefined);
    });
  }

  private async withSnapshotPool<T>(target: DeleteTarget, signal: AbortSignal, fn: (pool: Pool) => Promise<T>): Promise<T> {
    try {
      return await this.withPool(target, signal, 'snapshot', fn);
    } catch (err) {
      if (err instanceof ProvisionError || err instanceof DeleteError) throw new SnapshotError(err.kind === 'final' ? 'final' : 'transient', err.reason, err.message, { cause: err });
      throw err;
    }
  }

  /**
   * Grows the PV's image to the size asked for, rounded up to whole MiB as provisioning rounds. The image's actual
   * size is the truth: one that already has the size (a retry after a crash between growing it and saving the PV) is
   * left as it is, and one is never shrunk. An image whose metadata does not name the claim is never touched.
   */
  async expand(req: ExpandRequest, signal: AbortSignal): Promise<ExpandResult> {
    let target: DeleteTarget;
    try {
      target = readDeleteTarget(req.volume);
    } catch (err) {
      if (err instanceof VolumeRecordError) throw new ResizeError('infeasible', 'InvalidVolumeRecord', err.message, { cause: err });
      throw err;
    }
    let wanted: number;
    try {
      wanted = quantityToWholeMiB(req.size);
    } catch (err) {
      throw new ResizeError('infeasible', 'InvalidSize', `size ${JSON.stringify(req.size)} is ${err instanceof RangeError ? err.message : 'not a Kubernetes quantity'}`, { cause: err });
    }
    const imageName = target.image;
    try {
      return await this.withPool(target, signal, 'provision', (pool) => pool.withImage(imageName, async (image) => {
        const owner = await image.getMetadata(OWNER_KEYS.claimUid);
        if (owner !== req.claimUid) {
          throw new ResizeError('infeasible', 'ImageNotOurs', `image ${pool.spec}/${imageName} ${owner === undefined ? 'names no claim' : `belongs to claim uid ${owner}`}, not ${req.claimUid}; not resizing it`);
        }
        const { size } = await image.stat();
        if (size >= wanted) {
          this.options.logger.info('image already has the size asked for; not resizing it', { image: `${pool.spec}/${imageName}`, size, wanted });
          return { capacity: formatBytes(size), grown: false };
        }
        await this.ensureRoomToGrow(pool, wanted);
        abortIfLost(signal);
        await image.resize(wanted);
        this.options.logger.info('image grown', { image: `${pool.spec}/${imageName}`, from: size, to: wanted });
        this.options.afterImageResized?.(imageName);
        return { capacity: formatBytes(wanted), grown: true };
      }));
    } catch (err) {
      if (err instanceof ResizeError) throw err;
      if (err instanceof ProvisionError) {
        if (err.cause instanceof ImageNotFound) throw new ResizeError('infeasible', 'ImageNotFound', err.message, { cause: err });
        throw new ResizeError(err.kind === 'final' ? 'infeasible' : 'transient', err.reason, err.message, { cause: err });
      }
      throw err;
    }
  }

  /**
   * A grown image reserves nothing (thin), but one larger than the pool's whole byte quota could never be filled, and
   * a pool at its quota or a full cluster would pause the resize's own header write: refused with what to raise.
   */
  private async ensureRoomToGrow(pool: Pool, wanted: number): Promise<void> {
    const usage = await pool.usage();
    if (usage.quotaMaxBytes > 0 && usage.usedBytes >= usage.quotaMaxBytes) {
      throw new ResizeError('transient', 'PoolQuotaReached', `pool ${pool.spec} has reached its quota of ${usage.quotaMaxBytes} bytes; raise it with "ceph osd pool set-quota ${pool.name} max_bytes <bytes>"`);
    }
    if (usage.quotaMaxBytes > 0 && wanted > usage.quotaMaxBytes) {
      throw new ResizeError('transient', 'PoolQuotaTooSmall', `pool ${pool.spec} has a quota of ${usage.quotaMaxBytes} bytes (${formatBytes(usage.quotaMaxBytes)}), less than the ${wanted} bytes (${formatBytes(wanted)}) asked for; raise it with "ceph osd pool set-quota ${pool.name} max_bytes <bytes>"`);
    }
    if (usage.quotaMaxObjects > 0 && usage.objects >= usage.quotaMaxObjects) {
      throw new ResizeError('transient', 'PoolQuotaReached', `pool ${pool.spec} has reached its quota of ${usage.quotaMaxObjects} objects`);
    }
    if (usage.clusterAvailableBytes === 0 || usage.poolFull) {
      throw new ResizeError('transient', 'ClusterFull', `${fullReason(pool, usage)} to grow an image in pool ${pool.spec}${FULL_HINT}`);
    }
  }

  private async resolveNodeStageSecret(params: ClassParameters, claim: V1PersistentVolumeClaim, signal: AbortSignal): Promise<SecretRef | undefined> {
    abortIfLost(signal);
    try {
      return await this.options.nodeStageSecret(params, claim, signal);
    } catch (err) {
      if (err instanceof NodeSecretError) throw new ProvisionError('final', err.reason, err.message, { cause: err });
      throw err;
    }
  }

  /**
   * A retry after a crash or a timed-out create finds the image already there. It is ours when its metadata names
   * this claim's uid, or when it has no owner metadata yet (the create finished but tagging did not): the name holds
   * the claim's uid, so no other claim can have made it.
   */
  private async adopt(pool: Pool, imageName: string, owner: Record<string, string>, requested: number, signal: AbortSignal): Promise<number> {
    return pool.withImage(imageName, async (image) => {
      const meta = await image.listMetadata();
      const uid = meta[OWNER_KEYS.claimUid];
      if (uid !== undefined && uid !== owner[OWNER_KEYS.claimUid]) {
        throw new ProvisionError('final', 'ImageNotOurs', `image ${pool.spec}/${imageName} exists and belongs to claim uid ${uid}; not touching it`);
      }
      const { size } = await image.stat();
      if (size < requested) {
        throw new ProvisionError('final', 'ImageTooSmall', `image ${pool.spec}/${imageName} exists with ${size} bytes, less than the ${requested} requested; not touching it`);
      }
      // An interrupted tagging (or none at all) is completed: the image must be findable by orphan collection.
      if (Object.entries(owner).some(([key, value]) => meta[key] !== value)) await tag(image, owner);
      abortIfLost(signal);
      if (meta[PV_MAY_EXIST_KEY] === undefined) await recordPvMayExist(image);
      this.options.logger.info('image exists and is ours; adopting', { image: `${pool.spec}/${imageName}`, size });
      return size;
    }).catch(async (err: unknown) => {
      if (!(err instanceof ImageNotFound)) throw err;
      return this.clearHalfMade(pool, imageName, err);
    });
  }

  /**
   * The name exists (the create said EEXIST, or the pool lists it) but the image cannot be opened: a create of this
   * very name that timed out half-way, Ceph having written the id object and directory entry but not the header (and
   * librbd's rollback timed out too). Nothing can have used it, and the name carries this claim's uid, so no one
   * else made it: it is removed, and the retry creates the image afresh.
   */
  private async clearHalfMade(pool: Pool, imageName: string, cause: ImageNotFound): Promise<never> {
    this.options.logger.warn('image was left half-made by an interrupted create; removing it to create it again', { image: `${pool.spec}/${imageName}` });
    try {
      await pool.removeImage(imageName);
    } catch (err) {
      if (!(err instanceof ImageNotFound)) throw err;
    }
    throw new ProvisionError('transient', 'HalfMadeImage', `image ${pool.spec}/${imageName} was left half-made by an interrupted create; removed it, creating it again`, { cause });
  }

  /**
   * Thin images do not reserve space, but a pool at its quota or a full cluster would pause the create's writes. The
   * usage may be up to usageTtlMs old: what a quota check needs (the OSDs' own statistics lag by seconds anyway), and
   * a create that still meets a full pool times out or fails with no space, and is retried under the same name.
   */
  private async ensureRoom(pool: Pool, monitors: string, requested: number): Promise<void> {
    const usage = await this.cachedUsage(pool, monitors);
    if (usage.quotaMaxBytes > 0 && usage.usedBytes >= usage.quotaMaxBytes) {
      throw new ProvisionError('transient', 'PoolQuotaReached', `pool ${pool.spec} has reached its quota of ${usage.quotaMaxBytes} bytes; raise it with "ceph osd pool set-quota"`);
    }
    if (usage.quotaMaxObjects > 0 && usage.objects >= usage.quotaMaxObjects) {
      throw new ProvisionError('transient', 'PoolQuotaReached', `pool ${pool.spec} has reached its quota of ${usage.quotaMaxObjects} objects`);
    }
    if (usage.clusterAvailableBytes === 0 || usage.poolFull) {
      throw new ProvisionError('transient', 'ClusterFull', `${fullReason(pool, usage)} for a ${requested}-byte image in pool ${pool.spec}${FULL_HINT}`);
    }
  }

  private async cachedUsage(pool: Pool, monitors: string): Promise<PoolUsage> {
    const ttl = this.options.usageTtlMs ?? 2000;
    if (ttl <= 0) return pool.usage();
    const key = usageKey(pool, monitors);
    const cached = this.usages.get(key);
    if (cached !== undefined && Date.now() - cached.at < ttl) return cached.usage;
    const entry = { at: Date.now(), usage: pool.usage() };
    this.usages.set(key, entry);
    entry.usage.catch(() => {
      if (this.usages.get(key) === entry) this.usages.delete(key);
    });
    return entry.usage;
  }

  async delete(pv: V1PersistentVolume, signal: AbortSignal, context: DeleteContext = {}): Promise<void> {
    let target: DeleteTarget;
    try {
      // A PV of the retired provisioner (taken over) has none of our annotations: its class has the admin credentials.
      target = isOwnRecord(pv) || pv.spec?.rbd == null ? readDeleteTarget(pv) : legacyDeleteTarget(pv, context.storageClass);
    } catch (err) {
      if (err instanceof VolumeRecordError) throw new DeleteError('final', 'InvalidVolumeRecord', err.message, { cause: err });
      if (err instanceof LegacyAdminError) throw new DeleteError('final', 'AdminCredentialsUnknown', err.message, { cause: err });
      throw err;
    }
    const claimUid = pv.spec?.claimRef?.uid;
    await this.withPool(target, signal, 'delete', async (pool) => {
      await this.removeImage(pool, target, signal, claimUid);
    });
  }

  /**
   * Moves the image to the trash (constant time whatever its size) and then purges it. An image that is already gone
   * counts as removed; one left in the trash by an earlier attempt is purged.
   */
  private async removeImage(pool: Pool, target: DeleteTarget, signal: AbortSignal, claimUid: string | undefined): Promise<void> {
    const imageName = target.image;
    let id: string;
    let purgeFacts: PurgeFacts | undefined;
    try {
      const checked = await pool.withImage(imageName, async (image) => {
        const owner = await image.getMetadata(OWNER_KEYS.claimUid);
        if (claimUid !== undefined && owner !== undefined && owner !== claimUid) {
          throw new DeleteError('final', 'ImageNotOurs', `image ${pool.spec}/${imageName} belongs to claim uid ${owner}, not ${claimUid}; not removing it`);
        }
        const watchers = await image.watchers();
        if (watchers.length > 0) {
          throw new DeleteError('in-use', 'ImageInUse', `image ${pool.spec}/${imageName} is in use by ${watchers.length} client(s); will retry once it is unmapped`);
        }
        // Trash-namespace snapshots stand for clones (copies, snapshot images) that still read through this image: it
        // waits for them in the trash. Leftover copy snapshots of a crashed copy are ours to release.
        const { user, trash, other } = await snapshotsByNamespace(image);
        const snapshots = user.filter((name) => !isCopySnapshot(name));
        if (snapshots.length > 0) {
          throw new DeleteError('has-snapshots', 'ImageHasSnapshots', `image ${pool.spec}/${imageName} has ${snapshots.length} snapshot(s); they are never purged silently: remove them first`);
        }
        const copySnapshots = user.length > snapshots.length;
        // What the purge decides by, read in this open rather than in one of its own.
        const facts: PurgeFacts | undefined = copySnapshots ? undefined : { parent: await image.parent(), snapshots: trash + other };
        return { imageId: await image.id(), copySnapshots, facts };
      }, { readOnly: true });
      // Only after a crashed copy: the common delete opens the image once, read-only.
      if (checked.copySnapshots) await this.releaseCopySnapshots(pool, imageName);
      id = checked.imageId;
      purgeFacts = checked.facts;
    } catch (err) {
      if (!(err instanceof ImageNotFound)) throw err;
      const leftover = (await pool.listTrash()).find((entry) => entry.name === imageName);
      if (!leftover) {
        this.options.logger.info('image already gone; counting it as removed', { image: `${pool.spec}/${imageName}` });
        return;
      }
      id = leftover.id;
    }
    abortIfLost(signal);
    // Marks it as ours to purge: orphan collection only ever purges trash entries that carry this. Nothing has the
    // image open (its watchers were just counted), and the key is ours, not librbd's: written to its header directly.
    await pool.writeMetadataToHeader(id, { [DELETING_KEY]: 'true' }).catch((err: unknown) => {
      if (!(err instanceof ImageNotFound)) throw err;
    });
    abortIfLost(signal);
    try {
      await pool.moveToTrash(imageName);
    } catch (err) {
      if (!(err instanceof ImageNotFound)) throw err;
    }
    this.options.logger.info('image moved to the trash; purging it in the background', { image: `${pool.spec}/${imageName}`, id });
    this.options.afterImageRemoved?.(imageName);
    this.purgeInBackground(target, id, imageName, purgeFacts);
  }

  /** Copy snapshots a crash left behind (clones made from them keep them, in the trash namespace). */
  private async releaseCopySnapshots(pool: Pool, imageName: string): Promise<void> {
    await pool.withImage(imageName, async (image) => {
      for (const snapshot of (await image.listSnapshots()).filter((s) => isCopySnapshot(s.name))) {
        if ((await image.snapshotNamespace(snapshot.id)) !== 'user') continue;
        if (await image.isSnapshotProtected(snapshot.name)) {
          // Format 1: protected while a clone depends on it; such a clone is flattened by its own retry first.
          try {
            await image.unprotectSnapshot(snapshot.name);
          } catch (err) {
            if (err instanceof ImageBusy) throw new DeleteError('has-snapshots', 'ImageHasSnapshots', `image ${pool.spec}/${imageName} has a copy in progress; will retry`);
            throw err;
          }
        }
        await removeSnapshotIfPresent(image, snapshot.name);
      }
    });
  }

  /**
   * Purging walks every possible data object of an image without object-map (a 1 TiB image took 38 s here), so it
   * runs outside the delete: the image is already out of the way once it is in the trash. A purge that fails, or that
   * a crash interrupts, is found again by listOwnedVolumes and finished by the orphan collector.
   */
  private purgeInBackground(target: DeleteTarget, id: string, imageName: string, facts?: PurgeFacts): void {
    void this.purges.add(async () => {
      // Each object operation of the purge is bounded by rados_osd_op_timeout; the purge as a whole is not.
      const signal = new AbortController().signal;
      try {
        // A plain image whose facts are known goes to the manager without opening its pool here.
        if (facts !== undefined && isPlain(facts) && (await this.withCluster(target, signal, 'delete', (cluster) => this.queuedInManager(cluster, poolSpecOf(target), id, target.monitors)))) return;
        await this.withPool(target, signal, 'delete', (pool) => this.purge(pool, id, { manager: target.monitors, facts }));
      } catch (err) {
        this.options.logger.warn('purge from the trash failed; orphan collection will retry it', { image: `${target.pool}/${imageName}`, id, error: (err as Error).message });
      }
    });
  }

  /**
   * Purges a trash entry of ours. One that clones still read through (librbd says ENOTEMPTY: its trash-namespace
   * snapshots) waits: purging the last of those clones purges it, and orphan collection retries it meanwhile. After a
   * clone is purged, its parent follows if it was waiting in the trash for it.
   */
  private purge(pool: Pool, id: string, options: { manager?: string; facts?: PurgeFacts | undefined } = {}): Promise<void> {
    // One at a time per image. Two clones purged at the same moment each purge their parent next, and librbd's trash
    // remove opens the image: each attempt saw the other as a watcher and both failed (EBUSY), leaving the parent to
    // the next orphan scan. A later attempt runs after the earlier one, not instead of it: the earlier may have found
    // a clone that the later one's caller has just purged.
    const key = `${pool.spec}@${id}`;
    const run = (this.purgesByImage.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => this.purgeOnce(pool, id, options));
    this.purgesByImage.set(key, run);
    void run.catch(() => undefined).then(() => {
      if (this.purgesByImage.get(key) === run) this.purgesByImage.delete(key);
    });
    return run;
  }

  private async purgeOnce(pool: Pool, id: string, options: { manager?: string; facts?: PurgeFacts | undefined }): Promise<void> {
    let facts: PurgeFacts = options.facts ?? { parent: undefined, snapshots: 0 };
    if (options.facts === undefined) {
      try {
        facts = await pool.withImage(id, async (image) => ({ parent: await image.parent(), snapshots: (await image.listSnapshots()).length }), { readOnly: true, byId: true });
      } catch (err) {
        if (!(err instanceof ImageNotFound)) throw err;
      }
    }
    const { parent } = facts;
    if (options.manager !== undefined && isPlain(facts) && (await this.queuedInManager(pool.cluster, pool.spec, id, options.manager))) return;
    try {
      await purgeFromTrash(pool, id);
    } catch (err) {
      if (!(err instanceof ImageHasSnapshots)) throw err;
      this.options.logger.info('image stays in the trash while clones still read through it', { image: pool.spec, id });
      return;
    }
    this.options.logger.info('image purged from the trash', { image: pool.spec, id });
    if (parent === undefined || parent.pool !== pool.name || parent.namespace !== pool.namespace) return;
    // Looked up now, not from the link read before: the parent may have been moved to the trash meanwhile, its own
    // purge refused while this image still read through it.
    if (!(await pool.listTrash()).some((entry) => entry.id === parent.imageId)) return;
    const meta = await readMetadata(pool.readMetadataFromHeader(parent.imageId));
    if (meta?.[OWNER_KEYS.provisioner] === this.options.name && meta[DELETING_KEY] !== undefined) await this.purge(pool, parent.imageId);
  }

  /** Hands a purge to the manager; false when it cannot take it (then it runs here). */
  private async queuedInManager(cluster: Cluster, poolSpec: string, id: string, monitors: string): Promise<boolean> {
    if (!this.options.purgeInManager || (this.managerRefused.get(monitors) ?? 0) > Date.now()) return false;
    try {
      await cluster.queueTrashRemoval(poolSpec, id);
    } catch (err) {
      if (!(err instanceof CephError)) throw err;
      this.managerRefused.set(monitors, Date.now() + MANAGER_PURGE_RETRY_MS);
      this.options.logger.warn('the Ceph manager did not take the purge (needs mgr "profile rbd" and the rbd_support module); purging in this process for the next 10 minutes', { image: poolSpec, id, error: err.message });
      return false;
    }
    this.options.logger.info('purge handed to the Ceph manager (rbd_support trash remove task)', { image: poolSpec, id });
    return true;
  }

  /** Resolves when no background purge or flatten is queued or running (tests, graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.all([this.purges.onIdle(), this.flattens.onIdle()]);
  }

  /** One location per distinct cluster + pool + namespace + name prefix among these classes (unparsable ones have none). */
  volumeLocations(classes: V1StorageClass[]): ImageLocation[] {
    const seen = new Map<string, ImageLocation>();
    for (const storageClass of classes) {
      let params: ClassParameters;
      try {
        params = parseClassParameters(storageClass.parameters);
      } catch {
        continue;
      }
      const target = deleteTargetOf(params, '');
      const id = `${poolSpecOf(target)}/${params.imageNamePrefix}* on ${target.monitors}`;
      if (!seen.has(id)) seen.set(id, { id, target, imageNamePrefix: params.imageNamePrefix });
    }
    return [...seen.values()];
  }

  /**
   * The images at one location that carry our ownership metadata, each with its state: unrecorded (never had a PV),
   * pv-may-exist, or deleting (our own trash leftovers: a delete whose purge did not finish).
   */
  async listOwnedVolumes(location: VolumeLocation, signal: AbortSignal): Promise<OwnedVolume[]> {
    const { target, imageNamePrefix } = location as ImageLocation;
    return this.withPool(target, signal, 'list', async (pool) => {
      const volumes: OwnedVolume[] = [];
      const ours = (name: string) => name.startsWith(imageNamePrefix) && PV_NAME.test(name);
      for (const { id, name } of (await pool.listImageSpecs()).filter((spec) => ours(spec.name))) {
        abortIfLost(signal);
        // Read from the header without opening each image: a scan reads every image of the pool.
        const meta = await readMetadata(id === '' ? pool.withImage(name, (image) => image.listMetadata(), { readOnly: true }) : pool.readMetadataFromHeader(id));
        if (meta === undefined) {
          // Listed but cannot be opened: a create interrupted half-way (or an image removed since the listing).
          const claimUid = PV_NAME.exec(name)?.[2] ?? '';
          volumes.push({ ...ownedVolume({ ...target, image: name }, location.id, 'half-made', {}), pvName: `pvc-${claimUid}`, claimUid });
          continue;
        }
        if (meta[OWNER_KEYS.provisioner] !== this.options.name) continue;
        const state = meta[PV_MAY_EXIST_KEY] === undefined ? 'unrecorded' : 'pv-may-exist';
        volumes.push(ownedVolume({ ...target, image: name }, location.id, state, meta));
      }
      for (const entry of (await pool.listTrash()).filter((e) => e.source === 'user' && (ours(e.name) || SNAPSHOT_IMAGE.test(e.name)))) {
        abortIfLost(signal);
        const meta = await readMetadata(pool.readMetadataFromHeader(entry.id));
        if (meta?.[OWNER_KEYS.provisioner] !== this.options.name || meta[DELETING_KEY] === undefined) continue;
        volumes.push(ownedVolume({ ...target, image: entry.name, trashId: entry.id }, location.id, 'deleting', meta));
      }
      return volumes;
    });
  }

  async deleteOwnedVolume(volume: OwnedVolume, signal: AbortSignal): Promise<void> {
    // Checked here too: whatever the caller believes, an image whose PV may exist is never removed this way.
    if (volume.state === 'pv-may-exist') throw new DeleteError('final', 'PvMayExist', `volume ${volume.pvName} may have a PV; orphan collection never removes it`);
    const target = JSON.parse(volume.id) as OwnedVolumeId;
    await this.withPool(target, signal, 'delete', async (pool) => {
      // An interrupted purge goes to the manager like any other (it keeps one task per image, so one it already had
      // is not queued twice): a purge here would race the manager's own.
      if (target.trashId !== undefined) return this.purge(pool, target.trashId, { manager: target.monitors });
      if (volume.state === 'half-made') return this.removeHalfMade(pool, target.image);
      const meta = await readMetadata(pool.withImage(target.image, (image) => image.listMetadata(), { readOnly: true }));
      if (meta?.[PV_MAY_EXIST_KEY] !== undefined) throw new DeleteError('final', 'PvMayExist', `image ${pool.spec}/${target.image} may have a PV now; not removing it`);
      return this.removeImage(pool, target, signal, volume.claimUid || undefined);
    });
  }

  /** Removes what an interrupted create left, only while it still cannot be opened: an image that opens is not touched. */
  private async removeHalfMade(pool: Pool, imageName: string): Promise<void> {
    let opens = true;
    await pool.withImage(imageName, async () => undefined, { readOnly: true }).catch((err: unknown) => {
      if (!(err instanceof ImageNotFound)) throw err;
      opens = false;
    });
    if (opens) throw new DeleteError('transient', 'NotHalfMade', `image ${pool.spec}/${imageName} opens now; not removing it`);
    try {
      await pool.removeImage(imageName);
    } catch (err) {
      if (!(err instanceof ImageNotFound)) throw err;
    }
  }

  async recordVolumeHasPv(volume: OwnedVolume, signal: AbortSignal): Promise<void> {
    const target = JSON.parse(volume.id) as OwnedVolumeId;
    if (target.trashId !== undefined) return;
    await this.withPool(target, signal, 'provision', (pool) => pool.withImage(target.image, recordPvMayExist));
  }

  /** The admin key a target names, checked before any native call: librados would say only "invalid argument". */
  private async adminKey(target: DeleteTarget, op: Operation, signal: AbortSignal): Promise<string> {
    let key: string;
    try {
      key = await this.options.readSecret(target.adminSecret, signal);
    } catch (err) {
      if (err instanceof SecretError) throw failure(op, 'final', 'SecretUnavailable', err.message, err);
      throw err;
    }
    const keyProblem = cephxKeyProblem(key);
    if (keyProblem) {
      this.options.secretRefused?.(target.adminSecret);
      const { namespace, name } = target.adminSecret;
      throw failure(op, 'final', 'InvalidSecret', `secret ${namespace}/${name}: its key is ${keyProblem}; expected ${CEPHX_KEY_ALLOWED}`, undefined);
    }
    return key;
  }

  async checkCredentials(record: SnapshotRecord, signal: AbortSignal): Promise<void> {
    const { target } = readSnapshotRecord(record);
    try {
      await this.adminKey(target, 'snapshot', signal);
    } catch (err) {
      if (err instanceof DeleteError) throw new SnapshotError('final', err.reason, err.message, { cause: err });
      throw err;
    }
  }

  /** Connects (through the shared pool) as the class's admin user and opens the pool; maps Ceph errors for the controller. */
  private async withPool<T>(target: DeleteTarget, signal: AbortSignal, op: Operation, fn: (pool: Pool) => Promise<T>): Promise<T> {
    return this.withCluster(target, signal, op, async (cluster) => {
      const pool = await cluster.openPool(target.pool, target.radosNamespace);
      try {
        return await fn(pool);
      } finally {
        await pool.close();
      }
    });
  }

  private async withCluster<T>(target: DeleteTarget, signal: AbortSignal, op: Operation, fn: (cluster: Cluster) => Promise<T>): Promise<T> {
    abortIfLost(signal);
    const key = await this.adminKey(target, op, signal);
    // origin: which Secret held the key, so a successor that must fence this connection can read it (never the key).
    const clusterTarget: ClusterTarget = {
      monitors: target.monitors,
      user: target.adminId,
      key,
      origin: { secretNamespace: target.adminSecret.namespace, secretName: target.adminSecret.name },
    };
    let connection: Cluster | undefined;
    try {
      return await this.options.connections.use(clusterTarget, async (cluster: Cluster) => {
        connection = cluster;
        abortIfLost(signal);
        return await fn(cluster);
      });
    } catch (err) {
      if (err instanceof ProvisionError || err instanceof DeleteError || err instanceof ResizeError || err instanceof SnapshotError) throw err;
      if (err instanceof PermissionDenied) this.options.secretRefused?.(target.adminSecret);
      if (connection && err instanceof CephError && ['ESHUTDOWN', 'ENOTCONN'].includes(err.code)) this.options.connections.evict(clusterTarget, connection);
      throw classify(op, err);
    }
  }
}

type Operation = 'provision' | 'delete' | 'list' | 'snapshot';

/** What decides where a trash entry is purged: a clone's purge is followed by its parent's; snapshots make it wait. */
interface PurgeFacts {
  parent: Parent | undefined;
  /** Of any namespace: trash-namespace ones stand for clones that still read through the image. */
  snapshots: number;
}

/** Only a plain image goes to the manager: a clone's purge must be followed by its parent's, and an image that clones still read through must wait for them. */
const isPlain = (facts: PurgeFacts): boolean => facts.parent === undefined && facts.snapshots === 0;

/** "pool" or "pool/namespace", as `rbd` spells it (Pool.spec, before any pool is open). */
const poolSpecOf = (target: DeleteTarget): string => (target.radosNamespace === '' ? target.pool : `${target.pool}/${target.radosNamespace}`);

const imageKey = (target: DeleteTarget): string => JSON.stringify([target.monitors, target.pool, target.radosNamespace, target.image]);

/** Where a copy comes from: an image, or a snapshot of one; in the new volume's cluster and pool, or refused. */
function copySourceOf(source: DataSource, target: DeleteTarget): { image: string; snapshot?: string } {
  let from: DeleteTarget;
  let snapshot: string | undefined;
  let what: string;
  try {
    if (source.kind === 'volume') {
      from = readDeleteTarget(source.volume);
      what = `source claim's PV ${source.volume.metadata?.name ?? ''}`;
    } else {
      const location: SnapshotLocation = readSnapshotRecord(source.record);
      from = location.target;
      snapshot = location.snapshot;
      what = `snapshot ${source.snapshotHandle}`;
    }
  } catch (err) {
    if (err instanceof VolumeRecordError) throw new ProvisionError('final', 'InvalidDataSource', `data source: ${err.message}`, { cause: err });
    if (err instanceof SnapshotError) throw new ProvisionError('final', 'InvalidDataSource', `data source: ${err.message}`, { cause: err });
    throw err;
  }
  const where = (t: DeleteTarget) => `pool ${poolSpecOf(t)} of the cluster at ${t.monitors}`;
  if (from.monitors !== target.monitors || from.pool !== target.pool || from.radosNamespace !== target.radosNamespace) {
    throw new ProvisionError('final', 'DataSourceElsewhere', `the ${what} is in ${where(from)}, but this claim's StorageClass makes volumes in ${where(target)}; ` +
      'copies are made in their source\'s pool: use a StorageClass of that pool');
  }
  return snapshot === undefined ? { image: from.image } : { image: from.image, snapshot };
}

function snapshotClassParameters(params: Record<string, string>) {
  try {
    return parseSnapshotClassParameters(params);
  } catch (err) {
    if (err instanceof SnapshotParameterError) throw new SnapshotError('final', 'InvalidParameter', err.message, { cause: err });
    throw err;
  }
}

/** The image an owned volume names (as listOwnedVolumes found it: by name, even when it is in the trash). */
export function ownedVolumeImage(volume: OwnedVolume): string {
  return (JSON.parse(volume.id) as OwnedVolumeId).image;
}

function ownedVolume(id: OwnedVolumeId, location: string, state: OwnedVolume['state'], meta: Record<string, string>): OwnedVolume {
  return {
    id: JSON.stringify(id),
    location,
    state,
    pvName: meta[OWNER_KEYS.pvName] ?? '',
    claimUid: meta[OWNER_KEYS.claimUid] ?? '',
    claimNamespace: meta[OWNER_KEYS.claimNamespace] ?? '',
    claimName: meta[OWNER_KEYS.claimName] ?? '',
  };
}

/**
 * Whether a PV carries our own delete record (its image or monitors: a partial one is refused by readDeleteTarget,
 * not guessed). The admin annotations alone are how an admin gives a retired provisioner's PV its credentials.
 */
function isOwnRecord(pv: V1PersistentVolume): boolean {
  const annotations = pv.metadata?.annotations ?? {};
  return annotations[ANNOTATIONS.image] !== undefined || annotations[ANNOTATIONS.monitors] !== undefined;
}

/** One pool of one cluster, as the usage cache keys it (pool names repeat across clusters). */
/**
 * Why a full cluster refuses: no free bytes at all, or the monitors' full flag on the pool (an OSD past the full
 * ratio; the disks may still report free bytes, but writes would pause until they time out).
 */
function fullReason(pool: Pool, usage: PoolUsage): string {
  return usage.poolFull ? `cluster is full (the monitors flag pool ${pool.name} full: an OSD passed the full ratio)` : 'cluster has no free space';
}

const FULL_HINT = '; free space, add OSDs, or raise "ceph osd set-full-ratio"; retrying';

function usageKey(pool: Pool, monitors: string): string {
  return `${monitors}\n${pool.name}`;
}

/** Metadata of an image that may have gone meanwhile (undefined then). */
async function readMetadata(read: Promise<Record<string, string>>): Promise<Record<string, string> | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof ImageNotFound) return undefined;
    throw err;
  }
}

/** Removes the metadata keys of ours a clone inherited from its parent; returns what is left. */
async function forgetInheritedMetadata(image: Image, meta: Record<string, string>): Promise<Record<string, string>> {
  const left = { ...meta };
  for (const key of Object.keys(meta).filter((k) => k.startsWith(METADATA_PREFIX))) {
    await image.removeMetadata(key);
    delete left[key];
  }
  return left;
}

/** See PV_MAY_EXIST_KEY. */
async function recordPvMayExist(image: Image): Promise<void> {
  await image.setMetadata(PV_MAY_EXIST_KEY, 'true');
}

async function purgeFromTrash(pool: Pool, id: string): Promise<void> {
  try {
    await pool.removeFromTrash(id, true);
  } catch (err) {
    if (!(err instanceof ImageNotFound)) throw err;
  }
}

/**
 * Writes the owner keys with the claim uid last: an image that names a claim uid carries every other key too, and
 * one interrupted earlier is recognised as untagged and completed by adopt().
 */
async function tag(image: Image, owner: Record<string, string>): Promise<void> {
  const { [OWNER_KEYS.claimUid]: claimUid, ...rest } = owner;
  await Promise.all(Object.entries(rest).map(([key, value]) => image.setMetadata(key, value)));
  if (claimUid !== undefined) await image.setMetadata(OWNER_KEYS.claimUid, claimUid);
}

function abortIfLost(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted: leadership lost or shutting down');
}

function inputOrFinal<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ParameterError) throw new ProvisionError('final', 'InvalidParameter', err.message, { cause: err });
    if (err instanceof ClaimError) throw new ProvisionError('final', 'InvalidClaim', err.message, { cause: err });
    if (err instanceof ValidationError || err instanceof TypeError) throw new ProvisionError('final', 'InvalidParameter', err.message, { cause: err });
    throw err;
  }
}

function failure(op: Operation, kind: 'final' | 'transient', reason: string, message: string, cause: unknown): Error {
  return op === 'provision'
    ? new ProvisionError(kind, reason, message, { cause })
    : new DeleteError(kind, reason, message, { cause });
}

/** How the controller should treat a Ceph failure. Messages come from our typed errors: they never carry a key. */
function classify(op: Operation, err: unknown): Error {
  if (!(err instanceof Error)) return failure(op, 'transient', 'CephError', String(err), err);
  if (err instanceof PoolNotFound) return failure(op, 'final', 'PoolNotFound', err.message, err);
  if (err instanceof NamespaceNotFound) return failure(op, 'final', 'NamespaceNotFound', err.message, err);
  if (err instanceof PermissionDenied) return failure(op, 'final', 'PermissionDenied', err.message, err);
  if (err instanceof ValidationError || err instanceof InvalidArgument) return failure(op, 'final', 'InvalidParameter', err.message, err);
  if (err instanceof NoSpace) return failure(op, 'transient', 'NoSpace', err.message, err);
  if (err instanceof Timeout) {
    // A create that timed out may still happen in Ceph: retry under the same name, never clean up.
    return op === 'provision'
      ? new ProvisionError('in-progress', 'Timeout', err.message, { cause: err })
      : new DeleteError('transient', 'Timeout', err.message, { cause: err });
  }
  if (op === 'delete' && err instanceof ImageBusy) return new DeleteError('in-use', 'ImageInUse', err.message, { cause: err });
  if (op === 'delete' && err instanceof ImageHasSnapshots) return new DeleteError('has-snapshots', 'ImageHasSnapshots', err.message, { cause: err });
  return failure(op, 'transient', err instanceof CephError ? err.code : 'Error', err.message, err);
}

// The RBD provisioner: creates and removes images for the generic controller. Everything Kubernetes-generic (which
// claims, PV names, claimRef, finalizers, events, retries) is the controller's; this file only talks to Ceph.
import type { V1PersistentVolume, V1StorageClass } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import {
  CephError, ImageBusy, ImageExists, ImageHasSnapshots, ImageNotFound, NoSpace, PermissionDenied, PoolNotFound,
  Timeout, ValidationError, type Cluster, type ClusterTarget, type ConnectionPool, type Image, type Pool,
} from '../ceph/index.js';
import { DeleteError, ProvisionError } from '../controller/errors.js';
import type { OwnedVolume, ProvisionRequest, Provisioner } from '../controller/provisioner.js';
import { ParameterError, parseClassParameters, type ClassParameters, type SecretRef } from './parameters.js';
import { buildVolume, checkClaim, ClaimError, deleteTargetOf, imageNameFor, readDeleteTarget, VolumeRecordError, type DeleteTarget } from './volume.js';

/** Image metadata that ties an image to its claim. Read before adopting or removing an image. */
export const OWNER_KEYS = {
  provisioner: 'rbd.provisioner.ceph.io/provisioner',
  claimNamespace: 'rbd.provisioner.ceph.io/claim-namespace',
  claimName: 'rbd.provisioner.ceph.io/claim-name',
  claimUid: 'rbd.provisioner.ceph.io/claim-uid',
  pvName: 'rbd.provisioner.ceph.io/pv-name',
} as const;

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

export interface RbdProvisionerOptions {
  /** The provisioner name, recorded on every image we create. */
  name: string;
  connections: ConnectionPool;
  readSecret: SecretReader;
  logger: Logger;
  /** Test-only fault injection: called right after an image is created and tagged, before the PV exists. */
  afterImageCreated?: (image: string) => void;
}

// `pvc-<uuid>` after the class's prefix: how our image names end, and where the claim uid comes from.
const PV_NAME = /(pvc-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))$/;

// A purge of a huge image without object-map takes minutes; bounded so a hung OSD cannot hold it forever.
const PURGE_TIMEOUT_MS = 30 * 60_000;

export class RbdProvisioner implements Provisioner {
  // Few at once: each purge holds one of the addon's Ceph threads for as long as it runs.
  private readonly purges = new PQueue({ concurrency: 2 });

  constructor(private readonly options: RbdProvisionerOptions) {}

  async provision(req: ProvisionRequest, signal: AbortSignal): Promise<V1PersistentVolume> {
    const params = inputOrFinal(() => parseClassParameters(req.storageClass.parameters));
    const claim = inputOrFinal(() => checkClaim(req.claim));
    const imageName = inputOrFinal(() => imageNameFor(req.pvName, params.imageNamePrefix));
    const owner = {
      [OWNER_KEYS.provisioner]: this.options.name,
      [OWNER_KEYS.claimNamespace]: req.claim.metadata?.namespace ?? '',
      [OWNER_KEYS.claimName]: req.claim.metadata?.name ?? '',
      [OWNER_KEYS.claimUid]: req.claim.metadata?.uid ?? '',
      [OWNER_KEYS.pvName]: req.pvName,
    };
    const target = deleteTargetOf(params, imageName);
    const size = await this.withPool(target, signal, 'provision', async (pool) => {
      await this.ensureRoom(pool, claim.requestedBytes);
      abortIfLost(signal);
      try {
        await pool.createImage(imageName, claim.requestedBytes, {
          features: params.imageFeatures,
          objectSize: params.objectSize,
          ...(params.striping && { stripeUnit: params.striping.unit, stripeCount: params.striping.count }),
          ...(params.dataPool !== undefined && { dataPool: params.dataPool }),
        });
        return await pool.withImage(imageName, async (image) => {
          await tag(image, owner);
          this.options.afterImageCreated?.(imageName);
          return (await image.stat()).size;
        });
      } catch (err) {
        if (!(err instanceof ImageExists)) throw err;
        return await this.adopt(pool, imageName, owner, claim.requestedBytes);
      }
    });
    return buildVolume({ params, claim: req.claim, imageName, imageSizeBytes: size, mountOptions: req.storageClass.mountOptions });
  }

  /**
   * A retry after a crash or a timed-out create finds the image already there. It is ours when its metadata names
   * this claim's uid, or when it has no owner metadata yet (the create finished but tagging did not): the name holds
   * the claim's uid, so no other claim can have made it.
   */
  private async adopt(pool: Pool, imageName: string, owner: Record<string, string>, requested: number): Promise<number> {
    return pool.withImage(imageName, async (image) => {
      const uid = await image.getMetadata(OWNER_KEYS.claimUid);
      if (uid !== undefined && uid !== owner[OWNER_KEYS.claimUid]) {
        throw new ProvisionError('final', 'ImageNotOurs', `image ${pool.spec}/${imageName} exists and belongs to claim uid ${uid}; not touching it`);
      }
      const { size } = await image.stat();
      if (size < requested) {
        throw new ProvisionError('final', 'ImageTooSmall', `image ${pool.spec}/${imageName} exists with ${size} bytes, less than the ${requested} requested; not touching it`);
      }
      if (uid === undefined) await tag(image, owner);
      this.options.logger.info('image exists and is ours; adopting', { image: `${pool.spec}/${imageName}`, size });
      return size;
    });
  }

  /** Thin images do not reserve space, but a pool at its quota or a full cluster would pause the create's writes. */
  private async ensureRoom(pool: Pool, requested: number): Promise<void> {
    const usage = await pool.usage();
    if (usage.quotaMaxBytes > 0 && usage.usedBytes >= usage.quotaMaxBytes) {
      throw new ProvisionError('transient', 'PoolQuotaReached', `pool ${pool.spec} has reached its quota of ${usage.quotaMaxBytes} bytes; raise it with "ceph osd pool set-quota"`);
    }
    if (usage.quotaMaxObjects > 0 && usage.objects >= usage.quotaMaxObjects) {
      throw new ProvisionError('transient', 'PoolQuotaReached', `pool ${pool.spec} has reached its quota of ${usage.quotaMaxObjects} objects`);
    }
    if (usage.clusterAvailableBytes === 0) {
      throw new ProvisionError('transient', 'ClusterFull', `cluster has no free space for a ${requested}-byte image in pool ${pool.spec}`);
    }
  }

  async delete(pv: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    let target: DeleteTarget;
    try {
      target = readDeleteTarget(pv);
    } catch (err) {
      if (err instanceof VolumeRecordError) throw new DeleteError('final', 'InvalidVolumeRecord', err.message, { cause: err });
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
    try {
      id = await pool.withImage(imageName, async (image) => {
        const owner = await image.getMetadata(OWNER_KEYS.claimUid);
        if (claimUid !== undefined && owner !== undefined && owner !== claimUid) {
          throw new DeleteError('final', 'ImageNotOurs', `image ${pool.spec}/${imageName} belongs to claim uid ${owner}, not ${claimUid}; not removing it`);
        }
        const watchers = await image.watchers();
        if (watchers.length > 0) {
          throw new DeleteError('in-use', 'ImageInUse', `image ${pool.spec}/${imageName} is in use by ${watchers.length} client(s) (${watchers.map((w) => w.address).join(', ')}); will retry once it is unmapped`);
        }
        const snapshots = await image.listSnapshots();
        if (snapshots.length > 0) {
          throw new DeleteError('has-snapshots', 'ImageHasSnapshots', `image ${pool.spec}/${imageName} has ${snapshots.length} snapshot(s) (${snapshots.map((s) => s.name).join(', ')}); they are never purged silently: remove them first`);
        }
        return image.id();
      }, { readOnly: true });
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
    try {
      await pool.moveToTrash(imageName);
    } catch (err) {
      if (!(err instanceof ImageNotFound)) throw err;
    }
    this.options.logger.info('image moved to the trash; purging it in the background', { image: `${pool.spec}/${imageName}`, id });
    this.purgeInBackground(target, id, imageName);
  }

  /**
   * Purging walks every possible data object of an image without object-map (a 1 TiB image took 38 s here), so it
   * runs outside the delete: the image is already out of the way once it is in the trash. A purge that fails, or that
   * a crash interrupts, is found again by listOwnedVolumes and finished by the orphan collector.
   */
  private purgeInBackground(target: DeleteTarget, id: string, imageName: string): void {
    void this.purges.add(async () => {
      const signal = AbortSignal.timeout(PURGE_TIMEOUT_MS);
      try {
        await this.withPool(target, signal, 'delete', (pool) => purgeFromTrash(pool, id));
        this.options.logger.info('image purged from the trash', { image: `${target.pool}/${imageName}`, id });
      } catch (err) {
        this.options.logger.warn('purge from the trash failed; orphan collection will retry it', { image: `${target.pool}/${imageName}`, id, error: (err as Error).message });
      }
    });
  }

  /** Resolves when no background purge is queued or running (tests, graceful shutdown). */
  async drain(): Promise<void> {
    await this.purges.onIdle();
  }

  async listOwnedVolumes(classes: V1StorageClass[], signal: AbortSignal): Promise<OwnedVolume[]> {
    const owned: OwnedVolume[] = [];
    for (const { params, target } of distinctPools(classes)) {
      abortIfLost(signal);
      const found = await this.withPool(target, signal, 'list', async (pool) => {
        const volumes: OwnedVolume[] = [];
        const names = (await pool.listImages()).filter((name) => name.startsWith(params.imageNamePrefix) && PV_NAME.test(name));
        for (const name of names) {
          const meta = await pool.withImage(name, (image) => image.listMetadata(), { readOnly: true }).catch((err: unknown) => {
            if (err instanceof ImageNotFound) return undefined;
            throw err;
          });
          if (meta?.[OWNER_KEYS.provisioner] !== this.options.name) continue;
          volumes.push({
            id: JSON.stringify({ ...target, image: name }),
            pvName: meta[OWNER_KEYS.pvName] ?? '',
            claimUid: meta[OWNER_KEYS.claimUid] ?? '',
            claimNamespace: meta[OWNER_KEYS.claimNamespace] ?? '',
            claimName: meta[OWNER_KEYS.claimName] ?? '',
          });
        }
        // Images moved to the trash by a delete that did not get to purge them (a crash in between).
        for (const entry of await pool.listTrash()) {
          const match = entry.name.startsWith(params.imageNamePrefix) ? PV_NAME.exec(entry.name) : null;
          if (!match) continue;
          volumes.push({ id: JSON.stringify({ ...target, image: entry.name }), pvName: match[1]!, claimUid: match[2]!, claimNamespace: '', claimName: '' });
        }
        return volumes;
      });
      owned.push(...found);
    }
    return owned;
  }

  async deleteOwnedVolume(volume: OwnedVolume, signal: AbortSignal): Promise<void> {
    const target = JSON.parse(volume.id) as DeleteTarget;
    await this.withPool(target, signal, 'delete', async (pool) => {
      // A trash leftover of an interrupted delete: purge it here, the orphan collector has time.
      const leftover = (await pool.listTrash()).find((entry) => entry.name === target.image);
      if (leftover && !(await pool.listImages()).includes(target.image)) return purgeFromTrash(pool, leftover.id);
      return this.removeImage(pool, target, signal, volume.claimUid || undefined);
    });
  }

  /** Connects (through the shared pool) as the class's admin user and opens the pool; maps Ceph errors for the controller. */
  private async withPool<T>(target: DeleteTarget, signal: AbortSignal, op: 'provision' | 'delete' | 'list', fn: (pool: Pool) => Promise<T>): Promise<T> {
    abortIfLost(signal);
    let key: string;
    try {
      key = await this.options.readSecret(target.adminSecret, signal);
    } catch (err) {
      if (err instanceof SecretError) throw failure(op, 'final', 'SecretUnavailable', err.message, err);
      throw err;
    }
    const clusterTarget: ClusterTarget = { monitors: target.monitors, user: target.adminId, key };
    try {
      return await this.options.connections.use(clusterTarget, async (cluster: Cluster) => {
        abortIfLost(signal);
        const pool = await cluster.openPool(target.pool, target.radosNamespace);
        try {
          return await fn(pool);
        } finally {
          await pool.close();
        }
      });
    } catch (err) {
      if (err instanceof ProvisionError || err instanceof DeleteError) throw err;
      if (err instanceof CephError && ['ESHUTDOWN', 'ENOTCONN'].includes(err.code)) this.options.connections.evict(clusterTarget);
      throw classify(op, err);
    }
  }
}

async function purgeFromTrash(pool: Pool, id: string): Promise<void> {
  try {
    await pool.removeFromTrash(id, true);
  } catch (err) {
    if (!(err instanceof ImageNotFound)) throw err;
  }
}

function tag(image: Image, owner: Record<string, string>): Promise<void[]> {
  return Promise.all(Object.entries(owner).map(([key, value]) => image.setMetadata(key, value)));
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

function failure(op: 'provision' | 'delete' | 'list', kind: 'final' | 'transient', reason: string, message: string, cause: unknown): Error {
  return op === 'provision'
    ? new ProvisionError(kind, reason, message, { cause })
    : new DeleteError(kind, reason, message, { cause });
}

/** How the controller should treat a Ceph failure. Messages come from our typed errors: they never carry a key. */
function classify(op: 'provision' | 'delete' | 'list', err: unknown): Error {
  if (!(err instanceof Error)) return failure(op, 'transient', 'CephError', String(err), err);
  if (err instanceof PoolNotFound) return failure(op, 'final', 'PoolNotFound', err.message, err);
  if (err instanceof PermissionDenied) return failure(op, 'final', 'PermissionDenied', err.message, err);
  if (err instanceof ValidationError) return failure(op, 'final', 'InvalidParameter', err.message, err);
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

/** One entry per distinct cluster+pool+namespace among our classes, for listing owned images. */
function distinctPools(classes: V1StorageClass[]): { params: ClassParameters; target: DeleteTarget }[] {
  const seen = new Map<string, { params: ClassParameters; target: DeleteTarget }>();
  for (const storageClass of classes) {
    let params: ClassParameters;
    try {
      params = parseClassParameters(storageClass.parameters);
    } catch {
      continue;
    }
    const target = deleteTargetOf(params, '');
    const id = JSON.stringify([target.monitors, target.pool, target.radosNamespace, params.imageNamePrefix]);
    if (!seen.has(id)) seen.set(id, { params, target });
  }
  return [...seen.values()];
}

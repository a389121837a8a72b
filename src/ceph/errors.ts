import { MAX_ORDER, MIN_ORDER } from './options.js';
import type { NativeError } from './rbd-native.js';

/**
 * A failed Ceph call. `code` is the errno name ('ENOENT'), `op` the librados/librbd function, `object` what it
 * concerned (pool, pool/image, client.<id>). Messages name operation and object, never a key.
 */
export class CephError extends Error {
  readonly code: string;
  readonly errno: number | undefined;
  readonly op: string;
  readonly object: string;

  constructor(message: string, from: Pick<NativeError, 'code' | 'errno' | 'op' | 'object'>, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = from.code;
    this.errno = from.errno;
    this.op = from.op;
    this.object = from.object;
  }
}

export class PoolNotFound extends CephError {}
export class ImageNotFound extends CephError {}
export class ImageExists extends CephError {}
/** The image is open elsewhere (it has watchers) or locked. */
export class ImageBusy extends CephError {}
/** Remove refused because the image still has snapshots (librbd's ENOTEMPTY). */
export class ImageHasSnapshots extends CephError {}
export class Timeout extends CephError {}
export class PermissionDenied extends CephError {}
export class InvalidArgument extends CephError {}
/** The RADOS namespace an image was to be created in does not exist (`rbd namespace create` makes one). */
export class NamespaceNotFound extends CephError {}
/** Pool quota reached or cluster full. */
export class NoSpace extends CephError {}
/** The handle was closed before the call. */
export class HandleClosed extends CephError {}
/**
 * This client was blocklisted (fenced) by another, e.g. a new leader: librados answers EBLOCKLISTED, which is
 * ESHUTDOWN, to every later call. The connection is dead for good; only a new one (a new address) works.
 */
export class Blocklisted extends CephError {}

const POOL_OPS = new Set(['rados_ioctx_create', 'rados_pool_lookup', 'rados_pool_delete']);

/** The single place where a native rejection becomes a typed error with a message a person can act on. */
export function toCephError(err: unknown): Error {
  if (!isNativeError(err)) return err instanceof Error ? err : new Error(String(err));
  const where = err.object ? ` (${err.object})` : '';
  const say = (Type: typeof CephError, text: string) => new Type(`${err.op}${where}: ${text}`, err, { cause: err });
  switch (err.code) {
    case 'ENOENT':
      if (POOL_OPS.has(err.op)) return say(PoolNotFound, 'pool does not exist');
      // librados finds no monitor address or no key/keyring to use.
      if (err.op === 'rados_connect') return say(InvalidArgument, 'no monitor address or cephx key/keyring in the configuration');
      // The image's pool was open, so its data pool or its RADOS namespace is missing (or the pool went meanwhile);
      // Pool.createImage finds out which (explainCreateNotFound).
      if (err.op === 'rbd_create4') return say(PoolNotFound, 'pool, data pool or RADOS namespace does not exist');
      if (err.op === 'rbd_clone3') return say(ImageNotFound, 'parent image or snapshot does not exist');
      return say(ImageNotFound, 'no such image or snapshot');
    case 'EEXIST':
      return say(ImageExists, 'already exists');
    case 'EBUSY':
      return say(ImageBusy, 'image is in use (it has watchers or is locked); close it on every client first');
    case 'ENOTEMPTY':
      return say(ImageHasSnapshots, 'image has snapshots; remove them (and unprotect/flatten clones) first');
    case 'ETIMEDOUT':
      return say(Timeout, 'timed out waiting for the cluster (monitors or OSDs did not answer within the configured timeout)');
    case 'EACCES':
    case 'EPERM':
      return say(PermissionDenied, 'permission denied: the cephx user or key was refused, or lacks caps for this pool');
    case 'EDOM':
      return say(InvalidArgument, err.op === 'rbd_create4' || err.op === 'rbd_clone3'
        ? `object size out of range; allowed object sizes are 4 KiB to 32 MiB (order ${MIN_ORDER} to ${MAX_ORDER})`
        : 'argument out of range');
    case 'EINVAL':
    case 'ERANGE':
      return say(InvalidArgument, `invalid argument (${err.code})`);
    case 'ENOSPC':
    case 'EDQUOT':
      return say(NoSpace, 'pool quota reached or cluster full');
    case 'EBADF':
      return say(HandleClosed, 'handle is closed');
    case 'ESHUTDOWN':
      return say(Blocklisted, 'this client is blocklisted by the cluster (fenced by another client); a new connection is needed');
    default:
      return new CephError(err.message, err, { cause: err });
  }
}

function isNativeError(err: unknown): err is NativeError {
  return err instanceof Error && typeof (err as Partial<NativeError>).op === 'string' && typeof (err as Partial<NativeError>).code === 'string';
}

/**
 * A connect that timed out found no monitor to talk to (a closed port and a wrong address look the same to
 * librados): the message names the monitors as the caller wrote them, under the field name they came in.
 */
export function monitorsTimedOut(err: Timeout, monitors: string, mountTimeoutSeconds: number): Timeout {
  const message = `${err.op} (${err.object}): timed out: no monitor of "monitors" (${monitors}) answered within ` +
    `${mountTimeoutSeconds} s (client_mount_timeout); check the addresses and that the monitors are up and reachable`;
  return new Timeout(message, err, { cause: err });
}

/** Where an image create was going: what tells a missing pool, data pool and RADOS namespace apart. */
export interface CreateTarget {
  pool: string;
  /** '' is the default namespace. */
  namespace: string;
  dataPool: string | undefined;
  poolExists(pool: string): Promise<boolean>;
}

/**
 * rbd_create4 answers ENOENT alike for a missing pool, data pool or RADOS namespace. Asks which pools exist; when
 * both do, what is left is the namespace (librbd has rbd_namespace_exists, but the addon does not bind it, and
 * these lookups run only once a create has failed). Other errors, and this one when a lookup fails too, are
 * returned as they are.
 */
export async function explainCreateNotFound(err: unknown, target: CreateTarget): Promise<unknown> {
  if (!(err instanceof CephError && err.code === 'ENOENT' && err.op === 'rbd_create4')) return err;
  const say = (Type: typeof CephError, text: string, object: string) =>
    new Type(`${err.op} (${err.object}): ${text}`, { ...err, object }, { cause: err });
  try {
    if (target.dataPool !== undefined && !(await target.poolExists(target.dataPool))) {
      return say(PoolNotFound, `data pool "${target.dataPool}" does not exist`, target.dataPool);
    }
    if (!(await target.poolExists(target.pool))) return say(PoolNotFound, `pool "${target.pool}" does not exist`, target.pool);
  } catch {
    return err;
  }
  if (target.namespace !== '') {
    return say(NamespaceNotFound, `RADOS namespace "${target.namespace}" does not exist in pool "${target.pool}" ` +
      `(create it with "rbd namespace create ${target.pool}/${target.namespace}")`, `${target.pool}/${target.namespace}`);
  }
  return err;
}

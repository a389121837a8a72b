import { invoke, type CallObserver } from './calls.js';
import { CephError, monitorsTimedOut, PoolNotFound, Timeout } from './errors.js';
import { checkMonitors } from './monitors.js';
import { native } from './native.js';
import { checkCephId, checkCephxKey, checkImageId, checkNamespace, checkPoolName } from './names.js';
import { ValidationError } from './validation.js';
import { Pool } from './pool.js';
import type { ClusterHandle, NativeConnectOptions } from './rbd-native.js';

/** librados waits forever by default; every connection we open is bounded by these (seconds). */
export interface CephTimeouts {
  /** client_mount_timeout: connecting and authenticating. */
  mount: number;
  /** rados_mon_op_timeout: monitor commands and map fetches. */
  monOp: number;
  /** rados_osd_op_timeout: object reads and writes. */
  osdOp: number;
}

export const DEFAULT_TIMEOUTS: CephTimeouts = { mount: 10, monOp: 30, osdOp: 30 };

export interface ConnectOptions {
  /** librados mon_host: "10.0.0.1:6789,10.0.0.2", "v2:127.0.0.1:3300", "[v2:...,v1:...]". */
  monitors: string;
  /** cephx id without "client.", e.g. "admin" (see CEPH_NAMES.cephId). */
  user: string;
  /** The cephx key. Kept only in memory and handed to librados with rados_conf_set("key"). */
  key: string;
  timeouts?: Partial<CephTimeouts>;
  /** Further librados options. */
  config?: Record<string, string>;
  observer?: CallObserver;
}

/** For admins and tests: a ceph.conf (with the keyring it names, or keyringPath). */
export interface ConfFileOptions {
  confPath: string;
  user?: string;
  keyringPath?: string;
  timeouts?: Partial<CephTimeouts>;
  observer?: CallObserver;
}

export interface ClusterUsage {
  totalBytes: number;
  usedBytes: number;
  availableBytes: number;
  objects: number;
}

export interface PoolQuota {
  /** 0 means no quota. */
  maxBytes: number;
  maxObjects: number;
}

function baseConfig(t: CephTimeouts): Record<string, string> {
  for (const [name, value] of Object.entries(t)) {
    if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
      throw new ValidationError(`timeouts.${name}`, 'a positive number of seconds', `got ${String(value)}`);
    }
  }
  return {
    client_mount_timeout: String(t.mount),
    rados_mon_op_timeout: String(t.monOp),
    rados_osd_op_timeout: String(t.osdOp),
    // A library inside a provisioner: no log files, no admin socket, nothing on stderr.
    log_file: '',
    log_to_stderr: 'false',
    err_to_stderr: 'false',
    admin_socket: '',
  };
}

/** A librados connection. Pools opened from it keep it alive; close() takes effect once they are closed. */
export class Cluster {
  private constructor(
    private readonly handle: ClusterHandle,
    readonly user: string,
    readonly observer: CallObserver | undefined,
  ) {}

  static async connect(options: ConnectOptions): Promise<Cluster> {
    const monitors = checkMonitors(options.monitors);
    const key = checkCephxKey(options.key);
    const user = checkCephId(options.user);
    const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    const config = { ...options.config, ...baseConfig(timeouts) };
    const nativeOptions: NativeConnectOptions = { user, monHost: monitors, key, config };
    try {
      const handle = await invoke(options.observer, 'rados_connect', () => native.radosConnect(nativeOptions));
      return new Cluster(handle, user, options.observer);
    } catch (err) {
      throw err instanceof Timeout ? monitorsTimedOut(err, monitors, timeouts.mount) : err;
    }
  }

  static async connectWithConfFile(options: ConfFileOptions): Promise<Cluster> {
    const user = checkCephId(options.user ?? 'admin');
    const nativeOptions: NativeConnectOptions = {
      user,
      confPath: options.confPath,
      config: baseConfig({ ...DEFAULT_TIMEOUTS, ...options.timeouts }),
      ...(options.keyringPath ? { keyringPath: options.keyringPath } : {}),
    };
    const handle = await invoke(options.observer, 'rados_connect', () => native.radosConnect(nativeOptions));
    return new Cluster(handle, user, options.observer);
  }

  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return invoke(this.observer, op, fn);
  }

  async fsid(): Promise<string> {
    return this.call('rados_cluster_fsid', () => native.radosClusterFsid(this.handle));
  }

  async usage(): Promise<ClusterUsage> {
    const s = await this.call('rados_cluster_stat', () => native.radosClusterStat(this.handle));
    return { totalBytes: s.kb * 1024, usedBytes: s.kbUsed * 1024, availableBytes: s.kbAvail * 1024, objects: s.numObjects };
  }

  async listPools(): Promise<string[]> {
    return this.call('rados_pool_list', () => native.radosPoolList(this.handle));
  }

  async poolExists(pool: string): Promise<boolean> {
    checkPoolName(pool);
    try {
      await this.call('rados_pool_lookup', () => native.radosPoolLookup(this.handle, pool));
      return true;
    } catch (err) {
      if (err instanceof PoolNotFound) return false;
      throw err;
    }
  }

  async createPool(pool: string): Promise<void> {
    checkPoolName(pool);
    return this.call('rados_pool_create', () => native.radosPoolCreate(this.handle, pool));
  }

  async deletePool(pool: string): Promise<void> {
    checkPoolName(pool);
    return this.call('rados_pool_delete', () => native.radosPoolDelete(this.handle, pool));
  }

  /** A monitor command, as the `ceph` CLI sends it: { prefix: 'osd pool get-quota', pool: 'rbd' }. JSON out. */
  async monCommand(command: Record<string, unknown>): Promise<unknown> {
    const output = await this.call('rados_mon_command', () =>
      native.radosMonCommand(this.handle, JSON.stringify({ format: 'json', ...command })));
    return output === '' ? undefined : JSON.parse(output);
  }

  /** A command for the active manager's modules, as the `ceph` CLI sends it: { prefix: 'rbd task list' }. JSON out. */
  async mgrCommand(command: Record<string, unknown>): Promise<unknown> {
    const output = await this.call('rados_mgr_command', () =>
      native.radosMgrCommand(this.handle, JSON.stringify({ format: 'json', ...command })));
    return output === '' ? undefined : JSON.parse(output);
  }

  /**
   * Asks the manager's rbd_support module to remove a trash entry of a pool ("pool" or "pool/namespace"), as
   * `ceph rbd task add trash remove` does: the removal, one delete per object of the image, then runs in the manager,
   * not in this process. Needs `mgr 'profile rbd'`. Resolves once the task is queued.
   */
  async queueTrashRemoval(poolSpec: string, id: string): Promise<void> {
    const [pool, namespace] = poolSpec.split('/');
    checkPoolName(pool);
    checkNamespace(namespace);
    checkImageId(id);
    await this.mgrCommand({ prefix: 'rbd task add trash remove', image_id_spec: `${poolSpec}/${id}` });
  }

  async poolQuota(pool: string): Promise<PoolQuota> {
    checkPoolName(pool);
    // Right after a pool is created the monitor can answer ENOENT for a moment (seen within ~300 ms of
    // `osd pool create` returning), so a missing pool is asked about again a few times before it counts.
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = (await this.monCommand({ prefix: 'osd pool get-quota', pool })) as Record<string, unknown> | undefined;
        return { maxBytes: Number(reply?.['quota_max_bytes'] ?? 0), maxObjects: Number(reply?.['quota_max_objects'] ?? 0) };
      } catch (err) {
        if (!(err instanceof CephError && err.code === 'ENOENT') || attempt >= 5) {
          throw err instanceof CephError && err.code === 'ENOENT'
            ? new PoolNotFound(`osd pool get-quota (${pool}): pool does not exist`, { ...err, object: pool }, { cause: err })
            : err;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /**
   * The pool's flags in the OSD map ('hashpspool', 'full', 'full_quota', 'nearfull', ...). The monitors flag a pool
   * `full` when an OSD it maps to passed the cluster's full ratio: writes to it then pause in librados (until the op
   * timeout), while rados_cluster_stat still reports the bytes the disks have free. [] for a pool not in the map.
   */
  async poolFlags(pool: string): Promise<string[]> {
    checkPoolName(pool);
    const reply = (await this.monCommand({ prefix: 'osd pool ls', detail: 'detail' })) as { pool_name?: unknown; flags_names?: unknown }[] | undefined;
    const found = (reply ?? []).find((p) => p.pool_name === pool);
    return typeof found?.flags_names === 'string' && found.flags_names !== '' ? found.flags_names.split(',') : [];
  }

  /**
   * The address other clients blocklist to fence this connection (rados_getaddrs): one entry of librados' addrvec.
   * Pacific (16.2) prints a connected client's vector as a single untyped entry, "127.0.0.1:0/3295052206" (IP, port
   * 0, "/" and the connection's random nonce), which rados_blocklist_add takes as it is; a vector of several
   * ("[v2:...,v1:...]") shares IP and nonce, which is what the OSDs match, so its first entry fences the client.
   */
  async clientAddress(): Promise<string> {
    const addrs = await this.call('rados_getaddrs', () => native.radosGetAddrs(this.handle));
    return clientAddressOf(addrs);
  }

  /**
   * Blocklists another client on the OSDs for expireSeconds (0: the cluster's default, one hour). Resolves once this
   * client has the OSD map with the entry: from then on the OSDs refuse that client (EBLOCKLISTED).
   */
  async blocklist(address: string, expireSeconds: number): Promise<void> {
    checkClientAddress(address);
    if (!(Number.isInteger(expireSeconds) && expireSeconds >= 0 && expireSeconds <= 0xffff_ffff)) {
      throw new ValidationError('expireSeconds', 'a whole number of seconds from 0 to 2^32-1', `got ${String(expireSeconds)}`);
    }
    return this.call('rados_blocklist_add', () => native.radosBlocklistAdd(this.handle, address, expireSeconds));
  }

  /** Opens an I/O context on a pool (and RADOS namespace). PoolNotFound when the pool does not exist. */
  async openPool(pool: string, namespace = ''): Promise<Pool> {
    checkPoolName(pool);
    checkNamespace(namespace);
    const handle = await this.call('rados_ioctx_create', () => native.radosIoctxCreate(this.handle, pool, namespace));
    return new Pool(handle, this, pool, namespace);
  }

  /** Safe to call twice. Calls made after it reject with HandleClosed. */
  async close(): Promise<void> {
    return this.call('rados_shutdown', () => native.radosShutdown(this.handle));
  }
}

/** A client entity address: optional "v1:"/"v2:"/"any:" type, IPv4 or [IPv6], port, "/" nonce. */
const CLIENT_ADDRESS = /^(?:(?:v1|v2|any):)?(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):\d{1,5}\/\d+$/;

/**
 * The one address to blocklist, from what rados_getaddrs prints: "[v2:ip:port/nonce,v1:ip:port/nonce]" or a single
 * "v2:ip:port/nonce". The first entry: all of a client's entries share IP and nonce, which is what the OSDs match.
 */
export function clientAddressOf(addrvec: string): string {
  const inner = addrvec.trim().replace(/^\[(.*)\]$/, '$1');
  const first = inner.split(',')[0]?.trim() ?? '';
  checkClientAddress(first, addrvec);
  return first;
}

function checkClientAddress(address: string, from = address): void {
  if (typeof address !== 'string' || !CLIENT_ADDRESS.test(address)) {
    throw new ValidationError('address', 'a client address such as "v2:10.0.0.1:0/3127437212"', `got ${JSON.stringify(from)}`);
  }
}

// Hand-written declaration of the native module (addon/, built to build/Release/rbd_native.node).
// One declaration per exported function; each wraps the librados/librbd call it is named after, whose C signature
// the `// Implements:` comment above it gives (the same comment stands above the wrapper in addon/, and
// test/unit/addon/declarations.test.ts holds the two to each other). Every function returns a promise that rejects
// with a NativeError.

declare const clusterBrand: unique symbol;
declare const ioctxBrand: unique symbol;
declare const imageBrand: unique symbol;

/** An open librados connection (rados_t). Opaque. */
export type ClusterHandle = { readonly [clusterBrand]: true };
/** An I/O context on a pool and RADOS namespace (rados_ioctx_t). Opaque. */
export type IoCtxHandle = { readonly [ioctxBrand]: true };
/** An open image (rbd_image_t). Opaque. */
export type ImageHandle = { readonly [imageBrand]: true };

/** The shape every native rejection has: the one errno-to-error choke point of the addon. */
export interface NativeError extends Error {
  /**
   * 'ENOENT', 'EEXIST', ...; 'EBADF' for a closed handle; 'ERR_INVALID_ARG_TYPE' for a bad argument;
   * 'ERR_NATIVE_EXCEPTION' for a C++ exception caught in the addon. Also from the addon itself: 'ERANGE' for a
   * result larger than its 256 Ki limit (bytes, or list entries), 'ENOMEM' when it ran out of memory, 'EAGAIN'
   * (usually) when it could not start a thread for the call.
   */
  code: string;
  /** Positive errno, when the error came from librados/librbd or stands for one (the addon's own ERANGE, ...). */
  errno?: number;
  /** The C function, e.g. 'rbd_create4'; the exported name ('rbdCreate4') for a C++ exception before queueing. */
  op: string;
  /** What it concerned: 'client.admin', 'pool', 'pool/namespace', 'pool/image', 'pool/trash:<id>'. */
  object: string;
}

export interface NativeConnectOptions {
  /** Without the "client." prefix. */
  user: string;
  monHost?: string;
  /** Passed to librados with rados_conf_set("key", ...) and scrubbed from the addon's memory after. */
  key?: string;
  confPath?: string;
  keyringPath?: string;
  /** Further rados_conf_set pairs, applied before mon_host/keyring/key. */
  config?: Record<string, string>;
}

export interface NativeImageOptions {
  format?: number;
  features?: number;
  order?: number;
  stripeUnit?: number;
  stripeCount?: number;
  dataPool?: string;
  /** rbd_clone3 only: 1 (the parent snapshot must be protected) or 2 (no protection; librbd's default decides when absent). */
  cloneFormat?: number;
}

export interface NativeClusterStat { kb: number; kbUsed: number; kbAvail: number; numObjects: number }
export interface NativePoolStat { numBytes: number; numObjects: number }
export interface NativeImageStat { size: number; objSize: number; numObjs: number; order: number; blockNamePrefix: string }
export interface NativeImageSpec { id: string; name: string }
/** source: rbd_trash_image_source_t (0 user, 1 mirroring, 2 migration, 3 removing, 4 user parent). */
export interface NativeTrashEntry { id: string; name: string; source: number; deletionTime: number; defermentEndTime: number }
export interface NativeWatcher { address: string; id: number; cookie: string }
export interface NativeSnapshot { id: number; size: number; name: string }
/** rbd_linked_image_spec_t and rbd_snap_spec_t of a clone's parent. */
export interface NativeParent { pool: string; namespace: string; imageName: string; imageId: string; trash: boolean; snapId: number; snapName: string }
export interface NativePoolStats { maxInflight: number; inflight: number; queued: number; peakInflight: number; completed: number }

export interface RbdNative {
  // Implements: int rados_create2(rados_t *pcluster, const char *const clustername, const char * const name,
  //             uint64_t flags), int rados_conf_read_file(rados_t cluster, const char *path),
  //             int rados_conf_set(rados_t cluster, const char *option, const char *value),
  //             int rados_connect(rados_t cluster)
  radosConnect(options: NativeConnectOptions): Promise<ClusterHandle>;
  // Implements: void rados_shutdown(rados_t cluster)
  /** Deferred until no ioctx or image of the connection is open. */
  radosShutdown(cluster: ClusterHandle): Promise<void>;
  // Implements: int rados_cluster_fsid(rados_t cluster, char *buf, size_t len)
  radosClusterFsid(cluster: ClusterHandle): Promise<string>;
  // Implements: int rados_cluster_stat(rados_t cluster, struct rados_cluster_stat_t *result)
  radosClusterStat(cluster: ClusterHandle): Promise<NativeClusterStat>;
  // Implements: int rados_pool_list(rados_t cluster, char *buf, size_t len)
  radosPoolList(cluster: ClusterHandle): Promise<string[]>;
  // Implements: int64_t rados_pool_lookup(rados_t cluster, const char *pool_name)
  radosPoolLookup(cluster: ClusterHandle, pool: string): Promise<number>;
  // Implements: int rados_pool_create(rados_t cluster, const char *pool_name)
  radosPoolCreate(cluster: ClusterHandle, pool: string): Promise<void>;
  // Implements: int rados_pool_delete(rados_t cluster, const char *pool_name)
  radosPoolDelete(cluster: ClusterHandle, pool: string): Promise<void>;
  // Implements: int rados_mon_command(rados_t cluster, const char **cmd, size_t cmdlen, const char *inbuf,
  //             size_t inbuflen, char **outbuf, size_t *outbuflen, char **outs, size_t *outslen)
  /** The command's JSON output. */
  radosMonCommand(cluster: ClusterHandle, command: string): Promise<string>;
  // Implements: int rados_mgr_command(rados_t cluster, const char **cmd, size_t cmdlen, const char *inbuf,
  //             size_t inbuflen, char **outbuf, size_t *outbuflen, char **outs, size_t *outslen)
  /** The active manager's JSON output. */
  radosMgrCommand(cluster: ClusterHandle, command: string): Promise<string>;
  // Implements: int rados_getaddrs(rados_t cluster, char **addrs)
  /** This connection's own addresses, as librados prints an addrvec: "[v2:ip:0/nonce,v1:ip:0/nonce]" or one entry. */
  radosGetAddrs(cluster: ClusterHandle): Promise<string>;
  // Implements: int rados_blocklist_add(rados_t cluster, char *client_address, uint32_t expire_seconds)
  /** Blocklists one client address on the OSDs; expireSeconds 0 means the cluster's default (one hour). */
  radosBlocklistAdd(cluster: ClusterHandle, clientAddress: string, expireSeconds: number): Promise<void>;
  // Implements: int rados_ioctx_create(rados_t cluster, const char *pool_name, rados_ioctx_t *ioctx),
  //             void rados_ioctx_set_namespace(rados_ioctx_t io, const char *nspace)
  radosIoctxCreate(cluster: ClusterHandle, pool: string, namespace?: string): Promise<IoCtxHandle>;
  // Implements: void rados_ioctx_destroy(rados_ioctx_t io)
  /** Deferred until no image of the pool is open. */
  radosIoctxDestroy(ioctx: IoCtxHandle): Promise<void>;
  // Implements: int rados_ioctx_pool_stat(rados_ioctx_t io, struct rados_pool_stat_t *stats)
  radosIoctxPoolStat(ioctx: IoCtxHandle): Promise<NativePoolStat>;
  // Implements: int rados_exec(rados_ioctx_t io, const char *oid, const char *cls, const char *method,
  //             const char *in_buf, size_t in_len, char *buf, size_t out_len)
  /** An object class method's output; rejects with ERANGE when it is longer than maxOutput (at most 1 MiB). */
  radosExec(ioctx: IoCtxHandle, object: string, cls: string, method: string, input: Buffer, maxOutput: number): Promise<Buffer>;
  // Implements: rados_write_op_t rados_create_write_op(void), void rados_write_op_assert_exists(rados_write_op_t op),
  //             void rados_write_op_exec(rados_write_op_t op, const char *cls, const char *method, const char *in_buf,
  //             size_t in_len, int *prval), int rados_write_op_operate2(rados_write_op_t op, rados_ioctx_t io,
  //             const char *oid, time_t *mtime, int flags), void rados_release_write_op(rados_write_op_t op)
  /** An object class method that writes, on an object that must exist: ENOENT instead of creating it. */
  radosWriteOpExec(ioctx: IoCtxHandle, object: string, cls: string, method: string, input: Buffer): Promise<void>;

  // Pool-level librbd calls (addon/rbd_pool.cc).

  // Implements: int rbd_create4(rados_ioctx_t io, const char *name, uint64_t size, rbd_image_options_t opts)
  rbdCreate4(ioctx: IoCtxHandle, name: string, size: number, options?: NativeImageOptions): Promise<void>;
  // Implements: int rbd_clone3(rados_ioctx_t p_ioctx, const char *p_name, const char *p_snapname,
  //             rados_ioctx_t c_ioctx, const char *c_name, rbd_image_options_t c_opts)
  rbdClone3(parentIoctx: IoCtxHandle, parentName: string, parentSnapName: string, ioctx: IoCtxHandle, name: string,
    options?: NativeImageOptions): Promise<void>;
  // Implements: int rbd_remove(rados_ioctx_t io, const char *name)
  rbdRemove(ioctx: IoCtxHandle, name: string): Promise<void>;
  // Implements: int rbd_trash_move(rados_ioctx_t io, const char *name, uint64_t delay)
  rbdTrashMove(ioctx: IoCtxHandle, name: string, delaySeconds?: number): Promise<void>;
  // Implements: int rbd_trash_list(rados_ioctx_t io, rbd_trash_image_info_t *trash_entries, size_t *num_entries)
  rbdTrashList(ioctx: IoCtxHandle): Promise<NativeTrashEntry[]>;
  // Implements: int rbd_trash_remove(rados_ioctx_t io, const char *id, bool force)
  rbdTrashRemove(ioctx: IoCtxHandle, id: string, force?: boolean): Promise<void>;
  // Implements: int rbd_list2(rados_ioctx_t io, rbd_image_spec_t *images, size_t *max_images)
  rbdList2(ioctx: IoCtxHandle): Promise<NativeImageSpec[]>;
  // Implements: int rbd_pool_init(rados_ioctx_t io, bool force)
  rbdPoolInit(ioctx: IoCtxHandle, force?: boolean): Promise<void>;
  // Implements: int rbd_open(rados_ioctx_t io, const char *name, rbd_image_t *image, const char *snap_name),
  //             int rbd_open_read_only(rados_ioctx_t io, const char *name, rbd_image_t *image, const char *snap_name)
  /** A read-only open registers no watch and takes no lock. */
  rbdOpen(ioctx: IoCtxHandle, name: string, readOnly?: boolean): Promise<ImageHandle>;
  // Implements: int rbd_open_by_id(rados_ioctx_t io, const char *id, rbd_image_t *image, const char *snap_name),
  //             int rbd_open_by_id_read_only(rados_ioctx_t io, const char *id, rbd_image_t *image, const char *snap_name)
  /** Opens by image id: the only way to reach an image in the trash. */
  rbdOpenById(ioctx: IoCtxHandle, id: string, readOnly?: boolean): Promise<ImageHandle>;

  // Image-level librbd calls (addon/rbd_image.cc).

  // Implements: int rbd_close(rbd_image_t image)
  rbdClose(image: ImageHandle): Promise<void>;
  // Implements: int rbd_stat(rbd_image_t image, rbd_image_info_t *info, size_t infosize)
  rbdStat(image: ImageHandle): Promise<NativeImageStat>;
  // Implements: int rbd_get_features(rbd_image_t image, uint64_t *features)
  rbdGetFeatures(image: ImageHandle): Promise<number>;
  // Implements: int rbd_get_id(rbd_image_t image, char *id, size_t id_len)
  rbdGetId(image: ImageHandle): Promise<string>;
  // Implements: int rbd_resize(rbd_image_t image, uint64_t size)
  rbdResize(image: ImageHandle, size: number): Promise<void>;
  // Implements: int rbd_flatten(rbd_image_t image)
  rbdFlatten(image: ImageHandle): Promise<void>;
  // Implements: ssize_t rbd_write2(rbd_image_t image, uint64_t ofs, size_t len, const char *buf, int op_flags)
  /** Bytes written. The data is copied before the call is queued. */
  rbdWrite2(image: ImageHandle, offset: number, data: Buffer): Promise<number>;
  // Implements: ssize_t rbd_read2(rbd_image_t image, uint64_t ofs, size_t len, char *buf, int op_flags)
  /** At most 64 MiB per call; shorter at the end of the image. */
  rbdRead2(image: ImageHandle, offset: number, length: number): Promise<Buffer>;
  // Implements: int rbd_metadata_get(rbd_image_t image, const char *key, char *value, size_t *val_len)
  rbdMetadataGet(image: ImageHandle, key: string): Promise<string>;
  // Implements: int rbd_metadata_set(rbd_image_t image, const char *key, const char *value)
  rbdMetadataSet(image: ImageHandle, key: string, value: string): Promise<void>;
  // Implements: int rbd_metadata_remove(rbd_image_t image, const char *key)
  rbdMetadataRemove(image: ImageHandle, key: string): Promise<void>;
  // Implements: int rbd_metadata_list(rbd_image_t image, const char *start, uint64_t max, char *keys,
  //             size_t *key_len, char *values, size_t *vals_len)
  rbdMetadataList(image: ImageHandle): Promise<Record<string, string>>;
  // Implements: int rbd_watchers_list(rbd_image_t image, rbd_image_watcher_t *watchers, size_t *max_watchers)
  rbdWatchersList(image: ImageHandle): Promise<NativeWatcher[]>;
  // Implements: int rbd_snap_list(rbd_image_t image, rbd_snap_info_t *snaps, int *max_snaps)
  rbdSnapList(image: ImageHandle): Promise<NativeSnapshot[]>;
  // Implements: int rbd_snap_create(rbd_image_t image, const char *snapname)
  rbdSnapCreate(image: ImageHandle, snapName: string): Promise<void>;
  // Implements: int rbd_snap_remove(rbd_image_t image, const char *snapname)
  rbdSnapRemove(image: ImageHandle, snapName: string): Promise<void>;
  // Implements: int rbd_snap_protect(rbd_image_t image, const char *snap_name)
  rbdSnapProtect(image: ImageHandle, snapName: string): Promise<void>;
  // Implements: int rbd_snap_unprotect(rbd_image_t image, const char *snap_name)
  rbdSnapUnprotect(image: ImageHandle, snapName: string): Promise<void>;
  // Implements: int rbd_snap_is_protected(rbd_image_t image, const char *snap_name, int *is_protected)
  rbdSnapIsProtected(image: ImageHandle, snapName: string): Promise<boolean>;
  // Implements: int rbd_snap_get_namespace_type(rbd_image_t image, uint64_t snap_id,
  //             rbd_snap_namespace_type_t *namespace_type)
  /** 0 user, 1 group, 2 trash (a removed snapshot kept for its clone v2 children), 3 mirror. */
  rbdSnapGetNamespaceType(image: ImageHandle, snapId: number): Promise<number>;
  // Implements: int rbd_get_parent(rbd_image_t image, rbd_linked_image_spec_t *parent_image,
  //             rbd_snap_spec_t *parent_snap)
  /** Rejects with ENOENT when the image is not a clone (or no longer is: flattened). */
  rbdGetParent(image: ImageHandle): Promise<NativeParent>;

  // The addon's own controls (addon/module.cc): synchronous, no Ceph call.

  /** Bound on librados/librbd calls running at once in this process (the addon's own thread pool). */
  setMaxInflight(maxInflight: number): void;
  poolStats(): NativePoolStats;
  constants: { features: Readonly<Record<string, number>> };
}

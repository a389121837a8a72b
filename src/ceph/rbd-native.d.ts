// Hand-written declaration of the native module (addon/, built to build/Release/rbd_native.node).
// One declaration per exported function; each wraps the librados/librbd call it is named after. Every function
// returns a promise that rejects with a NativeError.

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
  /** 'ENOENT', 'EEXIST', ...; 'EBADF' for a closed handle; 'ERR_INVALID_ARG_TYPE' for a bad argument. */
  code: string;
  /** Positive errno, when the error came from librados/librbd. */
  errno?: number;
  /** The C function, e.g. 'rbd_create4'. */
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
}

export interface NativeClusterStat { kb: number; kbUsed: number; kbAvail: number; numObjects: number }
export interface NativePoolStat { numBytes: number; numObjects: number }
export interface NativeImageStat { size: number; objSize: number; numObjs: number; order: number; blockNamePrefix: string }
export interface NativeImageSpec { id: string; name: string }
/** source: rbd_trash_image_source_t (0 user, 1 mirroring, 2 migration, 3 removing, 4 user parent). */
export interface NativeTrashEntry { id: string; name: string; source: number; deletionTime: number; defermentEndTime: number }
export interface NativeWatcher { address: string; id: number; cookie: string }
export interface NativeSnapshot { id: number; size: number; name: string }
export interface NativePoolStats { maxInflight: number; inflight: number; queued: number; peakInflight: number; completed: number }

export interface RbdNative {
  radosConnect(options: NativeConnectOptions): Promise<ClusterHandle>;
  radosShutdown(cluster: ClusterHandle): Promise<void>;
  radosClusterFsid(cluster: ClusterHandle): Promise<string>;
  radosClusterStat(cluster: ClusterHandle): Promise<NativeClusterStat>;
  radosPoolList(cluster: ClusterHandle): Promise<string[]>;
  radosPoolLookup(cluster: ClusterHandle, pool: string): Promise<number>;
  radosPoolCreate(cluster: ClusterHandle, pool: string): Promise<void>;
  radosPoolDelete(cluster: ClusterHandle, pool: string): Promise<void>;
  /** The command's JSON output. */
  radosMonCommand(cluster: ClusterHandle, command: string): Promise<string>;
  radosIoctxCreate(cluster: ClusterHandle, pool: string, namespace?: string): Promise<IoCtxHandle>;
  radosIoctxDestroy(ioctx: IoCtxHandle): Promise<void>;
  radosIoctxPoolStat(ioctx: IoCtxHandle): Promise<NativePoolStat>;

  rbdCreate4(ioctx: IoCtxHandle, name: string, size: number, options?: NativeImageOptions): Promise<void>;
  rbdClone3(parentIoctx: IoCtxHandle, parentName: string, parentSnapName: string, ioctx: IoCtxHandle, name: string,
    options?: NativeImageOptions): Promise<void>;
  rbdRemove(ioctx: IoCtxHandle, name: string): Promise<void>;
  rbdTrashMove(ioctx: IoCtxHandle, name: string, delaySeconds?: number): Promise<void>;
  rbdTrashList(ioctx: IoCtxHandle): Promise<NativeTrashEntry[]>;
  rbdTrashRemove(ioctx: IoCtxHandle, id: string, force?: boolean): Promise<void>;
  rbdList2(ioctx: IoCtxHandle): Promise<NativeImageSpec[]>;
  rbdPoolInit(ioctx: IoCtxHandle, force?: boolean): Promise<void>;
  rbdOpen(ioctx: IoCtxHandle, name: string, readOnly?: boolean): Promise<ImageHandle>;
  /** Opens by image id: the only way to reach an image in the trash. */
  rbdOpenById(ioctx: IoCtxHandle, id: string, readOnly?: boolean): Promise<ImageHandle>;
  rbdClose(image: ImageHandle): Promise<void>;
  rbdStat(image: ImageHandle): Promise<NativeImageStat>;
  rbdGetFeatures(image: ImageHandle): Promise<number>;
  rbdGetId(image: ImageHandle): Promise<string>;
  rbdResize(image: ImageHandle, size: number): Promise<void>;
  rbdFlatten(image: ImageHandle): Promise<void>;
  rbdMetadataGet(image: ImageHandle, key: string): Promise<string>;
  rbdMetadataSet(image: ImageHandle, key: string, value: string): Promise<void>;
  rbdMetadataRemove(image: ImageHandle, key: string): Promise<void>;
  rbdMetadataList(image: ImageHandle): Promise<Record<string, string>>;
  rbdWatchersList(image: ImageHandle): Promise<NativeWatcher[]>;
  rbdSnapList(image: ImageHandle): Promise<NativeSnapshot[]>;
  rbdSnapCreate(image: ImageHandle, snapName: string): Promise<void>;
  rbdSnapRemove(image: ImageHandle, snapName: string): Promise<void>;
  rbdSnapProtect(image: ImageHandle, snapName: string): Promise<void>;
  rbdSnapUnprotect(image: ImageHandle, snapName: string): Promise<void>;
  rbdSnapIsProtected(image: ImageHandle, snapName: string): Promise<boolean>;

  /** Bound on librados/librbd calls running at once in this process (the addon's own thread pool). */
  setMaxInflight(maxInflight: number): void;
  poolStats(): NativePoolStats;
  constants: { features: Readonly<Record<string, number>> };
}

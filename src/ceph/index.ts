// The idiomatic TypeScript API over the rbd_native addon. Knows nothing of Kubernetes.
import { native } from './native.js';

export { Cluster, DEFAULT_TIMEOUTS, type CephTimeouts, type ClusterUsage, type ConfFileOptions, type ConnectOptions, type PoolQuota } from './cluster.js';
export { Pool, type PoolUsage, type TrashEntry } from './pool.js';
export { Image, type ImageInfo, type Snapshot, type Watcher } from './image.js';
export { ConnectionPool, type ClusterLease, type ClusterTarget, type ConnectionPoolOptions } from './connections.js';
export type { CallObserver } from './calls.js';
export * from './errors.js';
export { FEATURE_BITS, IMAGE_FEATURES, checkFeatures, featureBits, featureNames, type ImageFeature } from './features.js';
export { checkImageName, checkNamespace, checkPoolName, orderOf, type CreateImageOptions } from './options.js';
export { ValidationError } from './validation.js';

/**
 * Bound on librados/librbd calls running at once in this process. The addon runs them on a pool of its own
 * threads of this size, so a hung OSD call never takes a libuv thread (dns, fs) and at most this many wait.
 */
export function setMaxInflight(maxInflight: number): void {
  native.setMaxInflight(maxInflight);
}

export function callStats(): { maxInflight: number; inflight: number; queued: number; peakInflight: number; completed: number } {
  return native.poolStats();
}

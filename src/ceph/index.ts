// The idiomatic TypeScript API over the rbd_native addon. Knows nothing of Kubernetes.

export { Cluster, DEFAULT_TIMEOUTS, clientAddressOf, type CephTimeouts, type ClusterUsage, type ConfFileOptions, type ConnectOptions, type PoolQuota } from './cluster.js';
export { Pool, type PoolUsage, type TrashEntry, type TrashSource } from './pool.js';
export { Image, type ImageInfo, type Parent, type Snapshot, type SnapshotNamespace, type Watcher } from './image.js';
export { ConnectionPool, type ClusterLease, type ClusterTarget, type PublicTarget, type ConnectionPoolOptions } from './connections.js';
export { callStats, setMaxInflight, type CallObserver, type CallStats } from './calls.js';
export * from './errors.js';
export { FEATURE_BITS, IMAGE_FEATURES, checkFeatures, featureBits, featureNames, type ImageFeature } from './features.js';
export { MAX_ORDER, MIN_ORDER, orderOf, type CreateImageOptions } from './options.js';
export {
  CEPH_NAMES, CEPHX_KEY_ALLOWED, cephxKeyProblem, checkCephId, checkCephxKey, checkImageName, checkNamespace, checkPoolName, nameProblem, quote,
  type NameRule,
} from './names.js';
export { checkMonitors, MONITORS_ALLOWED, parseMonitors, type MonitorEntry } from './monitors.js';
export { ValidationError } from './validation.js';

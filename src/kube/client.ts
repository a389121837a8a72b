// A thin facade over @kubernetes/client-node with only the calls the controller makes. Every call passes the
// client-side token bucket and has a timeout, and errors become KubeApiError with the HTTP status and the Status
// reason. The facade is an interface so unit tests hand the controller a fake.
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  StorageV1Api,
  Watch,
  type CoreV1Event,
  type V1ConfigMap,
  type V1Lease,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Secret,
  type V1Status,
  type V1StorageClass,
  type V1VolumeAttachment,
} from '@kubernetes/client-node';
import { type Clock, realClock } from './clock.js';
import { SNAPSHOT_GROUP, SNAPSHOT_VERSION, type VolumeSnapshot, type VolumeSnapshotClass, type VolumeSnapshotContent } from './snapshots.js';
import { TokenBucket } from './ratelimit.js';

export interface ResourceTypes {
  claims: V1PersistentVolumeClaim;
  volumes: V1PersistentVolume;
  storageClasses: V1StorageClass;
  attachments: V1VolumeAttachment;
  snapshotContents: VolumeSnapshotContent;
}
export type ResourceKind = keyof ResourceTypes;

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'test';
  path: string;
  value?: unknown;
}

export interface KubeFacade {
  /** Live read (not the cache); undefined when the claim does not exist. */
  readClaim(namespace: string, name: string, signal?: AbortSignal): Promise<V1PersistentVolumeClaim | undefined>;
  readVolume(name: string, signal?: AbortSignal): Promise<V1PersistentVolume | undefined>;
  /**
   * A Secret's data (values base64-encoded, as the API returns them); undefined when it does not exist. Its errors
   * never quote the response body, which could hold key material.
   */
  readSecretData(namespace: string, name: string, signal?: AbortSignal): Promise<Record<string, string> | undefined>;
  /** The whole Secret (for one the controller keeps itself); undefined when it does not exist. Errors as above. */
  readSecret(namespace: string, name: string, signal?: AbortSignal): Promise<V1Secret | undefined>;
  /** Errors never quote the request or the response: both hold key material. */
  createSecret(namespace: string, secret: V1Secret, signal?: AbortSignal): Promise<V1Secret>;
  /** Optimistic concurrency: secret.metadata.resourceVersion must be the one read; 409 otherwise. Errors as above. */
  replaceSecret(namespace: string, name: string, secret: V1Secret, signal?: AbortSignal): Promise<V1Secret>;
  createVolume(volume: V1PersistentVolume, signal?: AbortSignal): Promise<V1PersistentVolume>;
  /** False when the PV was already gone (or replaced by another object with the same name, when uid is given). */
  deleteVolume(name: string, uid?: string, signal?: AbortSignal): Promise<boolean>;
  /** RFC 6902 JSON patch: finalizer changes never rewrite the whole object. */
  patchVolume(name: string, patch: JsonPatchOperation[], signal?: AbortSignal): Promise<V1PersistentVolume>;
  /**
   * JSON merge patch of a claim's status subresource (the resize loop's allocatedResources, conditions, capacity);
   * a metadata.resourceVersion in the patch makes it conditional (409 when the claim changed).
   */
  patchClaimStatus(namespace: string, name: string, patch: object, signal?: AbortSignal): Promise<V1PersistentVolumeClaim>;
  /** JSON merge patch of a VolumeAttachment's status subresource (status.attached and its errors). */
  patchAttachmentStatus(name: string, patch: object, signal?: AbortSignal): Promise<V1VolumeAttachment>;
  /** RFC 6902 JSON patch of a VolumeAttachment (its finalizers). */
  patchAttachment(name: string, patch: JsonPatchOperation[], signal?: AbortSignal): Promise<V1VolumeAttachment>;
  createEvent(namespace: string, event: CoreV1Event, signal?: AbortSignal): Promise<CoreV1Event>;
  /** JSON merge patch, used to bump count/lastTimestamp of a repeated event. */
  patchEvent(namespace: string, name: string, patch: object, signal?: AbortSignal): Promise<CoreV1Event>;
  readLease(namespace: string, name: string, signal?: AbortSignal): Promise<V1Lease | undefined>;
  createLease(namespace: string, lease: V1Lease, signal?: AbortSignal): Promise<V1Lease>;
  /** Optimistic concurrency: lease.metadata.resourceVersion must be the one read; 409 otherwise. */
  replaceLease(namespace: string, name: string, lease: V1Lease, signal?: AbortSignal): Promise<V1Lease>;
  // ---- ConfigMaps (ceph-csi's config map, --ceph-csi-config) ----
  /** Live read; undefined when it does not exist. */
  readConfigMap(namespace: string, name: string, signal?: AbortSignal): Promise<V1ConfigMap | undefined>;
  createConfigMap(namespace: string, configMap: V1ConfigMap, signal?: AbortSignal): Promise<V1ConfigMap>;
  /** Optimistic concurrency: configMap.metadata.resourceVersion must be the one read; 409 otherwise. */
  replaceConfigMap(namespace: string, name: string, configMap: V1ConfigMap, signal?: AbortSignal): Promise<V1ConfigMap>;
  // ---- the external-snapshotter's objects (snapshot.storage.k8s.io/v1) ----
  /** Live reads; undefined when the object does not exist. */
  readSnapshot(namespace: string, name: string, signal?: AbortSignal): Promise<VolumeSnapshot | undefined>;
  readSnapshotContent(name: string, signal?: AbortSignal): Promise<VolumeSnapshotContent | undefined>;
  readSnapshotClass(name: string, signal?: AbortSignal): Promise<VolumeSnapshotClass | undefined>;
  /** JSON merge patch of a VolumeSnapshotContent (its annotations and finalizers). */
  patchSnapshotContent(name: string, patch: object, signal?: AbortSignal): Promise<VolumeSnapshotContent>;
  /** JSON merge patch of a VolumeSnapshotContent's status subresource. */
  patchSnapshotContentStatus(name: string, patch: object, signal?: AbortSignal): Promise<VolumeSnapshotContent>;
  /** Whether the API server serves VolumeSnapshotContents (the external-snapshotter's CRDs are installed). */
  servesSnapshots(signal?: AbortSignal): Promise<boolean>;
  list<K extends ResourceKind>(kind: K, signal?: AbortSignal): Promise<ListResult<ResourceTypes[K]>>;
  /**
   * Streams events from resourceVersion until the server ends the watch (resolves) or it fails (rejects). A
   * watch event of type ERROR carries a V1Status (410 Expired: the caller must relist). Abort with signal.
   */
  watch<K extends ResourceKind>(
    kind: K,
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: ResourceTypes[K] | V1Status) => void,
    options: { signal: AbortSignal; timeoutSeconds: number },
  ): Promise<void>;
}

/** status 0: no HTTP response (connection refused, reset, client-side timeout). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly op: string,
  ) {
    super(message);
  }
}

export const isNotFound = (error: unknown): boolean => error instanceof KubeApiError && error.status === 404;
export const isAlreadyExists = (error: unknown): boolean =>
  error instanceof KubeApiError && error.status === 409 && error.reason === 'AlreadyExists';
/** 409 Conflict (stale resourceVersion) or 422 from a failed JSON-patch "test": re-read and try again. */
export const isConflict = (error: unknown): boolean =>
  error instanceof KubeApiError && ((error.status === 409 && error.reason !== 'AlreadyExists') || error.status === 422);
export const isGone = (error: unknown): boolean => error instanceof KubeApiError && error.status === 410;
/** Worth retrying as is: no response, timeouts, throttling, server errors. */
export const isRetryable = (error: unknown): boolean =>
  error instanceof KubeApiError && (error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500);
/** Refused for good (a 4xx that is neither retryable nor AlreadyExists): this request stored nothing. */
export const isDefiniteRefusal = (error: unknown): boolean =>
  error instanceof KubeApiError && error.status >= 400 && error.status < 500 && !isRetryable(error) && !isAlreadyExists(error);

export interface KubeFacadeOptions {
  qps: number;
  burst: number;
  /** Per-request timeout (not for watches). */
  requestTimeoutMs?: number;
  clock?: Clock;
}

const WATCH_PATHS: Record<ResourceKind, string> = {
  claims: '/api/v1/persistentvolumeclaims',
  volumes: '/api/v1/persistentvolumes',
  storageClasses: '/apis/storage.k8s.io/v1/storageclasses',
  attachments: '/apis/storage.k8s.io/v1/volumeattachments',
  snapshotContents: `/apis/${SNAPSHOT_GROUP}/${SNAPSHOT_VERSION}/volumesnapshotcontents`,
};

const snapshotObject = (plural: string, name: string) => ({ group: SNAPSHOT_GROUP, version: SNAPSHOT_VERSION, plural, name });

const LIST_PAGE_SIZE = 500;

/**
 * Namespace of events about cluster-scoped objects (PVs), as client-go's recorder does.
 */
export const CLUSTER_SCOPED_EVENT_NAMESPACE = 'default';

/**
 * kubeconfig path when given, else in-cluster when running in a pod, else the default (~/.kube/config).
 */
export function loadKubeConfig(path: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (path !== undefined && path !== '') kubeConfig.loadFromFile(path);
  else if (env['KUBERNETES_SERVICE_HOST'] !== undefined) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}

function statusOf(body: unknown): { reason: string; message: string } {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return { reason: '', message: body.slice(0, 512) };
    }
  }
  if (parsed !== null && typeof parsed === 'object') {
    const status = parsed as { reason?: unknown; message?: unknown };
    return {
      reason: typeof status.reason === 'string' ? status.reason : '',
      message: typeof status.message === 'string' ? status.message : '',
    };
  }
  return { reason: '', message: '' };
}

/**
 * Maps whatever client-node threw to KubeApiError; the caller's own abort passes through unchanged. With redact, the
 * message carries only the status and reason (or the error code), never text that may quote the response body.
 */
export function toKubeApiError(op: string, error: unknown, callerSignal?: AbortSignal, redact = false): Error {
  if (callerSignal?.aborted === true) {
    return callerSignal.reason instanceof Error ? callerSignal.reason : new Error('aborted');
  }
  if (error instanceof KubeApiError) return error;
  const candidate = error as { code?: unknown; body?: unknown; statusCode?: unknown; name?: unknown; message?: unknown };
  const status = typeof candidate.code === 'number' ? candidate.code : typeof candidate.statusCode === 'number' ? candidate.statusCode : undefined;
  if (status !== undefined && status >= 100) {
    const { reason, message } = statusOf(candidate.body);
    if (redact) return new KubeApiError(status, reason, `${op}: HTTP ${status}${reason === '' ? '' : ` ${reason}`}`, op);
    return new KubeApiError(status, reason, `${op}: HTTP ${status}${message === '' ? '' : `: ${message}`}`, op);
  }
  if (candidate.name === 'AbortError' || candidate.name === 'TimeoutError') {
    return new KubeApiError(0, 'Timeout', `${op}: request timed out`, op);
  }
  if (redact) {
    // A parse error of a 200 response quotes the body it could not parse.
    const code = typeof candidate.code === 'string' ? candidate.code : typeof candidate.name === 'string' ? candidate.name : 'Error';
    return new KubeApiError(0, 'NoResponse', `${op}: request failed (${code})`, op);
  }
  const text = typeof candidate.message === 'string' ? candidate.message : String(error);
  return new KubeApiError(0, 'NoResponse', `${op}: ${text}`, op);
}

type Middleware = {
  pre: (context: { setSignal(signal: AbortSignal): void }) => { toPromise(): Promise<unknown> };
  post: (response: unknown) => { toPromise(): Promise<unknown> };
};

/** client-node's middleware contract is Observable-like: anything with toPromise(). */
function signalOptions(signal: AbortSignal): object {
  const middleware: Middleware = {
    pre: (context) => {
      context.setSignal(signal);
      return { toPromise: () => Promise.resolve(context) };
    },
    post: (response) => ({ toPromise: () => Promise.resolve(response) }),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

interface CallOptions {
  middleware?: unknown[];
  /** The response may hold secrets: errors must not quote it. */
  redact?: boolean;
}

const MERGE_PATCH_OPTIONS: CallOptions = {
  middleware: [
    {
      pre: (context: { setHeaderParam(key: string, value: string): void }) => {
        context.setHeaderParam('Content-Type', 'application/merge-patch+json');
        return { toPromise: () => Promise.resolve(context) };
      },
      post: (response: unknown) => ({ toPromise: () => Promise.resolve(response) }),
    },
  ],
};

export function createKubeFacade(kubeConfig: KubeConfig, options: KubeFacadeOptions): KubeFacade {
  const clock = options.clock ?? realClock;
  const limiter = new TokenBucket(options.qps, options.burst, clock);
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const storage = kubeConfig.makeApiClient(StorageV1Api);
  const coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const watcher = new Watch(kubeConfig);

  async function call<T>(op: string, signal: AbortSignal | undefined, run: (options: object) => Promise<T>, extra: CallOptions = {}): Promise<T> {
    await limiter.take(signal);
    const timeout = AbortSignal.timeout(requestTimeoutMs);
    const combined = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    const requestOptions = signalOptions(combined) as { middleware: unknown[] };
    requestOptions.middleware.push(...(extra.middleware ?? []));
    try {
      return await run(requestOptions);
    } catch (error) {
      throw toKubeApiError(op, error, signal, extra.redact);
    }
  }

  async function orUndefined<T>(promise: Promise<T>): Promise<T | undefined> {
    try {
      return await promise;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async function listAll<T>(
    op: string,
    signal: AbortSignal | undefined,
    page: (cont: string | undefined, options: object) => Promise<{ items: T[]; metadata?: { resourceVersion?: string; _continue?: string } }>,
  ): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const result = await call(op, signal, (o) => page(cont, o));
      items.push(...result.items);
      resourceVersion = result.metadata?.resourceVersion ?? resourceVersion;
      cont = result.metadata?._continue === '' ? undefined : result.metadata?._continue;
    } while (cont !== undefined);
    return { items, resourceVersion };
  }

  return {
    readClaim: (namespace, name, signal) =>
      orUndefined(call('read claim', signal, (o) => core.readNamespacedPersistentVolumeClaim({ namespace, name }, o))),
    readVolume: (name, signal) => orUndefined(call('read PV', signal, (o) => core.readPersistentVolume({ name }, o))),
    readSecretData: async (namespace, name, signal) => {
      const secret = await orUndefined(call('read secret', signal, (o) => core.readNamespacedSecret({ namespace, name }, o), { redact: true }));
      return secret === undefined ? undefined : secret.data ?? {};
    },
    readSecret: (namespace, name, signal) =>
      orUndefined(call('read secret', signal, (o) => core.readNamespacedSecret({ namespace, name }, o), { redact: true })),
    createSecret: (namespace, secret, signal) =>
      call('create secret', signal, (o) => core.createNamespacedSecret({ namespace, body: secret }, o), { redact: true }),
    replaceSecret: (namespace, name, secret, signal) =>
      call('replace secret', signal, (o) => core.replaceNamespacedSecret({ namespace, name, body: secret }, o), { redact: true }),
    createVolume: (volume, signal) => call('create PV', signal, (o) => core.createPersistentVolume({ body: volume }, o)),
    deleteVolume: async (name, uid, signal) => {
      try {
        const body = uid === undefined ? undefined : { preconditions: { uid } };
        await call('delete PV', signal, (o) => core.deletePersistentVolume({ name, ...(body === undefined ? {} : { body }) }, o));
        return true;
      } catch (error) {
        // A failed uid precondition means the object we meant is gone and another took its name.
        if (isNotFound(error) || (error instanceof KubeApiError && error.status === 409 && uid !== undefined)) return false;
        throw error;
      }
    },
    // The generated client sends application/json-patch+json for a patch body unless told otherwise.
    patchVolume: (name, patch, signal) => call('patch PV', signal, (o) => core.patchPersistentVolume({ name, body: patch }, o)),
    patchClaimStatus: (namespace, name, patch, signal) =>
      call('patch PVC status', signal, (o) => core.patchNamespacedPersistentVolumeClaimStatus({ namespace, name, body: patch }, o), MERGE_PATCH_OPTIONS),
    patchAttachmentStatus: (name, patch, signal) =>
      call('patch VolumeAttachment status', signal, (o) => storage.patchVolumeAttachmentStatus({ name, body: patch }, o), MERGE_PATCH_OPTIONS),
    patchAttachment: (name, patch, signal) => call('patch VolumeAttachment', signal, (o) => storage.patchVolumeAttachment({ name, body: patch }, o)),
    createEvent: (namespace, event, signal) => call('create event', signal, (o) => core.createNamespacedEvent({ namespace, body: event }, o)),
    patchEvent: (namespace, name, patch, signal) =>
      call('patch event', signal, (o) => core.patchNamespacedEvent({ namespace, name, body: patch }, o), MERGE_PATCH_OPTIONS),
    readLease: (namespace, name, signal) =>
      orUndefined(call('read lease', signal, (o) => coordination.readNamespacedLease({ namespace, name }, o))),
    createLease: (namespace, lease, signal) => call('create lease', signal, (o) => coordination.createNamespacedLease({ namespace, body: lease }, o)),
    replaceLease: (namespace, name, lease, signal) =>
      call('replace lease', signal, (o) => coordination.replaceNamespacedLease({ namespace, name, body: lease }, o)),
    readConfigMap: (namespace, name, signal) =>
      orUndefined(call('read ConfigMap', signal, (o) => core.readNamespacedConfigMap({ namespace, name }, o))),
    createConfigMap: (namespace, configMap, signal) =>
      call('create ConfigMap', signal, (o) => core.createNamespacedConfigMap({ namespace, body: configMap }, o)),
    replaceConfigMap: (namespace, name, configMap, signal) =>
      call('replace ConfigMap', signal, (o) => core.replaceNamespacedConfigMap({ namespace, name, body: configMap }, o)),
    readSnapshot: (namespace, name, signal) =>
      orUndefined(call('read VolumeSnapshot', signal, (o) => custom.getNamespacedCustomObject({ ...snapshotObject('volumesnapshots', name), namespace }, o))) as Promise<VolumeSnapshot | undefined>,
    readSnapshotContent: (name, signal) =>
      orUndefined(call('read VolumeSnapshotContent', signal, (o) => custom.getClusterCustomObject(snapshotObject('volumesnapshotcontents', name), o))) as Promise<VolumeSnapshotContent | undefined>,
    readSnapshotClass: (name, signal) =>
      orUndefined(call('read VolumeSnapshotClass', signal, (o) => custom.getClusterCustomObject(snapshotObject('volumesnapshotclasses', name), o))) as Promise<VolumeSnapshotClass | undefined>,
    patchSnapshotContent: (name, patch, signal) =>
      call('patch VolumeSnapshotContent', signal, (o) => custom.patchClusterCustomObject({ ...snapshotObject('volumesnapshotcontents', name), body: patch }, o), MERGE_PATCH_OPTIONS) as Promise<VolumeSnapshotContent>,
    patchSnapshotContentStatus: (name, patch, signal) =>
      call('patch VolumeSnapshotContent status', signal, (o) => custom.patchClusterCustomObjectStatus({ ...snapshotObject('volumesnapshotcontents', name), body: patch }, o), MERGE_PATCH_OPTIONS) as Promise<VolumeSnapshotContent>,
    servesSnapshots: async (signal) => {
      try {
        await call('list VolumeSnapshotContents', signal, (o) => custom.listClusterCustomObject({ group: SNAPSHOT_GROUP, version: SNAPSHOT_VERSION, plural: 'volumesnapshotcontents', limit: 1 }, o));
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
    list: (<K extends ResourceKind>(kind: K, signal?: AbortSignal): Promise<ListResult<ResourceTypes[K]>> => {
      const op = `list ${kind}`;
      switch (kind) {
        case 'claims':
          return listAll(op, signal, (cont, o) =>
            core.listPersistentVolumeClaimForAllNamespaces({ limit: LIST_PAGE_SIZE, ...(cont === undefined ? {} : { _continue: cont }) }, o),
          ) as Promise<ListResult<ResourceTypes[K]>>;
        case 'volumes':
          return listAll(op, signal, (cont, o) =>
            core.listPersistentVolume({ limit: LIST_PAGE_SIZE, ...(cont === undefined ? {} : { _continue: cont }) }, o),
          ) as Promise<ListResult<ResourceTypes[K]>>;
        case 'attachments':
          return listAll(op, signal, (cont, o) =>
            storage.listVolumeAttachment({ limit: LIST_PAGE_SIZE, ...(cont === undefined ? {} : { _continue: cont }) }, o),
          ) as Promise<ListResult<ResourceTypes[K]>>;
        case 'snapshotContents':
          return listAll(op, signal, (cont, o) =>
            custom.listClusterCustomObject({
              group: SNAPSHOT_GROUP, version: SNAPSHOT_VERSION, plural: 'volumesnapshotcontents', limit: LIST_PAGE_SIZE, ...(cont === undefined ? {} : { _continue: cont }),
            }, o) as Promise<{ items: VolumeSnapshotContent[]; metadata?: { resourceVersion?: string; _continue?: string } }>,
          ) as Promise<ListResult<ResourceTypes[K]>>;
        default:
          return listAll(op, signal, (cont, o) =>
            storage.listStorageClass({ limit: LIST_PAGE_SIZE, ...(cont === undefined ? {} : { _continue: cont }) }, o),
          ) as Promise<ListResult<ResourceTypes[K]>>;
      }
    }) as KubeFacade['list'],
    watch: async (kind, resourceVersion, onEvent, { signal, timeoutSeconds }) => {
      await limiter.take(signal);
      const op = `watch ${kind}`;
      await new Promise<void>((resolve, reject) => {
        let request: AbortController | undefined;
        let settled = false;
        const onAbort = (): void => request?.abort();
        const finish = (error: unknown): void => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) resolve();
          else if (error === null || error === undefined) resolve();
          else reject(toKubeApiError(op, error));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        watcher
          .watch(
            WATCH_PATHS[kind],
            { resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
            (type: string, object: unknown) => {
              if (!settled) onEvent(type as WatchEventType, object as ResourceTypes[typeof kind] | V1Status);
            },
            finish,
          )
          .then(
            (controller) => {
              request = controller;
              if (signal.aborted) controller.abort();
            },
            finish,
          );
      });
    },
  };
}

// A thin facade over the Kubernetes API with only the calls the controller makes (plain JSON over kept-alive
// connections, transport.ts; @kubernetes/client-node for its types and kubeconfig loading). Every call passes the
// client-side token bucket and has a timeout, and errors become KubeApiError with the HTTP status and the Status
// reason. The facade is an interface so unit tests hand the controller a fake.
import {
  KubeConfig,
  type CoreV1Event,
  type V1ConfigMap,
  type V1Lease,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1Secret,
  type V1Status,
  type V1StorageClass,
  type V1VolumeAttachment,
} from '@kubernetes/client-node';
import { type Clock, realClock } from './clock.js';
import { SNAPSHOT_GROUP, SNAPSHOT_VERSION, type VolumeSnapshot, type VolumeSnapshotClass, type VolumeSnapshotContent } from './snapshots.js';
import { type Priority, TokenBucket } from './ratelimit.js';
import { KubeTransport, type RequestSpec } from './transport.js';

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

/**
 * The calls only the admin subcommands (`migrate`, `audit`) make: the controller itself never creates or deletes a
 * claim. Kept out of KubeFacade so the controller's fakes need not implement them.
 */
export interface AdminCalls {
  createClaim(namespace: string, claim: V1PersistentVolumeClaim, signal?: AbortSignal): Promise<V1PersistentVolumeClaim>;
  /** With uid, only that claim (a 409 precondition failure when the name now belongs to another); false when gone. */
  deleteClaim(namespace: string, name: string, uid?: string, signal?: AbortSignal): Promise<boolean>;
  listPods(namespace: string, signal?: AbortSignal): Promise<V1Pod[]>;
  readStorageClass(name: string, signal?: AbortSignal): Promise<V1StorageClass | undefined>;
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
  /** Kept-alive connections to the API server at most, watches included. Default 64. */
  maxConnections?: number;
  clock?: Clock;
}

const WATCH_PATHS: Record<ResourceKind, string> = {
  claims: '/api/v1/persistentvolumeclaims',
  volumes: '/api/v1/persistentvolumes',
  storageClasses: '/apis/storage.k8s.io/v1/storageclasses',
  attachments: '/apis/storage.k8s.io/v1/volumeattachments',
  snapshotContents: `/apis/${SNAPSHOT_GROUP}/${SNAPSHOT_VERSION}/volumesnapshotcontents`,
};


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

const MERGE_PATCH = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';

const seg = encodeURIComponent;
const namespaced = (prefix: string, namespace: string, plural: string, name?: string): string =>
  `${prefix}/namespaces/${seg(namespace)}/${plural}${name === undefined ? '' : `/${seg(name)}`}`;
const clusterScoped = (prefix: string, plural: string, name?: string): string => `${prefix}/${plural}${name === undefined ? '' : `/${seg(name)}`}`;
const CORE = '/api/v1';
const STORAGE = '/apis/storage.k8s.io/v1';
const SNAPSHOTS = `/apis/${SNAPSHOT_GROUP}/${SNAPSHOT_VERSION}`;
const COORDINATION = '/apis/coordination.k8s.io/v1';

interface CallSpec {
  method: RequestSpec['method'];
  path: string;
  query?: RequestSpec['query'];
  body?: unknown;
  contentType?: string;
  /** The response may hold secrets: errors must not quote it. */
  redact?: boolean;
}

/**
 * A facade over one API server: every request and watch shares one pool of kept-alive connections (transport.ts).
 * Give the lease its own facade (own connections, own token bucket), so renewals never queue behind claim work.
 */
export function createKubeFacade(kubeConfig: KubeConfig, options: KubeFacadeOptions): KubeFacade & AdminCalls {
  const clock = options.clock ?? realClock;
  const limiter = new TokenBucket(options.qps, options.burst, clock);
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const transport = new KubeTransport(kubeConfig, { maxSockets: options.maxConnections ?? 64 });

  async function call<T>(op: string, signal: AbortSignal | undefined, spec: CallSpec, priority: Priority = 'normal'): Promise<T> {
    await limiter.take(signal, priority);
    try {
      return (await transport.request({ ...spec, timeoutMs: requestTimeoutMs, ...(signal === undefined ? {} : { signal }) })) as T;
    } catch (error) {
      throw toKubeApiError(op, error, signal, spec.redact);
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

  async function listAll<T>(op: string, path: string, signal: AbortSignal | undefined): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion = '';
    do {
      const result = await call<{ items?: T[] | null; metadata?: { resourceVersion?: string; continue?: string } }>(op, signal, {
        method: 'GET',
        path,
        query: { limit: LIST_PAGE_SIZE, continue: cont },
      });
      for (const item of result.items ?? []) items.push(item);
      resourceVersion = result.metadata?.resourceVersion ?? resourceVersion;
      cont = result.metadata?.continue === '' ? undefined : result.metadata?.continue;
    } while (cont !== undefined);
    return { items, resourceVersion };
  }

  const get = <T>(op: string, path: string, signal: AbortSignal | undefined, redact = false): Promise<T | undefined> =>
    orUndefined(call<T>(op, signal, { method: 'GET', path, redact }));

  return {
    readClaim: (namespace, name, signal) => get('read claim', namespaced(CORE, namespace, 'persistentvolumeclaims', name), signal),
    readVolume: (name, signal) => get('read PV', clusterScoped(CORE, 'persistentvolumes', name), signal),
    createClaim: (namespace, claim, signal) =>
      call('create claim', signal, { method: 'POST', path: namespaced(CORE, namespace, 'persistentvolumeclaims'), body: claim }),
    deleteClaim: async (namespace, name, uid, signal) => {
      try {
        await call('delete claim', signal, {
          method: 'DELETE',
          path: namespaced(CORE, namespace, 'persistentvolumeclaims', name),
          ...(uid === undefined ? {} : { body: { preconditions: { uid } } }),
        });
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
    listPods: async (namespace, signal) => (await listAll<V1Pod>('list pods', namespaced(CORE, namespace, 'pods'), signal)).items,
    readStorageClass: (name, signal) => get('read StorageClass', clusterScoped(STORAGE, 'storageclasses', name), signal),
    readSecretData: async (namespace, name, signal) => {
      const secret = await get<V1Secret>('read secret', namespaced(CORE, namespace, 'secrets', name), signal, true);
      return secret === undefined ? undefined : secret.data ?? {};
    },
    readSecret: (namespace, name, signal) => get('read secret', namespaced(CORE, namespace, 'secrets', name), signal, true),
    createSecret: (namespace, secret, signal) =>
      call('create secret', signal, { method: 'POST', path: namespaced(CORE, namespace, 'secrets'), body: secret, redact: true }),
    replaceSecret: (namespace, name, secret, signal) =>
      call('replace secret', signal, { method: 'PUT', path: namespaced(CORE, namespace, 'secrets', name), body: secret, redact: true }),
    createVolume: (volume, signal) => call('create PV', signal, { method: 'POST', path: clusterScoped(CORE, 'persistentvolumes'), body: volume }),
    deleteVolume: async (name, uid, signal) => {
      try {
        await call('delete PV', signal, {
          method: 'DELETE',
          path: clusterScoped(CORE, 'persistentvolumes', name),
          ...(uid === undefined ? {} : { body: { preconditions: { uid } } }),
        });
        return true;
      } catch (error) {
        // A failed uid precondition means the object we meant is gone and another took its name.
        if (isNotFound(error) || (error instanceof KubeApiError && error.status === 409 && uid !== undefined)) return false;
        throw error;
      }
    },
    patchVolume: (name, patch, signal) =>
      call('patch PV', signal, { method: 'PATCH', path: clusterScoped(CORE, 'persistentvolumes', name), body: patch, contentType: JSON_PATCH }),
    patchClaimStatus: (namespace, name, patch, signal) =>
      call('patch PVC status', signal, { method: 'PATCH', path: `${namespaced(CORE, namespace, 'persistentvolumeclaims', name)}/status`, body: patch, contentType: MERGE_PATCH }),
    patchAttachmentStatus: (name, patch, signal) =>
      call('patch VolumeAttachment status', signal, { method: 'PATCH', path: `${clusterScoped(STORAGE, 'volumeattachments', name)}/status`, body: patch, contentType: MERGE_PATCH }),
    patchAttachment: (name, patch, signal) =>
      call('patch VolumeAttachment', signal, { method: 'PATCH', path: clusterScoped(STORAGE, 'volumeattachments', name), body: patch, contentType: JSON_PATCH }),
    // Events spend the budget only when nothing else waits for it: in a burst, PVs first.
    createEvent: (namespace, event, signal) => call('create event', signal, { method: 'POST', path: namespaced(CORE, namespace, 'events'), body: event }, 'low'),
    patchEvent: (namespace, name, patch, signal) =>
      call('patch event', signal, { method: 'PATCH', path: namespaced(CORE, namespace, 'events', name), body: patch, contentType: MERGE_PATCH }, 'low'),
    readLease: (namespace, name, signal) => get('read lease', namespaced(COORDINATION, namespace, 'leases', name), signal),
    createLease: (namespace, lease, signal) => call('create lease', signal, { method: 'POST', path: namespaced(COORDINATION, namespace, 'leases'), body: lease }),
    replaceLease: (namespace, name, lease, signal) =>
      call('replace lease', signal, { method: 'PUT', path: namespaced(COORDINATION, namespace, 'leases', name), body: lease }),
    readConfigMap: (namespace, name, signal) => get('read ConfigMap', namespaced(CORE, namespace, 'configmaps', name), signal),
    createConfigMap: (namespace, configMap, signal) =>
      call('create ConfigMap', signal, { method: 'POST', path: namespaced(CORE, namespace, 'configmaps'), body: configMap }),
    replaceConfigMap: (namespace, name, configMap, signal) =>
      call('replace ConfigMap', signal, { method: 'PUT', path: namespaced(CORE, namespace, 'configmaps', name), body: configMap }),
    readSnapshot: (namespace, name, signal) => get('read VolumeSnapshot', namespaced(SNAPSHOTS, namespace, 'volumesnapshots', name), signal),
    readSnapshotContent: (name, signal) => get('read VolumeSnapshotContent', clusterScoped(SNAPSHOTS, 'volumesnapshotcontents', name), signal),
    readSnapshotClass: (name, signal) => get('read VolumeSnapshotClass', clusterScoped(SNAPSHOTS, 'volumesnapshotclasses', name), signal),
    patchSnapshotContent: (name, patch, signal) =>
      call('patch VolumeSnapshotContent', signal, { method: 'PATCH', path: clusterScoped(SNAPSHOTS, 'volumesnapshotcontents', name), body: patch, contentType: MERGE_PATCH }),
    patchSnapshotContentStatus: (name, patch, signal) =>
      call('patch VolumeSnapshotContent status', signal, { method: 'PATCH', path: `${clusterScoped(SNAPSHOTS, 'volumesnapshotcontents', name)}/status`, body: patch, contentType: MERGE_PATCH }),
    servesSnapshots: async (signal) => {
      try {
        await call('list VolumeSnapshotContents', signal, { method: 'GET', path: clusterScoped(SNAPSHOTS, 'volumesnapshotcontents'), query: { limit: 1 } });
        return true;
      } catch (error) {
        if (isNotFound(error)) return false;
        throw error;
      }
    },
    list: (<K extends ResourceKind>(kind: K, signal?: AbortSignal): Promise<ListResult<ResourceTypes[K]>> =>
      listAll<ResourceTypes[K]>(`list ${kind}`, WATCH_PATHS[kind], signal)) as KubeFacade['list'],
    watch: async (kind, resourceVersion, onEvent, { signal, timeoutSeconds }) => {
      await limiter.take(signal);
      const op = `watch ${kind}`;
      try {
        // Each line is parsed once, here; the informer keeps the object as parsed.
        await transport.stream(
          WATCH_PATHS[kind],
          { watch: true, resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (event) => {
            const { type, object } = event as { type: string; object: ResourceTypes[typeof kind] | V1Status };
            onEvent(type as WatchEventType, object);
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        throw toKubeApiError(op, error);
      }
    },
  };
}

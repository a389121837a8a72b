// Fakes for the controller's unit tests: a fake clock, an in-memory API facade and a scripted provisioner.
import type {
  CoreV1Event,
  V1ConfigMap,
  V1Lease,
  V1ObjectMeta,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Secret,
  V1Status,
  V1StorageClass,
  V1VolumeAttachment,
} from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import type { Clock, TimerHandle } from '../../src/kube/clock.js';
import {
  type JsonPatchOperation,
  type KubeFacade,
  KubeApiError,
  type ListResult,
  type ResourceKind,
  type ResourceTypes,
  type WatchEventType,
} from '../../src/kube/client.js';
import type { OwnedVolume, ProvisionRequest, Provisioner, VolumeLocation } from '../../src/controllers/provision/provisioner.js';
import { createLogger, type Logger } from '../../src/logger.js';
import type { ExpandRequest, ExpandResult, VolumeResizer } from '../../src/controllers/resize/resizer.js';
import { compareQuantities } from '../../src/kube/quantity.js';
import type { VolumeSnapshot, VolumeSnapshotClass, VolumeSnapshotContent } from '../../src/kube/snapshots.js';

/** Lets promise chains and setImmediate callbacks run. */
export async function flush(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export class FakeClock implements Clock {
  private time = 1_700_000_000_000;
  private nextId = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = ++this.nextId;
    this.timers.set(id, { at: this.time + Math.max(0, delayMs), callback });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Delays of pending timers from now, sorted. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time without firing timers, as a process paused by SIGSTOP experiences it. */
  jump(ms: number): void {
    this.time += ms;
  }

  /** Moves time forward, firing due timers in order and letting async work settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await flush();
      let nextId: number | undefined;
      let next: { at: number; callback: () => void } | undefined;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === undefined || timer.at < next.at)) {
          next = timer;
          nextId = id;
        }
      }
      if (next === undefined || nextId === undefined) break;
      this.timers.delete(nextId);
      this.time = Math.max(this.time, next.at);
      next.callback();
    }
    this.time = end;
    await flush();
  }
}

export interface LogLine {
  level: string;
  message: string;
  [field: string]: unknown;
}

/** A real winston logger (formats included) that keeps its JSON lines in memory. */
export function memoryLogger(level: 'error' | 'warn' | 'info' | 'debug' = 'debug'): { logger: Logger; lines: LogLine[]; text: () => string } {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString('utf8');
      raw.push(text);
      for (const line of text.split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { logger: createLogger({ level, format: 'json', stream }), lines, text: () => raw.join('') };
}

export function apiError(status: number, reason: string, message = reason): KubeApiError {
  return new KubeApiError(status, reason, message, 'fake');
}

const clone = <T>(value: T): T => (value === undefined ? value : (structuredClone(value) as T));

type Watcher = { kind: ResourceKind; onEvent: (type: WatchEventType, object: unknown) => void };

function applyJsonPatch(target: Record<string, unknown>, patch: JsonPatchOperation[]): void {
  for (const operation of patch) {
    const parts = operation.path.split('/').slice(1);
    const last = parts.pop() as string;
    let parent: unknown = target;
    for (const part of parts) {
      parent = (parent as Record<string, unknown> | undefined)?.[part];
      if (parent === undefined) {
        if (operation.op === 'add' || operation.op === 'test') throw apiError(422, 'Invalid', `path ${operation.path} does not exist`);
        throw apiError(422, 'Invalid', `path ${operation.path} does not exist`);
      }
    }
    const isArray = Array.isArray(parent);
    const container = parent as Record<string, unknown>;
    const list = parent as unknown[];
    switch (operation.op) {
      case 'test': {
        const actual = isArray ? list[Number(last)] : container[last];
        if (JSON.stringify(actual) !== JSON.stringify(operation.value)) throw apiError(422, 'Invalid', `test failed at ${operation.path}`);
        break;
      }
      case 'remove':
        if (isArray) {
          if (Number(last) >= list.length) throw apiError(422, 'Invalid', 'index out of range');
          list.splice(Number(last), 1);
        } else delete container[last];
        break;
      case 'add':
        if (isArray) {
          if (last === '-') list.push(operation.value);
          else list.splice(Number(last), 0, operation.value);
        } else container[last] = clone(operation.value);
        break;
      case 'replace':
        if (isArray) list[Number(last)] = operation.value;
        else container[last] = operation.value;
        break;
    }
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** An in-memory API server behind the facade interface, with per-method failure injection and watch support. */
export class FakeKube implements KubeFacade {
  readonly claims = new Map<string, V1PersistentVolumeClaim>();
  readonly volumes = new Map<string, V1PersistentVolume>();
  readonly classes = new Map<string, V1StorageClass>();
  readonly attachments = new Map<string, V1VolumeAttachment>();
  readonly snapshotContents = new Map<string, VolumeSnapshotContent>();
  /** namespace/name -> VolumeSnapshot. */
  readonly snapshots = new Map<string, VolumeSnapshot>();
  readonly snapshotClasses = new Map<string, VolumeSnapshotClass>();
  /** Every VolumeSnapshotContent patch: status or object (both merge patches). */
  readonly contentPatches: { name: string; subresource: 'status' | ''; patch: object }[] = [];
  /** Every VolumeAttachment patch: status (merge patch) or object (JSON patch). */
  readonly attachmentPatches: { name: string; subresource: 'status' | ''; patch: unknown }[] = [];
  readonly leases = new Map<string, V1Lease>();
  /** namespace/name -> ConfigMap. */
  readonly configMaps = new Map<string, V1ConfigMap>();
  /** namespace/name -> data (base64 values). */
  readonly secrets = new Map<string, Record<string, string>>();
  /** namespace/name -> labels, annotations and resourceVersion of the Secrets above (when written through the facade). */
  readonly secretMeta = new Map<string, V1ObjectMeta>();
  readonly events: CoreV1Event[] = [];
  readonly eventPatches: { namespace: string; name: string; patch: object }[] = [];
  readonly patches: { name: string; patch: JsonPatchOperation[] }[] = [];
  readonly calls: string[] = [];
  /** Leases as they would go over the wire (JSON), to check serialization. */
  readonly leaseWrites: string[] = [];
  private readonly failures = new Map<string, unknown[]>();
  private readonly hooks = new Map<string, () => Promise<void> | void>();
  private readonly watchers = new Set<Watcher>();
  private version = 100;

  /** The next calls of method throw these errors, in order. */
  fail(method: keyof KubeFacade, ...errors: unknown[]): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), ...errors]);
  }

  /** Runs before every call of method (e.g. to block it on a promise). */
  hook(method: keyof KubeFacade, run: () => Promise<void> | void): void {
    this.hooks.set(method, run);
  }

  private async enter(method: keyof KubeFacade, signal?: AbortSignal): Promise<void> {
    this.calls.push(method);
    await this.hooks.get(method)?.();
    if (signal?.aborted === true) throw signal.reason;
    const queued = this.failures.get(method);
    if (queued !== undefined && queued.length > 0) throw queued.shift();
  }

  private nextVersion(): string {
    this.version += 1;
    return String(this.version);
  }

  private emit(kind: ResourceKind, type: WatchEventType, object: unknown): void {
    for (const watcher of this.watchers) if (watcher.kind === kind) watcher.onEvent(type, clone(object));
  }

  // --- test-side mutations (as other actors in the cluster would make them) ---

  putClaim(claim: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
    const key = `${claim.metadata?.namespace}/${claim.metadata?.name}`;
    const existed = this.claims.has(key);
    const stored = clone(claim);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    this.claims.set(key, stored);
    this.emit('claims', existed ? 'MODIFIED' : 'ADDED', stored);
    return stored;
  }

  removeClaim(namespace: string, name: string): void {
    const stored = this.claims.get(`${namespace}/${name}`);
    if (stored === undefined) return;
    this.claims.delete(`${namespace}/${name}`);
    this.emit('claims', 'DELETED', stored);
  }

  putVolume(volume: V1PersistentVolume): V1PersistentVolume {
    const name = volume.metadata?.name ?? '';
    const existed = this.volumes.has(name);
    const stored = clone(volume);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    this.volumes.set(name, stored);
    this.emit('volumes', existed ? 'MODIFIED' : 'ADDED', stored);
    return stored;
  }

  putClass(storageClass: V1StorageClass): void {
    const stored = clone(storageClass);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    const existed = this.classes.has(stored.metadata.name ?? '');
    this.classes.set(stored.metadata.name ?? '', stored);
    this.emit('storageClasses', existed ? 'MODIFIED' : 'ADDED', stored);
  }

  /** Deletes a StorageClass (classes hold no finalizers). */
  removeClass(name: string): void {
    const stored = this.classes.get(name);
    if (stored === undefined) return;
    this.classes.delete(name);
    this.emit('storageClasses', 'DELETED', stored);
  }

  /** Deletes a PV at once, as an admin removing it after its finalizers are gone. */
  removeVolume(name: string): void {
    const stored = this.volumes.get(name);
    if (stored === undefined) return;
    this.volumes.delete(name);
    this.emit('volumes', 'DELETED', stored);
  }

  /** Creates or replaces a VolumeAttachment, as the attach-detach controller would. */
  putAttachment(attachment: V1VolumeAttachment): V1VolumeAttachment {
    const name = attachment.metadata?.name ?? '';
    const existed = this.attachments.has(name);
    const stored = clone(attachment);
    stored.metadata = { uid: `uid-${name}`, ...stored.metadata, resourceVersion: this.nextVersion() };
    this.attachments.set(name, stored);
    this.emit('attachments', existed ? 'MODIFIED' : 'ADDED', stored);
    return stored;
  }

  /** Deletes a VolumeAttachment as the API server does: at once without finalizers, else it gets a deletionTimestamp. */
  removeAttachment(name: string): void {
    const stored = this.attachments.get(name);
    if (stored === undefined) return;
    if ((stored.metadata?.finalizers ?? []).length > 0) {
      stored.metadata = { ...stored.metadata, deletionTimestamp: new Date(0), resourceVersion: this.nextVersion() };
      this.emit('attachments', 'MODIFIED', stored);
    } else {
      this.attachments.delete(name);
      this.emit('attachments', 'DELETED', stored);
    }
  }

  // --- the facade ---

  async readClaim(namespace: string, name: string, signal?: AbortSignal): Promise<V1PersistentVolumeClaim | undefined> {
    await this.enter('readClaim', signal);
    return clone(this.claims.get(`${namespace}/${name}`));
  }

  async readVolume(name: string, signal?: AbortSignal): Promise<V1PersistentVolume | undefined> {
    await this.enter('readVolume', signal);
    return clone(this.volumes.get(name));
  }

  async readSecretData(namespace: string, name: string, signal?: AbortSignal): Promise<Record<string, string> | undefined> {
    await this.enter('readSecretData', signal);
    return clone(this.secrets.get(`${namespace}/${name}`));
  }

  async readSecret(namespace: string, name: string, signal?: AbortSignal): Promise<V1Secret | undefined> {
    await this.enter('readSecret', signal);
    return this.readSecretUnchecked(namespace, name);
  }

  async createSecret(namespace: string, secret: V1Secret, signal?: AbortSignal): Promise<V1Secret> {
    await this.enter('createSecret', signal);
    const name = secret.metadata?.name ?? '';
    const key = `${namespace}/${name}`;
    if (this.secrets.has(key)) throw apiError(409, 'AlreadyExists', `secrets "${name}" already exists`);
    this.storeSecret(namespace, name, secret);
    return (await this.readSecretUnchecked(namespace, name))!;
  }

  async replaceSecret(namespace: string, name: string, secret: V1Secret, signal?: AbortSignal): Promise<V1Secret> {
    await this.enter('replaceSecret', signal);
    const key = `${namespace}/${name}`;
    if (!this.secrets.has(key)) throw apiError(404, 'NotFound', `secrets "${name}" not found`);
    if (secret.metadata?.resourceVersion !== this.secretMeta.get(key)?.resourceVersion) {
      throw apiError(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified`);
    }
    this.storeSecret(namespace, name, secret);
    return (await this.readSecretUnchecked(namespace, name))!;
  }

  /** Test side: a Secret with metadata (labels, annotations), as another actor would create it. */
  putSecret(namespace: string, name: string, data: Record<string, string>, meta: V1ObjectMeta = {}): void {
    this.storeSecret(namespace, name, { metadata: meta, data });
  }

  /** Test side: a Secret deleted by someone else. */
  deleteSecret(namespace: string, name: string): void {
    this.secrets.delete(`${namespace}/${name}`);
    this.secretMeta.delete(`${namespace}/${name}`);
  }

  private storeSecret(namespace: string, name: string, secret: V1Secret): void {
    const key = `${namespace}/${name}`;
    this.secrets.set(key, clone(secret.data ?? {}));
    const { labels, annotations } = secret.metadata ?? {};
    this.secretMeta.set(key, clone({ ...(labels && { labels }), ...(annotations && { annotations }), resourceVersion: this.nextVersion() }));
  }

  private async readSecretUnchecked(namespace: string, name: string): Promise<V1Secret | undefined> {
    const data = this.secrets.get(`${namespace}/${name}`);
    return data === undefined ? undefined : { metadata: { name, namespace, ...clone(this.secretMeta.get(`${namespace}/${name}`)) }, data: clone(data) };
  }

  async createVolume(volume: V1PersistentVolume, signal?: AbortSignal): Promise<V1PersistentVolume> {
    await this.enter('createVolume', signal);
    const name = volume.metadata?.name ?? '';
    if (this.volumes.has(name)) throw apiError(409, 'AlreadyExists', `persistentvolumes "${name}" already exists`);
    const stored = clone(volume);
    stored.metadata = { ...stored.metadata, uid: `uid-${name}`, resourceVersion: this.nextVersion() };
    this.volumes.set(name, stored);
    this.emit('volumes', 'ADDED', stored);
    return clone(stored);
  }

  async deleteVolume(name: string, uid?: string, signal?: AbortSignal): Promise<boolean> {
    await this.enter('deleteVolume', signal);
    const stored = this.volumes.get(name);
    if (stored === undefined) return false;
    if (uid !== undefined && stored.metadata?.uid !== uid) return false;
    if ((stored.metadata?.finalizers ?? []).length > 0) {
      stored.metadata = { ...stored.metadata, deletionTimestamp: new Date(0), resourceVersion: this.nextVersion() };
      this.emit('volumes', 'MODIFIED', stored);
    } else {
      this.volumes.delete(name);
      this.emit('volumes', 'DELETED', stored);
    }
    return true;
  }

  async patchVolume(name: string, patch: JsonPatchOperation[], signal?: AbortSignal): Promise<V1PersistentVolume> {
    await this.enter('patchVolume', signal);
    this.patches.push({ name, patch: clone(patch) });
    const stored = this.volumes.get(name);
    if (stored === undefined) throw apiError(404, 'NotFound', `persistentvolumes "${name}" not found`);
    const copy = clone(stored) as unknown as Record<string, unknown>;
    applyJsonPatch(copy, patch);
    const updated = copy as V1PersistentVolume;
    updated.metadata = { ...updated.metadata, resourceVersion: this.nextVersion() };
    if (updated.metadata.deletionTimestamp != null && (updated.metadata.finalizers ?? []).length === 0) {
      this.volumes.delete(name);
      this.emit('volumes', 'DELETED', updated);
    } else {
      this.volumes.set(name, updated);
      this.emit('volumes', 'MODIFIED', updated);
    }
    return clone(updated);
  }

  /** Every claim status patch, as sent. */
  readonly claimStatusPatches: { key: string; patch: unknown }[] = [];

  async patchClaimStatus(namespace: string, name: string, patch: object, signal?: AbortSignal): Promise<V1PersistentVolumeClaim> {
    await this.enter('patchClaimStatus', signal);
    this.claimStatusPatches.push({ key: `${namespace}/${name}`, patch: clone(patch) });
    const key = `${namespace}/${name}`;
    const stored = this.claims.get(key);
    if (stored === undefined) throw apiError(404, 'NotFound', `persistentvolumeclaims "${name}" not found`);
    const { metadata, status } = patch as { metadata?: { resourceVersion?: string }; status?: Record<string, unknown> };
    if (metadata?.resourceVersion !== undefined && metadata.resourceVersion !== stored.metadata?.resourceVersion) {
      throw apiError(409, 'Conflict', `Operation cannot be fulfilled on persistentvolumeclaims "${name}": the object has been modified`);
    }
    const updated = clone(stored);
    // The status subresource takes only the status, merged as RFC 7386 says (null removes a field).
    updated.status = mergePatch(updated.status ?? {}, JSON.parse(JSON.stringify(status ?? {}))) as V1PersistentVolumeClaim['status'];
    updated.metadata = { ...updated.metadata, resourceVersion: this.nextVersion() };
    this.claims.set(key, updated);
    this.emit('claims', 'MODIFIED', updated);
    return clone(updated);
  }

  async patchAttachmentStatus(name: string, patch: object, signal?: AbortSignal): Promise<V1VolumeAttachment> {
    await this.enter('patchAttachmentStatus', signal);
    this.attachmentPatches.push({ name, subresource: 'status', patch: clone(patch) });
    const stored = this.attachments.get(name);
    if (stored === undefined) throw apiError(404, 'NotFound', `volumeattachments.storage.k8s.io "${name}" not found`);
    const updated = clone(stored);
    // A merge patch of the status only, as the status subresource takes it: null removes a field.
    const status: Record<string, unknown> = { ...(updated.status ?? {}) };
    for (const [key, value] of Object.entries((patch as { status?: Record<string, unknown> }).status ?? {})) {
      if (value === null) delete status[key];
      else status[key] = clone(value);
    }
    updated.status = status as unknown as V1VolumeAttachment['status'];
    updated.metadata = { ...updated.metadata, resourceVersion: this.nextVersion() };
    this.attachments.set(name, updated);
    this.emit('attachments', 'MODIFIED', updated);
    return clone(updated);
  }

  async patchAttachment(name: string, patch: JsonPatchOperation[], signal?: AbortSignal): Promise<V1VolumeAttachment> {
    await this.enter('patchAttachment', signal);
    this.attachmentPatches.push({ name, subresource: '', patch: clone(patch) });
    const stored = this.attachments.get(name);
    if (stored === undefined) throw apiError(404, 'NotFound', `volumeattachments.storage.k8s.io "${name}" not found`);
    const copy = clone(stored) as unknown as Record<string, unknown>;
    applyJsonPatch(copy, patch);
    const updated = copy as unknown as V1VolumeAttachment;
    updated.metadata = { ...updated.metadata, resourceVersion: this.nextVersion() };
    if (updated.metadata.deletionTimestamp != null && (updated.metadata.finalizers ?? []).length === 0) {
      this.attachments.delete(name);
      this.emit('attachments', 'DELETED', updated);
    } else {
      this.attachments.set(name, updated);
      this.emit('attachments', 'MODIFIED', updated);
    }
    return clone(updated);
  }

  async createEvent(namespace: string, event: CoreV1Event, signal?: AbortSignal): Promise<CoreV1Event> {
    await this.enter('createEvent', signal);
    const stored = clone(event);
    stored.metadata = { ...stored.metadata, namespace };
    this.events.push(stored);
    return stored;
  }

  async patchEvent(namespace: string, name: string, patch: object, signal?: AbortSignal): Promise<CoreV1Event> {
    await this.enter('patchEvent', signal);
    const event = this.events.find((e) => e.metadata?.name === name && e.metadata?.namespace === namespace);
    if (event === undefined) throw apiError(404, 'NotFound', `events "${name}" not found`);
    this.eventPatches.push({ namespace, name, patch });
    Object.assign(event, patch);
    return clone(event);
  }

  async readLease(namespace: string, name: string, signal?: AbortSignal): Promise<V1Lease | undefined> {
    await this.enter('readLease', signal);
    return clone(this.leases.get(`${namespace}/${name}`));
  }

  async createLease(namespace: string, lease: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    await this.enter('createLease', signal);
    this.leaseWrites.push(JSON.stringify(lease));
    const key = `${namespace}/${lease.metadata?.name}`;
    if (this.leases.has(key)) throw apiError(409, 'AlreadyExists', 'lease exists');
    const stored = clone(lease);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    this.leases.set(key, stored);
    return clone(stored);
  }

  async replaceLease(namespace: string, name: string, lease: V1Lease, signal?: AbortSignal): Promise<V1Lease> {
    await this.enter('replaceLease', signal);
    this.leaseWrites.push(JSON.stringify(lease));
    const key = `${namespace}/${name}`;
    const current = this.leases.get(key);
    if (current === undefined) throw apiError(404, 'NotFound', 'lease not found');
    if (current.metadata?.resourceVersion !== lease.metadata?.resourceVersion) throw apiError(409, 'Conflict', 'the object has been modified');
    const stored = clone(lease);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    this.leases.set(key, stored);
    return clone(stored);
  }

  async readConfigMap(namespace: string, name: string, signal?: AbortSignal): Promise<V1ConfigMap | undefined> {
    await this.enter('readConfigMap', signal);
    return clone(this.configMaps.get(`${namespace}/${name}`));
  }

  async createConfigMap(namespace: string, configMap: V1ConfigMap, signal?: AbortSignal): Promise<V1ConfigMap> {
    await this.enter('createConfigMap', signal);
    const key = `${namespace}/${configMap.metadata?.name}`;
    if (this.configMaps.has(key)) throw apiError(409, 'AlreadyExists', 'configmap exists');
    const stored = clone(configMap);
    stored.metadata = { ...stored.metadata, namespace, resourceVersion: this.nextVersion() };
    this.configMaps.set(key, stored);
    return clone(stored);
  }

  async replaceConfigMap(namespace: string, name: string, configMap: V1ConfigMap, signal?: AbortSignal): Promise<V1ConfigMap> {
    await this.enter('replaceConfigMap', signal);
    const key = `${namespace}/${name}`;
    const current = this.configMaps.get(key);
    if (current === undefined) throw apiError(404, 'NotFound', 'configmap not found');
    if (current.metadata?.resourceVersion !== configMap.metadata?.resourceVersion) throw apiError(409, 'Conflict', 'the object has been modified');
    const stored = clone(configMap);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    this.configMaps.set(key, stored);
    return clone(stored);
  }

  /** Writes a ConfigMap as another writer would (a new resourceVersion). */
  putConfigMap(namespace: string, configMap: V1ConfigMap): void {
    const stored = clone(configMap);
    stored.metadata = { ...stored.metadata, namespace, resourceVersion: this.nextVersion() };
    this.configMaps.set(`${namespace}/${configMap.metadata?.name}`, stored);
  }

  async readSnapshot(namespace: string, name: string, signal?: AbortSignal): Promise<VolumeSnapshot | undefined> {
    await this.enter('readSnapshot', signal);
    return clone(this.snapshots.get(`${namespace}/${name}`));
  }

  async readSnapshotContent(name: string, signal?: AbortSignal): Promise<VolumeSnapshotContent | undefined> {
    await this.enter('readSnapshotContent', signal);
    return clone(this.snapshotContents.get(name));
  }

  async readSnapshotClass(name: string, signal?: AbortSignal): Promise<VolumeSnapshotClass | undefined> {
    await this.enter('readSnapshotClass', signal);
    return clone(this.snapshotClasses.get(name));
  }

  async patchSnapshotContent(name: string, patch: object, signal?: AbortSignal): Promise<VolumeSnapshotContent> {
    await this.enter('patchSnapshotContent', signal);
    return this.mergeContent(name, '', patch);
  }

  async patchSnapshotContentStatus(name: string, patch: object, signal?: AbortSignal): Promise<VolumeSnapshotContent> {
    await this.enter('patchSnapshotContentStatus', signal);
    return this.mergeContent(name, 'status', patch);
  }

  async servesSnapshots(signal?: AbortSignal): Promise<boolean> {
    await this.enter('servesSnapshots', signal);
    return true;
  }

  /** Writes a VolumeSnapshotContent as the snapshot-controller would. */
  putSnapshotContent(content: VolumeSnapshotContent): VolumeSnapshotContent {
    const name = content.metadata?.name ?? '';
    const existed = this.snapshotContents.has(name);
    const stored = clone(content);
    stored.metadata = { ...stored.metadata, resourceVersion: this.nextVersion() };
    this.snapshotContents.set(name, stored);
    this.emit('snapshotContents', existed ? 'MODIFIED' : 'ADDED', stored);
    return clone(stored);
  }

  private mergeContent(name: string, subresource: 'status' | '', patch: object): VolumeSnapshotContent {
    this.contentPatches.push({ name, subresource, patch: clone(patch) });
    const stored = this.snapshotContents.get(name);
    if (stored === undefined) throw apiError(404, 'NotFound', `volumesnapshotcontents.snapshot.storage.k8s.io "${name}" not found`);
    const merged = mergePatch(stored, patch) as VolumeSnapshotContent;
    merged.metadata = { ...merged.metadata, resourceVersion: this.nextVersion() };
    const gone = merged.metadata.deletionTimestamp !== undefined && (merged.metadata.finalizers ?? []).length === 0;
    if (gone) {
      this.snapshotContents.delete(name);
      this.emit('snapshotContents', 'DELETED', merged);
    } else {
      this.snapshotContents.set(name, merged);
      this.emit('snapshotContents', 'MODIFIED', merged);
    }
    return clone(merged);
  }

  async list<K extends ResourceKind>(kind: K, signal?: AbortSignal): Promise<ListResult<ResourceTypes[K]>> {
    await this.enter('list', signal);
    const source = kind === 'claims' ? this.claims : kind === 'volumes' ? this.volumes : kind === 'attachments' ? this.attachments
      : kind === 'snapshotContents' ? this.snapshotContents : this.classes;
    return { items: [...source.values()].map((item) => clone(item)) as ResourceTypes[K][], resourceVersion: String(this.version) };
  }

  async watch<K extends ResourceKind>(
    kind: K,
    _resourceVersion: string,
    onEvent: (type: WatchEventType, object: ResourceTypes[K] | V1Status) => void,
    options: { signal: AbortSignal; timeoutSeconds: number },
  ): Promise<void> {
    await this.enter('watch', options.signal);
    const watcher: Watcher = { kind, onEvent: onEvent as Watcher['onEvent'] };
    this.watchers.add(watcher);
    await new Promise<void>((resolve) => {
      if (options.signal.aborted) resolve();
      options.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.watchers.delete(watcher);
  }
}

export interface FakeProvisionerCall {
  op: 'provision' | 'delete' | 'listOwnedVolumes' | 'deleteOwnedVolume' | 'recordVolumeHasPv';
  name: string;
}

/** A provisioner whose results are scripted per call; by default it succeeds and remembers its volumes. */
export class FakeProvisioner implements Provisioner {
  readonly calls: FakeProvisionerCall[] = [];
  readonly images = new Set<string>();
  readonly owned: OwnedVolume[] = [];
  provisionErrors: unknown[] = [];
  deleteErrors: unknown[] = [];
  /** Where owned volumes live; a location listed in failingLocations fails its scan with that error. */
  locations: string[] = ['rbd'];
  readonly failingLocations = new Map<string, unknown>();
  /** When set, provision waits for it (to hold work in flight). */
  provisionGate: Promise<void> | undefined;
  lastSignal: AbortSignal | undefined;

  async provision(req: ProvisionRequest, signal: AbortSignal): Promise<V1PersistentVolume> {
    this.calls.push({ op: 'provision', name: req.pvName });
    this.lastSignal = signal;
    if (this.provisionGate !== undefined) await this.provisionGate;
    if (signal.aborted) throw signal.reason;
    const error = this.provisionErrors.shift();
    if (error !== undefined) throw error;
    this.images.add(req.pvName);
    return {
      metadata: { annotations: { 'rbd.provisioner.ceph.io/image': req.pvName } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        volumeMode: 'Filesystem',
        csi: { driver: 'rbd.csi.ceph.com', volumeHandle: req.pvName },
      },
    };
  }

  async delete(pv: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    const name = pv.metadata?.name ?? '';
    this.calls.push({ op: 'delete', name });
    this.lastSignal = signal;
    const error = this.deleteErrors.shift();
    if (error !== undefined) throw error;
    this.images.delete(name); // gone already counts as deleted
  }

  volumeLocations(_classes: V1StorageClass[]): VolumeLocation[] {
    return this.locations.map((id) => ({ id }));
  }

  async listOwnedVolumes(location: VolumeLocation, _signal: AbortSignal): Promise<OwnedVolume[]> {
    this.calls.push({ op: 'listOwnedVolumes', name: location.id });
    const failure = this.failingLocations.get(location.id);
    if (failure !== undefined) throw failure;
    return this.owned.filter((volume) => volume.location === location.id && this.images.has(volume.pvName));
  }

  async deleteOwnedVolume(volume: OwnedVolume, _signal: AbortSignal): Promise<void> {
    this.calls.push({ op: 'deleteOwnedVolume', name: volume.pvName });
    this.images.delete(volume.pvName);
  }

  async recordVolumeHasPv(volume: OwnedVolume, _signal: AbortSignal): Promise<void> {
    this.calls.push({ op: 'recordVolumeHasPv', name: volume.pvName });
    volume.state = 'pv-may-exist';
  }

  count(op: FakeProvisionerCall['op']): number {
    return this.calls.filter((call) => call.op === op).length;
  }
}

export const PROVISIONER = 'rbd.provisioner.ceph.io';

export function makeClass(name = 'fast', extra: Partial<V1StorageClass> = {}): V1StorageClass {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner: PROVISIONER, ...extra };
}

export function makeClaim(name = 'data', options: { uid?: string; namespace?: string; className?: string; annotations?: Record<string, string> } = {}): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name,
      namespace: options.namespace ?? 'default',
      uid: options.uid ?? `uid-${name}`,
      resourceVersion: '7',
      annotations: options.annotations ?? { 'volume.kubernetes.io/storage-provisioner': PROVISIONER },
    },
    spec: { storageClassName: options.className ?? 'fast', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  };
}

export function makeVolume(name: string, options: { phase?: string; policy?: string; finalizers?: string[]; deleting?: boolean; claim?: { namespace: string; name: string; uid: string }; provisionedBy?: string } = {}): V1PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: '11',
      annotations: { 'pv.kubernetes.io/provisioned-by': options.provisionedBy ?? PROVISIONER },
      finalizers: options.finalizers ?? ['kubernetes.io/pv-protection', 'external-provisioner.volume.kubernetes.io/finalizer'],
      ...(options.deleting === true ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: {
      capacity: { storage: '1Gi' },
      storageClassName: 'fast',
      persistentVolumeReclaimPolicy: options.policy ?? 'Delete',
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', ...(options.claim ?? { namespace: 'default', name: 'data', uid: 'uid-data' }) },
    },
    status: { phase: options.phase ?? 'Released' },
  };
}

export const CSI_DRIVER = 'rbd.csi.ceph.com';

/** A VolumeAttachment as kube-controller-manager's attach-detach controller creates it. */
export function makeAttachment(name: string, options: { pv?: string; attacher?: string; node?: string; attached?: boolean; finalizers?: string[]; deleting?: boolean; inline?: boolean } = {}): V1VolumeAttachment {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'VolumeAttachment',
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: '21',
      ...(options.finalizers === undefined ? {} : { finalizers: options.finalizers }),
      ...(options.deleting === true ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: {
      attacher: options.attacher ?? CSI_DRIVER,
      nodeName: options.node ?? 'node-1',
      source: options.inline === true
        ? { inlineVolumeSpec: { csi: { driver: options.attacher ?? CSI_DRIVER, volumeHandle: 'inline' } } }
        : { persistentVolumeName: options.pv ?? 'pvc-u1' },
    },
    ...(options.attached === undefined ? {} : { status: { attached: options.attached } }),
  };
}

/** A bound CSI PV: ours by default (provisioned-by PROVISIONER, driver rbd.csi.ceph.com). */
export function makeCsiVolume(name: string, options: { provisionedBy?: string | null; driver?: string | null } = {}): V1PersistentVolume {
  const volume = makeVolume(name, { phase: 'Bound', ...(options.provisionedBy ? { provisionedBy: options.provisionedBy } : {}) });
  if (options.provisionedBy === null) delete volume.metadata!.annotations;
  if (options.driver !== null) volume.spec = { ...volume.spec, csi: { driver: options.driver ?? CSI_DRIVER, volumeHandle: name } };
  return volume;
}

/** A volume resizer over in-memory sizes (PV name -> quantity); scripted errors; counts the grows. */
export class FakeResizer implements VolumeResizer {
  readonly sizes = new Map<string, string>();
  readonly calls: ExpandRequest[] = [];
  grows = 0;
  errors: unknown[] = [];
  /** When set, expand waits for it (to hold a resize in flight). */
  gate: Promise<void> | undefined;

  async expand(req: ExpandRequest, signal: AbortSignal): Promise<ExpandResult> {
    this.calls.push(req);
    if (this.gate !== undefined) await this.gate;
    if (signal.aborted) throw signal.reason;
    const error = this.errors.shift();
    if (error !== undefined) throw error;
    const name = req.volume.metadata?.name ?? '';
    const current = this.sizes.get(name) ?? req.volume.spec?.capacity?.['storage'] ?? '0';
    if (compareQuantities(current, req.size) >= 0) return { capacity: current, grown: false };
    this.sizes.set(name, req.size);
    this.grows += 1;
    return { capacity: req.size, grown: true };
  }
}

/** The image of legacyPv(): the retired provisioner's naming, `kubernetes-dynamic-pvc-<uuid>`. */
export const LEGACY_IMAGE = 'kubernetes-dynamic-pvc-2b0c6a9e-6f0e-11e9-8f9e-2a86e4085a59';

/** A PV exactly as external-storage's rbd-provisioner (and sig-storage-lib's controller) wrote it. */
export function legacyPv(overrides: { policy?: string; phase?: string; className?: string } = {}): V1PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: 'pvc-6f0e11e9-8f9e-11e9-a1b2-0242ac110002',
      uid: 'old-pv-uid',
      annotations: { 'pv.kubernetes.io/provisioned-by': 'ceph.com/rbd', rbdProvisionerIdentity: 'ceph.com/rbd' },
    },
    spec: {
      accessModes: ['ReadWriteOnce'],
      capacity: { storage: '1Gi' },
      claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: 'apps', name: 'data', uid: 'claim-uid-1', resourceVersion: '42' },
      persistentVolumeReclaimPolicy: overrides.policy ?? 'Delete',
      storageClassName: overrides.className ?? 'rbd',
      rbd: {
        monitors: ['10.0.0.1:6789', '10.0.0.2:6789'],
        pool: 'kube',
        image: LEGACY_IMAGE,
        user: 'kube',
        secretRef: { name: 'ceph-secret-user', namespace: 'apps' },
        fsType: 'ext4',
      },
    },
    status: { phase: overrides.phase ?? 'Bound' },
  };
}


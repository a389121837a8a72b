// Records core/v1 Events (the API kubectl describe shows). Repeated identical events within a window bump the count
// of the first instead of creating new objects, like client-go's correlator. Recording never throws and never blocks
// the caller: an event is worth less than the operation it describes.
import type { CoreV1Event, KubernetesObject } from '@kubernetes/client-node';
import type { Clock } from './clock.js';
import { CLUSTER_SCOPED_EVENT_NAMESPACE, type KubeFacade, isNotFound } from './client.js';
import { type Logger, describeError, redactText } from '../logger.js';

export type EventType = 'Normal' | 'Warning';

export interface ObjectReference {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export function referenceTo(object: KubernetesObject, kind: string, apiVersion = 'v1'): ObjectReference {
  const meta = object.metadata ?? {};
  return {
    apiVersion,
    kind,
    name: meta.name ?? '',
    ...(meta.namespace === undefined ? {} : { namespace: meta.namespace }),
    ...(meta.uid === undefined ? {} : { uid: meta.uid }),
    ...(meta.resourceVersion === undefined ? {} : { resourceVersion: meta.resourceVersion }),
  };
}

export const MAX_EVENT_MESSAGE_BYTES = 1024;

/** Cuts to maxBytes of UTF-8 without splitting a character, marking the cut. */
export function truncateUtf8(text: string, maxBytes = MAX_EVENT_MESSAGE_BYTES): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const marker = '...';
  let bytes = 0;
  let out = '';
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > maxBytes - marker.length) break;
    bytes += size;
    out += char;
  }
  return out + marker;
}

export interface EventRecorder {
  event(ref: ObjectReference, type: EventType, reason: string, message: string): void;
  /** Resolves when every event recorded so far has been sent (or failed). */
  flush(): Promise<void>;
}

export interface EventRecorderOptions {
  kube: Pick<KubeFacade, 'createEvent' | 'patchEvent'>;
  /** source.component / reportingComponent: the provisioner name. */
  component: string;
  /** reportingInstance: the replica's identity. */
  instance: string;
  clock: Clock;
  logger: Logger;
  aggregationWindowMs?: number;
  maxTracked?: number;
  /**
   * Whether this replica may post events now (e.g. only while it leads). Asked when an event is recorded and again
   * right before it is sent; when false the event is dropped. Default: always.
   */
  mayEmit?: () => boolean;
}

interface Tracked {
  namespace: string;
  name: string | undefined;
  count: number;
  lastSeen: number;
  chain: Promise<void>;
}

const MAX_REPORTING_LENGTH = 128;

export function createEventRecorder(options: EventRecorderOptions): EventRecorder {
  const window = options.aggregationWindowMs ?? 10 * 60_000;
  const maxTracked = options.maxTracked ?? 4096;
  const tracked = new Map<string, Tracked>();
  const pending = new Set<Promise<void>>();
  let sequence = 0;
  const mayEmit = options.mayEmit ?? (() => true);

  function dropped(ref: ObjectReference, reason: string): void {
    options.logger.debug('not recording event: this replica may not act now', { reason, object: `${ref.kind}/${ref.namespace === undefined ? '' : ref.namespace + '/'}${ref.name}` });
  }

  function uniqueName(base: string): string {
    sequence = (sequence + 1) % 0x10000;
    const stamp = (BigInt(Math.floor(Date.now())) * 1_000_000n + BigInt(sequence)).toString(16);
    return `${base.slice(0, 253 - stamp.length - 1)}.${stamp}`;
  }

  async function send(ref: ObjectReference, type: EventType, reason: string, message: string, entry: Tracked, count: number): Promise<void> {
    // Asked again here: an event recorded while leading may reach this point only after the lease is gone.
    if (!mayEmit()) return dropped(ref, reason);
    const now = new Date();
    if (entry.name !== undefined) {
      try {
        await options.kube.patchEvent(entry.namespace, entry.name, { count, lastTimestamp: now.toISOString() });
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
        // Expired or deleted: start a new one.
        entry.name = undefined;
        entry.count = 1;
        count = 1;
      }
    }
    const name = uniqueName(ref.name);
    const event: CoreV1Event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace: entry.namespace },
      involvedObject: {
        apiVersion: ref.apiVersion,
        kind: ref.kind,
        name: ref.name,
        ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }),
        ...(ref.uid === undefined ? {} : { uid: ref.uid }),
        ...(ref.resourceVersion === undefined ? {} : { resourceVersion: ref.resourceVersion }),
      },
      reason,
      message,
      type,
      source: { component: options.component },
      reportingComponent: options.component.slice(0, MAX_REPORTING_LENGTH),
      reportingInstance: options.instance.slice(0, MAX_REPORTING_LENGTH),
      firstTimestamp: now,
      lastTimestamp: now,
      count,
    };
    await options.kube.createEvent(entry.namespace, event);
    entry.name = name;
  }

  return {
    event(ref, type, reason, rawMessage) {
      if (!mayEmit()) return dropped(ref, reason);
      const message = truncateUtf8(redactText(rawMessage));
      const now = options.clock.now();
      const key = `${ref.uid ?? `${ref.namespace ?? ''}/${ref.name}`}\u0000${type}\u0000${reason}\u0000${message}`;
      let entry = tracked.get(key);
      if (entry === undefined || now - entry.lastSeen > window) {
        entry = { namespace: ref.namespace ?? CLUSTER_SCOPED_EVENT_NAMESPACE, name: undefined, count: 0, lastSeen: now, chain: Promise.resolve() };
        tracked.delete(key);
        tracked.set(key, entry);
        if (tracked.size > maxTracked) tracked.delete(tracked.keys().next().value as string);
      }
      entry.count += 1;
      entry.lastSeen = now;
      const current = entry;
      const count = entry.count;
      // One request at a time per identical event, so a burst patches one object instead of creating several.
      const sent = current.chain
        .then(() => send(ref, type, reason, message, current, count))
        .catch((error: unknown) => {
          options.logger.warn('could not record event', { reason, object: `${ref.kind}/${ref.namespace === undefined ? '' : ref.namespace + '/'}${ref.name}`, error: describeError(error) });
        });
      current.chain = sent;
      pending.add(sent);
      void sent.finally(() => pending.delete(sent));
    },
    async flush() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

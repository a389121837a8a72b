// Fencing for RBD, the way librbd's exclusive lock fences a dead owner: the leader publishes the address of every
// RADOS client it opens (in the Lease, before the client's first operation), and a new leader blocklists each of
// them on the OSDs before it acts. A blocklisted client's calls, even those already inside librbd when its process
// was paused, fail with EBLOCKLISTED (ESHUTDOWN) at the OSDs instead of landing.
//
// Address format: rados_getaddrs prints the client's addrvec; on Pacific a connected client's is one untyped entry,
// "127.0.0.1:0/3295052206" (IP, port 0, the connection's random nonce), which rados_blocklist_add takes as it is and
// `ceph osd blocklist ls` lists the same way. A vector of several ("[v2:...,v1:...]") shares IP and nonce, which is
// what the OSDs match, so Cluster.clientAddress() keeps its first entry. The nonce is new for every connection: a
// replica that leads again later gets fresh clients, which no earlier blocklist entry matches.
import { Cluster, type ConnectOptions, type PublicTarget } from '../ceph/index.js';
import type { Fencer } from '../controllers/fencing.js';
import { type Logger, describeError } from '../logger.js';
import type { SecretRef } from './parameters.js';
import type { SecretReader } from './provisioner.js';

/** The Lease annotation that lists the leader's Ceph clients (JSON, see FencingRecord). */
export const CEPH_CLIENTS_ANNOTATION = 'rbd.provisioner.ceph.io/ceph-clients';

/**
 * How long the OSDs refuse a fenced client. One hour, Ceph's own default and what librbd's exclusive lock uses:
 * far longer than anything the deposed process can still have in flight (its OSD operations time out after
 * --ceph-osd-op-timeout, and it checks its lease before every new call), while entries do not pile up in the OSD
 * map across many failovers. A fenced address is never reused: reconnecting gets a new nonce.
 */
export const FENCE_EXPIRE_SECONDS = 3600;

/** One RADOS client of the leader: where, as whom, which Secret held the key (never the key), its address. */
export interface CephClientEntry {
  monitors: string;
  adminId: string;
  secretNamespace: string;
  secretName: string;
  address: string;
}

/** The annotation's value: {"version":1,"clients":[CephClientEntry...]}. */
export interface FencingRecord {
  version: 1;
  clients: CephClientEntry[];
}

export class FencingRecordError extends Error {
  override readonly name = 'FencingRecordError';
}

export function encodeFencingRecord(clients: readonly CephClientEntry[]): string {
  const record: FencingRecord = { version: 1, clients: clients.map((c) => ({ ...c })) };
  return JSON.stringify(record);
}

/** Parses and checks a record; FencingRecordError when it is not one (a record we cannot read cannot be fenced). */
export function decodeFencingRecord(text: string): CephClientEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FencingRecordError(`${CEPH_CLIENTS_ANNOTATION} is not JSON`);
  }
  const record = value as Partial<FencingRecord> | null;
  if (record === null || typeof record !== 'object' || record.version !== 1 || !Array.isArray(record.clients)) {
    throw new FencingRecordError(`${CEPH_CLIENTS_ANNOTATION} is not a version 1 record`);
  }
  return record.clients.map((client: unknown, i) => {
    const c = client as Record<string, unknown> | null;
    const fields = ['monitors', 'adminId', 'secretNamespace', 'secretName', 'address'] as const;
    for (const field of fields) {
      if (c === null || typeof c !== 'object' || typeof c[field] !== 'string' || c[field] === '') {
        throw new FencingRecordError(`${CEPH_CLIENTS_ANNOTATION}: clients[${i}].${field} must be a non-empty string`);
      }
    }
    return { monitors: c!['monitors'], adminId: c!['adminId'], secretNamespace: c!['secretNamespace'], secretName: c!['secretName'], address: c!['address'] } as CephClientEntry;
  });
}

/** This replica's own clients, as it publishes them. Cleared when it stops leading (its connections are dropped). */
export class CephClientRecord {
  private clients: CephClientEntry[] = [];

  /** Adds the client of a new connection; returns the record to publish. */
  add(target: PublicTarget, address: string): string {
    const origin = target.origin ?? {};
    const secretNamespace = origin['secretNamespace'] ?? '';
    const secretName = origin['secretName'] ?? '';
    if (secretNamespace === '' || secretName === '') {
      // A successor could not read a key to fence it with; refuse the connection rather than leave it unfenceable.
      throw new FencingRecordError(`connection to ${target.monitors} as ${target.user} does not say which Secret holds its key`);
    }
    this.clients = [
      ...this.clients.filter((c) => c.address !== address),
      { monitors: target.monitors, adminId: target.user, secretNamespace, secretName, address },
    ];
    return encodeFencingRecord(this.clients);
  }

  clear(): void {
    this.clients = [];
  }

  get size(): number {
    return this.clients.length;
  }
}

export interface RbdFencerOptions {
  readSecret: SecretReader;
  /** Opens a short-lived connection for blocklisting (not from the shared pool: it must not be published). */
  connect: (options: ConnectOptions) => Promise<Cluster>;
  logger: Logger;
  expireSeconds?: number;
}

/**
 * Blocklists every client of a record. Clients are grouped by cluster (monitors); each cluster is fenced with the
 * first listed credentials that work (any user whose caps allow `osd blocklist add`, which `profile rbd` does), so
 * one deleted Secret does not block failover while another listed one for the same cluster still works.
 */
export class RbdFencer implements Fencer {
  constructor(private readonly options: RbdFencerOptions) {}

  async fence(previousHolderData: string, signal: AbortSignal): Promise<void> {
    const clients = decodeFencingRecord(previousHolderData);
    const byCluster = new Map<string, CephClientEntry[]>();
    for (const client of clients) byCluster.set(client.monitors, [...(byCluster.get(client.monitors) ?? []), client]);
    // Every cluster, even when one fails: the error of the first failure is raised after all were tried.
    const results = await Promise.allSettled([...byCluster.entries()].map(([monitors, entries]) => this.fenceCluster(monitors, entries, signal)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async fenceCluster(monitors: string, entries: CephClientEntry[], signal: AbortSignal): Promise<void> {
    const addresses = [...new Set(entries.map((e) => e.address))];
    const credentials = new Map<string, { adminId: string; secret: SecretRef }>();
    for (const e of entries) credentials.set(`${e.adminId}\n${e.secretNamespace}\n${e.secretName}`, { adminId: e.adminId, secret: { namespace: e.secretNamespace, name: e.secretName } });
    let lastError: unknown;
    for (const { adminId, secret } of credentials.values()) {
      signal.throwIfAborted();
      let cluster: Cluster;
      try {
        const key = await this.options.readSecret(secret, signal);
        cluster = await this.options.connect({ monitors, user: adminId, key });
      } catch (err) {
        lastError = err;
        this.options.logger.warn('fencing: cannot connect with these credentials; trying the next listed', { monitors, adminId, secret: `${secret.namespace}/${secret.name}`, error: describeError(err) });
        continue;
      }
      try {
        for (const address of addresses) {
          signal.throwIfAborted();
          await cluster.blocklist(address, this.options.expireSeconds ?? FENCE_EXPIRE_SECONDS);
          this.options.logger.info('fencing: blocklisted a client of the previous leader', { monitors, address, expireSeconds: this.options.expireSeconds ?? FENCE_EXPIRE_SECONDS });
        }
        return;
      } finally {
        await cluster.close().catch(() => {});
      }
    }
    throw lastError ?? new Error(`fencing: no credentials listed for ${monitors}`);
  }
}

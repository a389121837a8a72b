// Which Secret a CSI PV names in nodeStageSecretRef, so that ceph-csi's node plugin maps the image as the class's
// userId with that user's key.
//
// ceph-csi reads that Secret by its own rules (internal/util/credentials.go, NewUserCredentialsWithMigration): with a
// non-empty `key` (the in-tree / legacy format) the user is the Secret's `adminId`, or "admin" when that is empty or
// absent; otherwise the user is `userID` and the key `userKey`. A class written for the retired provisioner
// (`userId: kube`, a Secret holding only kube's `key`) would therefore map as client.admin with kube's key. When the
// user's Secret already says what we mean to ceph-csi, the PV names it; otherwise we keep a Secret in ceph-csi's
// format (`userID`, `userKey`) in the controller's own namespace and the PV names that one.
//
// The decision is a pure function (decideNodeSecret); NodeSecrets does the reading and writing through the
// controller's API facade. The key lives only in Secrets and in memory: no message, log line, event or PV carries it.

import { createHash } from 'node:crypto';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Secret } from '@kubernetes/client-node';
import { CEPHX_KEY_ALLOWED, cephxKeyProblem } from '../ceph/index.js';
import { isAlreadyExists, isConflict, KubeApiError, type KubeFacade } from '../kube/client.js';
import { DNS_SUBDOMAIN, isKubeName } from '../kube/names.js';
import type { ClassParameters, SecretRef } from './parameters.js';

/** The data keys ceph-csi reads (internal/util/credentials.go). */
export const CEPH_CSI_FIELDS = { legacyKey: 'key', legacyUser: 'adminId', userID: 'userID', userKey: 'userKey' } as const;
/** The user ceph-csi assumes for a legacy Secret without `adminId`. */
export const CEPH_CSI_LEGACY_DEFAULT_USER = 'admin';

/** On every Secret we keep: `kubectl get secret -l app.kubernetes.io/managed-by=rbd-provisioner` lists them. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'rbd-provisioner';
export const NODE_SECRET_ANNOTATIONS = {
  /** The provisioner name that keeps this Secret: another one never overwrites it. */
  provisioner: 'rbd.provisioner.ceph.io/provisioner',
  /** namespace/name of the Secret the key was copied from. */
  source: 'rbd.provisioner.ceph.io/source-secret',
  /** The cephx user (no `client.`), also in data.userID. */
  user: 'rbd.provisioner.ceph.io/user',
} as const;

/** A user Secret that cannot give ceph-csi the class's user and key; the message says how to fix it. */
export class NodeSecretError extends Error {
  override readonly name = 'NodeSecretError';
  constructor(
    readonly reason: 'NodeSecretNotFound' | 'NodeSecretForbidden' | 'InvalidNodeSecret' | 'NodeSecretNotOurs',
    /** The Secret's data key at fault, when one is. */
    readonly field: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** What ceph-csi would authenticate with, or which data key it would miss. Over decoded data, exactly its rules. */
export function cephCsiCredentials(data: Readonly<Record<string, string>>):
  { readonly user: string; readonly key: string; readonly legacy: boolean } | { readonly missing: string } {
  const { legacyKey, legacyUser, userID, userKey } = CEPH_CSI_FIELDS;
  const legacy = data[legacyKey];
  if (Object.keys(data).length > 0 && legacy !== undefined && legacy !== '') {
    const adminId = data[legacyUser];
    return { user: adminId === undefined || adminId === '' ? CEPH_CSI_LEGACY_DEFAULT_USER : adminId, key: legacy, legacy: true };
  }
  // ceph-csi requires the userID field to be present (even empty) and userKey to be non-empty.
  if (!(userID in data)) return { missing: userID };
  const key = data[userKey];
  if (key === undefined || key === '') return { missing: userKey };
  return { user: data[userID]!, key, legacy: false };
}

/** The one command that gives a missing Secret what it needs: the retired provisioner's format, `key` only. */
export function createSecretCommand(ref: SecretRef, userId: string): string {
  return `kubectl -n ${ref.namespace} create secret generic ${ref.name} --type=kubernetes.io/rbd ` +
    `--from-literal=key="$(ceph auth get-key client.${userId})"`;
}

/** The one command that fixes an existing Secret in place (its type is immutable, so patch rather than recreate). */
export function patchSecretCommand(ref: SecretRef, userId: string, format: 'legacy' | 'ceph-csi'): string {
  const fields = format === 'legacy'
    ? `\\"key\\":\\"$(ceph auth get-key client.${userId})\\"`
    : `\\"userID\\":\\"${userId}\\",\\"userKey\\":\\"$(ceph auth get-key client.${userId})\\"`;
  return `kubectl -n ${ref.namespace} patch secret ${ref.name} --type=merge -p "{\\"stringData\\":{${fields}}}"`;
}

const HASH_LENGTH = 8;
const NAME_PREFIX = 'rbd-node-';

/**
 * The managed Secret for one source Secret and user: `rbd-node-<namespace>-<name>-<hash8>`, the readable part cut so
 * the whole stays a valid Secret name (<= 253); the hash (of provisioner, source and user) keeps it unique.
 */
export function managedSecretName(provisionerName: string, source: SecretRef, userId: string): string {
  const hash = createHash('sha256').update(`${provisionerName}\n${source.namespace}\n${source.name}\n${userId}`).digest('hex').slice(0, HASH_LENGTH);
  const room = DNS_SUBDOMAIN.maxLength - NAME_PREFIX.length - 1 - HASH_LENGTH;
  // Each DNS label must end alphanumeric: a cut may leave "-" or "." last.
  const readable = `${source.namespace}-${source.name}`.slice(0, room).replace(/[-.]+$/, '');
  const name = `${NAME_PREFIX}${readable}-${hash}`;
  if (!isKubeName(DNS_SUBDOMAIN, name)) throw new TypeError(`managed Secret name ${name}: not a valid Secret name`);
  return name;
}

export interface NodeSecretInput {
  /** The class's user Secret, its namespace resolved. */
  readonly source: SecretRef;
  /** The class's userId. */
  readonly userId: string;
  /** The source Secret's data, decoded; undefined when it does not exist. */
  readonly data: Readonly<Record<string, string>> | undefined;
  readonly provisionerName: string;
  /** Where managed Secrets live: the controller's own namespace. */
  readonly namespace: string;
}

export type NodeSecretDecision =
  | { readonly kind: 'direct'; readonly ref: SecretRef }
  | { readonly kind: 'managed'; readonly ref: SecretRef; readonly secret: V1Secret };

/** Which Secret the PV names; a managed one comes with the full object to keep. Throws NodeSecretError. */
export function decideNodeSecret(input: NodeSecretInput): NodeSecretDecision {
  const { source, userId, data } = input;
  const where = `node secret ${source.namespace}/${source.name} (StorageClass parameter "userSecretName")`;
  const wants = `ceph-csi maps the image on nodes as client.${userId} (the class's "userId") with it`;
  if (data === undefined) {
    throw new NodeSecretError('NodeSecretNotFound', CEPH_CSI_FIELDS.legacyKey,
      `${where} not found; ${wants}; allowed: a Secret with data key "key" holding client.${userId}'s key, or ` +
      `"userID" "${userId}" and "userKey"; fix: ${createSecretCommand(source, userId)}`);
  }
  const derived = cephCsiCredentials(data);
  if ('missing' in derived) {
    // Neither format: ask for the legacy one, the format the class's parameters come from.
    const field = derived.missing === CEPH_CSI_FIELDS.userKey ? CEPH_CSI_FIELDS.userKey : CEPH_CSI_FIELDS.legacyKey;
    const problem = field === CEPH_CSI_FIELDS.userKey
      ? `has data key "userID" but no (or an empty) "userKey"`
      : `has no (or an empty) data key "key" and no "userID"/"userKey"`;
    const fix = field === CEPH_CSI_FIELDS.userKey ? patchSecretCommand(source, userId, 'ceph-csi') : patchSecretCommand(source, userId, 'legacy');
    throw new NodeSecretError('InvalidNodeSecret', field,
      `${where} ${problem}; ${wants}; allowed: data key "key" holding client.${userId}'s key, or "userID" "${userId}" and "userKey"; fix: ${fix}`);
  }
  const key = derived.key.trim();
  const keyProblem = cephxKeyProblem(key);
  const keyField = derived.legacy ? CEPH_CSI_FIELDS.legacyKey : CEPH_CSI_FIELDS.userKey;
  if (keyProblem) {
    throw new NodeSecretError('InvalidNodeSecret', keyField,
      `${where}: data key "${keyField}" is ${keyProblem}; allowed: ${CEPHX_KEY_ALLOWED}; ` +
      `fix: ${patchSecretCommand(source, userId, derived.legacy ? 'legacy' : 'ceph-csi')}`);
  }
  if (derived.user === userId) return { kind: 'direct', ref: source };
  if (!derived.legacy) {
    // The Secret says whose key it holds, and it is another user's: copying that key under userId could only fail.
    throw new NodeSecretError('InvalidNodeSecret', CEPH_CSI_FIELDS.userID,
      `${where}: data key "userID" is "${derived.user}" but the class's "userId" is "${userId}"; allowed: "userID" ` +
      `"${userId}" with its "userKey" (or set the class's "userId" to "${derived.user}"); fix: ${patchSecretCommand(source, userId, 'ceph-csi')}`);
  }
  // Legacy: `key` is userId's key (what the retired provisioner and the in-tree plugin meant); ceph-csi would take it
  // for another user's. Keep a copy in ceph-csi's format that says whose it is.
  const name = managedSecretName(input.provisionerName, source, userId);
  return {
    kind: 'managed',
    ref: { namespace: input.namespace, name },
    secret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace: input.namespace,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: {
          [NODE_SECRET_ANNOTATIONS.provisioner]: input.provisionerName,
          [NODE_SECRET_ANNOTATIONS.source]: `${source.namespace}/${source.name}`,
          [NODE_SECRET_ANNOTATIONS.user]: userId,
        },
      },
      type: 'Opaque',
      data: { [CEPH_CSI_FIELDS.userID]: b64(userId), [CEPH_CSI_FIELDS.userKey]: b64(key) },
    },
  };
}

/** Whether an existing managed Secret already holds what `wanted` does (data, and our provenance). */
export function managedSecretUpToDate(existing: V1Secret, wanted: V1Secret): boolean {
  const same = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) =>
    JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());
  return same(existing.data, wanted.data) &&
    Object.entries(wanted.metadata?.annotations ?? {}).every(([k, v]) => existing.metadata?.annotations?.[k] === v) &&
    existing.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function decode(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

export interface NodeSecretsOptions {
  kube: Pick<KubeFacade, 'readSecretData' | 'readSecret' | 'createSecret' | 'replaceSecret'>;
  provisionerName: string;
  /** The controller's own namespace (POD_NAMESPACE, as the Lease's). */
  namespace: string;
  logger: { info(message: string, meta?: Record<string, unknown>): void };
  /**
   * How long one resolution of a user Secret (its read, and the managed copy kept up to date) serves every claim of
   * that Secret and user: a burst reads it once, not once per claim. A change to the Secret reaches new PVs within
   * this time; PVs already made are refreshed on attach (refreshFor), which always reads. 0 (the default) resolves
   * every time.
   */
  cacheTtlMs?: number;
}

/** Resolves a class's nodeStageSecretRef, reading the user Secret and keeping the managed copy when one is needed. */
export class NodeSecrets {
  private readonly resolved = new Map<string, { at: number; ref: Promise<SecretRef | undefined> }>();

  constructor(private readonly options: NodeSecretsOptions) {}

  /** undefined only for classes without a user Secret (nodes use their own keyring). Throws NodeSecretError. */
  async resolve(params: ClassParameters, claim: V1PersistentVolumeClaim, signal: AbortSignal): Promise<SecretRef | undefined> {
    if (params.userSecret === undefined) return undefined;
    const namespace = params.userSecret.namespace ?? claim.metadata?.namespace;
    if (!namespace) throw new TypeError('the claim has no namespace');
    const source = { name: params.userSecret.name, namespace };
    const ttlMs = this.options.cacheTtlMs ?? 0;
    if (ttlMs <= 0) return this.resolveSource(source, params.userId, signal);
    const key = JSON.stringify([source.namespace, source.name, params.userId]);
    const cached = this.resolved.get(key);
    if (cached !== undefined && Date.now() - cached.at < ttlMs) return cached.ref;
    // Only successes are kept: a missing or unreadable Secret is read again at the next retry, so a fix shows at once.
    const entry = { at: Date.now(), ref: this.resolveSource(source, params.userId, signal) };
    this.resolved.set(key, entry);
    entry.ref.catch(() => {
      if (this.resolved.get(key) === entry) this.resolved.delete(key);
    });
    return entry.ref;
  }

  private async resolveSource(source: SecretRef, userId: string, signal: AbortSignal): Promise<SecretRef | undefined> {
    let data: Record<string, string> | undefined;
    try {
      data = await this.options.kube.readSecretData(source.namespace, source.name, signal);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 403) {
        throw new NodeSecretError('NodeSecretForbidden', undefined,
          `node secret ${source.namespace}/${source.name} (StorageClass parameter "userSecretName"): access denied to the ` +
          `provisioner's service account (RBAC); fix: grant it "get" on that Secret (the chart does so for the classes in ` +
          `its storageClasses value; README "Node credentials")`);
      }
      throw err;
    }
    const decision = decideNodeSecret({
      source, userId, data: data === undefined ? undefined : decode(data),
      provisionerName: this.options.provisionerName, namespace: this.options.namespace,
    });
    if (decision.kind === 'managed') await this.keep(decision.secret, source, signal);
    return decision.ref;
  }

  /**
   * Brings the managed copy a PV names up to date with its source Secret (a key rotated since the PV was made), so
   * the node stages the volume with the current key. A PV that names a user Secret directly, or a copy that is not
   * ours or that is gone, is left as it is: there is nothing this could copy from. Throws NodeSecretError.
   */
  async refreshFor(volume: V1PersistentVolume, signal: AbortSignal): Promise<void> {
    const ref = volume.spec?.csi?.nodeStageSecretRef;
    if (!ref?.name || ref.namespace !== this.options.namespace || !ref.name.startsWith(NAME_PREFIX)) return;
    const copy = await this.options.kube.readSecret(ref.namespace, ref.name, signal);
    const annotations = copy?.metadata?.annotations ?? {};
    const [sourceNamespace, sourceName, extra] = (annotations[NODE_SECRET_ANNOTATIONS.source] ?? '').split('/');
    const userId = annotations[NODE_SECRET_ANNOTATIONS.user];
    if (annotations[NODE_SECRET_ANNOTATIONS.provisioner] !== this.options.provisionerName || !sourceNamespace || !sourceName || extra !== undefined || !userId) return;
    const source = { namespace: sourceNamespace, name: sourceName };
    const data = await this.options.kube.readSecretData(source.namespace, source.name, signal);
    const decision = decideNodeSecret({
      source, userId, data: data === undefined ? undefined : decode(data),
      provisionerName: this.options.provisionerName, namespace: this.options.namespace,
    });
    if (decision.kind === 'managed' && decision.ref.name === ref.name) await this.keep(decision.secret, source, signal);
  }

  /** Creates the managed Secret, or replaces it when its key (or provenance) differs. */
  private async keep(wanted: V1Secret, source: SecretRef, signal: AbortSignal): Promise<void> {
    const { kube, namespace, logger } = this.options;
    const name = wanted.metadata!.name!;
    const where = `managed node secret ${namespace}/${name}`;
    const meta = { secret: `${namespace}/${name}`, source: `${source.namespace}/${source.name}`, user: wanted.metadata?.annotations?.[NODE_SECRET_ANNOTATIONS.user] };
    const forbidden = (err: unknown, verb: string) => err instanceof KubeApiError && err.status === 403
      ? new NodeSecretError('NodeSecretForbidden', undefined, `${where}: the provisioner's service account may not ${verb} ` +
        `Secrets in its namespace ${namespace} (RBAC); fix: grant it create, get and update on secrets there (the chart's ` +
        `"-node-secrets" Role)`)
      : err;
    // Two tries: a create or replace that races another writer re-reads once; a further race is a transient error.
    for (let attempt = 0; ; attempt++) {
      let existing: V1Secret | undefined;
      try {
        existing = await kube.readSecret(namespace, name, signal);
      } catch (err) {
        throw forbidden(err, 'get');
      }
      if (existing && managedSecretUpToDate(existing, wanted)) return;
      if (existing && existing.metadata?.annotations?.[NODE_SECRET_ANNOTATIONS.provisioner] !== this.options.provisionerName) {
        throw new NodeSecretError('NodeSecretNotOurs', undefined,
          `${where} exists and is not kept by this provisioner (annotation ${NODE_SECRET_ANNOTATIONS.provisioner}); not touching it`);
      }
      try {
        if (existing === undefined) {
          await kube.createSecret(namespace, wanted, signal);
          logger.info('created the node secret in ceph-csi format for this user Secret', meta);
        } else {
          const replacement: V1Secret = { ...wanted, metadata: { ...wanted.metadata, resourceVersion: existing.metadata?.resourceVersion } };
          await kube.replaceSecret(namespace, name, replacement, signal);
          logger.info('updated the node secret: its source Secret changed', meta);
        }
        return;
      } catch (err) {
        if (attempt === 0 && (isAlreadyExists(err) || isConflict(err))) continue;
        throw forbidden(err, existing === undefined ? 'create' : 'update');
      }
    }
  }
}

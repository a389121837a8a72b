// The rules for every name and id that reaches librados/librbd, written once. The Ceph API checks them before any
// native call; StorageClass parameters and PV annotations (src/rbd) check the same rules by importing them.
// Narrower than Ceph itself allows, on purpose: these names also reach PV annotations, event text and the rbd CLI,
// where a leading "-" or "." reads as an option or a hidden name.

import { ValidationError } from './validation.js';

/** A name rule: the allowed text is what errors show, so it says the rule in words. */
export interface NameRule {
  readonly pattern: RegExp;
  readonly maxLength: number;
  readonly allowed: string;
  /** A further check past the pattern, with its own problem text. */
  readonly refuse?: (value: string) => string | undefined;
}

const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PLAIN_ALLOWED = 'letters, digits, ".", "_" and "-", starting with a letter or digit';

const CLIENT_PREFIX = 'client.';

export const CEPH_NAMES = {
  // librados prepends "client." itself: "client.admin" would authenticate as "client.client.admin", so the prefix
  // is refused (with what to write instead) rather than silently stripped in one layer and kept in another.
  cephId: {
    pattern: PLAIN, maxLength: 255,
    allowed: `a Ceph client id without the "client." prefix: ${PLAIN_ALLOWED} (e.g. admin, kube)`,
    refuse: (value) => value.toLowerCase().startsWith(CLIENT_PREFIX)
      ? `${quote(value)} includes the "client." prefix (write ${quote(value.slice(CLIENT_PREFIX.length))})`
      : undefined,
  },
  pool: { pattern: PLAIN, maxLength: 255, allowed: `${PLAIN_ALLOWED}, at most 255 characters: a pool name` },
  /** The default namespace is "": callers that accept it say so (checkNamespace). */
  radosNamespace: {
    pattern: PLAIN, maxLength: 255, allowed: `${PLAIN_ALLOWED}, at most 255 characters: a RADOS namespace name`,
  },
  image: { pattern: PLAIN, maxLength: 255, allowed: `an RBD image name: ${PLAIN_ALLOWED}, at most 255 characters` },
  snapshot: { pattern: PLAIN, maxLength: 255, allowed: `a snapshot name: ${PLAIN_ALLOWED}, at most 255 characters` },
  /** librbd image ids are lower-case hex. */
  imageId: { pattern: /^[0-9a-f]+$/, maxLength: 64, allowed: 'an RBD image id (lower-case hex)' },
} as const satisfies Record<string, NameRule>;

/** Why `value` breaks `rule`, or undefined when it is fine. */
export function nameProblem(rule: NameRule, value: string): string | undefined {
  if (value.length === 0) return 'empty';
  if (value.length > rule.maxLength) return `longer than ${rule.maxLength} characters`;
  if (!rule.pattern.test(value)) return `${quote(value)} is not allowed`;
  return rule.refuse?.(value);
}

/** A value excerpt that is safe and short enough for an error or event message. */
export function quote(value: string): string {
  const excerpt = value.length > 64 ? `${value.slice(0, 64)}...` : value;
  return JSON.stringify(excerpt);
}

/** Returns value when it follows rule, else throws a ValidationError naming field. */
export function checkName(rule: NameRule, field: string, value: unknown): string {
  if (typeof value !== 'string') throw new ValidationError(field, rule.allowed, `must be a string, got ${typeof value}`);
  const problem = nameProblem(rule, value);
  if (problem) throw new ValidationError(field, rule.allowed, problem);
  return value;
}

export const checkCephId = (value: unknown, field = 'user'): string => checkName(CEPH_NAMES.cephId, field, value);
export const checkPoolName = (value: unknown, field = 'pool'): string => checkName(CEPH_NAMES.pool, field, value);
export const checkImageName = (value: unknown, field = 'image'): string => checkName(CEPH_NAMES.image, field, value);
export const checkSnapshotName = (value: unknown, field = 'snapshot'): string => checkName(CEPH_NAMES.snapshot, field, value);
export const checkImageId = (value: unknown, field = 'id'): string => checkName(CEPH_NAMES.imageId, field, value);

/** RADOS namespaces: '' (or none) is the pool's default namespace. */
export function checkNamespace(value: unknown, field = 'namespace'): string {
  if (value === undefined || value === '') return '';
  return checkName(CEPH_NAMES.radosNamespace, field, value);
}

// ---- cephx keys -------------------------------------------------------------------------------------------------

/**
 * A cephx secret as `ceph auth get-key` prints it: base64 of a CryptoKey, which is type (u16, 1 = AES), creation
 * time (8 bytes), secret length (u16, 16) and the 16-byte secret: 28 bytes, 40 characters, always "AQ...==".
 * Unanchored, to find keys in text (log redaction); CEPHX_KEY_SHAPE checks a whole value. Accepting only what the
 * redaction finds is deliberate: a key of another type would need both extended together.
 */
export const CEPHX_KEY_TEXT = 'AQ[A-Za-z0-9+/]{36}==';
const CEPHX_KEY_SHAPE = new RegExp(`^${CEPHX_KEY_TEXT}$`);
const CEPHX_AES = 1;
const CEPHX_HEADER_BYTES = 12;
const CEPHX_AES_SECRET_BYTES = 16;

export const CEPHX_KEY_ALLOWED = 'a cephx key as "ceph auth get-key client.<id>" prints it (40 characters of base64, AQ...==)';

/** Why `key` is not a cephx key, or undefined when it is one. Never quotes the key. */
export function cephxKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'not a string';
  if (key === '') return 'empty';
  if (!CEPHX_KEY_SHAPE.test(key)) return 'malformed: not 40 characters of base64 starting with "AQ"';
  const bytes = Buffer.from(key, 'base64');
  if (bytes.readUInt16LE(0) !== CEPHX_AES || bytes.readUInt16LE(CEPHX_HEADER_BYTES - 2) !== CEPHX_AES_SECRET_BYTES) {
    return 'malformed: base64, but not of a cephx AES secret';
  }
  return undefined;
}

/** Returns key when it is a cephx key, else throws a ValidationError naming field (and never the key). */
export function checkCephxKey(key: unknown, field = 'key'): string {
  const problem = cephxKeyProblem(key);
  if (problem) throw new ValidationError(field, CEPHX_KEY_ALLOWED, problem);
  return key as string;
}

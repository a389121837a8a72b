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

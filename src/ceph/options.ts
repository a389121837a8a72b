import { MAX_ORDER, MIN_ORDER } from './errors.js';
import { native } from './native.js';
import type { NativeImageOptions } from './rbd-native.js';

/** A bad option, caught before any native call. Names the field and what it accepts. */
export class ValidationError extends TypeError {
  constructor(readonly field: string, readonly allowed: string, problem: string) {
    super(`${field}: ${problem}; allowed: ${allowed}`);
    this.name = 'ValidationError';
  }
}

/** Features a new image may be created with, in librbd's canonical order. */
export const IMAGE_FEATURES = ['layering', 'exclusive-lock', 'object-map', 'fast-diff', 'deep-flatten', 'journaling'] as const;
export type ImageFeature = (typeof IMAGE_FEATURES)[number];

// Each feature that needs another to be enabled too, as librbd enforces.
const FEATURE_REQUIRES: Partial<Record<ImageFeature, ImageFeature>> = {
  'object-map': 'exclusive-lock',
  'fast-diff': 'object-map',
  journaling: 'exclusive-lock',
};

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const NAME_ALLOWED = 'letters, digits, ".", "_" and "-", starting with a letter or digit';

function checkName(field: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new ValidationError(field, NAME_ALLOWED, 'must be a non-empty string');
  if (value.length > maxLength) throw new ValidationError(field, `at most ${maxLength} characters`, `"${value.slice(0, 40)}..." is too long`);
  if (!NAME.test(value)) throw new ValidationError(field, NAME_ALLOWED, `"${value}" has other characters`);
  return value;
}

export const checkPoolName = (value: unknown, field = 'pool'): string => checkName(field, value, 255);
export const checkImageName = (value: unknown, field = 'image'): string => checkName(field, value, 250);
export const checkSnapshotName = (value: unknown, field = 'snapshot'): string => checkName(field, value, 250);

/** RADOS namespaces: '' means the default namespace. */
export function checkNamespace(value: unknown, field = 'namespace'): string {
  if (value === undefined || value === '') return '';
  return checkName(field, value, 255);
}

export function checkSize(value: unknown, field = 'size'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ValidationError(field, `a positive whole number of bytes up to ${Number.MAX_SAFE_INTEGER}`, `got ${String(value)}`);
  }
  return value;
}

/** Validates feature names and their dependencies; returns them de-duplicated in canonical order. */
export function checkFeatures(names: readonly string[], field = 'features'): ImageFeature[] {
  const allowed = IMAGE_FEATURES.join(', ');
  const chosen = new Set<ImageFeature>();
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    if (!(IMAGE_FEATURES as readonly string[]).includes(name)) throw new ValidationError(field, allowed, `unknown feature "${raw}"`);
    chosen.add(name as ImageFeature);
  }
  for (const feature of chosen) {
    const needs = FEATURE_REQUIRES[feature];
    if (needs && !chosen.has(needs)) {
      throw new ValidationError(field, allowed, `"${feature}" requires "${needs}"`);
    }
  }
  return IMAGE_FEATURES.filter((f) => chosen.has(f));
}

export function featureBits(names: readonly ImageFeature[]): number {
  return names.reduce((bits, name) => bits | (native.constants.features[name] ?? 0), 0);
}

/** Every feature name librbd reports for a bitmask, including implicit ones (striping, data-pool). */
export function featureNames(bits: number): string[] {
  return Object.entries(native.constants.features)
    .filter(([, bit]) => (bits & bit) !== 0)
    .map(([name]) => name);
}

/** Object size in bytes -> librbd order (log2). */
export function orderOf(objectSize: number, field = 'objectSize'): number {
  const allowed = `a power of two from 4 KiB to 32 MiB (${2 ** MIN_ORDER} to ${2 ** MAX_ORDER} bytes)`;
  const order = Math.log2(objectSize);
  if (!Number.isInteger(order) || order < MIN_ORDER || order > MAX_ORDER) {
    throw new ValidationError(field, allowed, `${objectSize} bytes is not one`);
  }
  return order;
}

export interface CreateImageOptions {
  /** Default: ['layering']. */
  features?: readonly string[];
  /** Object size in bytes, a power of two (4 KiB .. 32 MiB). Default: librbd's (4 MiB). */
  objectSize?: number;
  /** librbd order directly, for callers that speak in orders; objectSize wins when both are given. */
  order?: number;
  stripeUnit?: number;
  stripeCount?: number;
  /** Pool for the image's data objects (erasure-coded pools); metadata stays in the image's pool. */
  dataPool?: string;
}

export function toNativeImageOptions(options: CreateImageOptions): NativeImageOptions {
  const out: NativeImageOptions = { format: 2, features: featureBits(checkFeatures(options.features ?? ['layering'])) };
  if (options.objectSize !== undefined) out.order = orderOf(options.objectSize);
  else if (options.order !== undefined) {
    if (!Number.isSafeInteger(options.order) || options.order < MIN_ORDER || options.order > MAX_ORDER) {
      throw new ValidationError('order', `a whole number from ${MIN_ORDER} to ${MAX_ORDER} (4 KiB to 32 MiB objects)`, `got ${String(options.order)}`);
    }
    out.order = options.order;
  }
  if ((options.stripeUnit === undefined) !== (options.stripeCount === undefined)) {
    throw new ValidationError('stripeUnit', 'both stripeUnit and stripeCount, or neither', 'only one of them is set');
  }
  if (options.stripeUnit !== undefined && options.stripeCount !== undefined) {
    out.stripeUnit = checkSize(options.stripeUnit, 'stripeUnit');
    out.stripeCount = checkSize(options.stripeCount, 'stripeCount');
  }
  if (options.dataPool !== undefined && options.dataPool !== '') out.dataPool = checkPoolName(options.dataPool, 'dataPool');
  return out;
}

import { checkFeatures, featureBits } from './features.js';
import type { NativeImageOptions } from './rbd-native.js';
import { checkPoolName } from './names.js';
import { ValidationError } from './validation.js';

// Orders librbd accepts for rbd_create4: 4 KiB .. 32 MiB objects.
export const MIN_ORDER = 12;
export const MAX_ORDER = 25;

export function checkSize(value: unknown, field = 'size'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ValidationError(field, `a positive whole number of bytes up to ${Number.MAX_SAFE_INTEGER}`, `got ${String(value)}`);
  }
  return value;
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
  /** Clones only: 1 needs the parent snapshot protected; 2 does not (Mimic and later). Default: librbd's choice. */
  cloneFormat?: 1 | 2;
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
  if (options.cloneFormat !== undefined) {
    if (options.cloneFormat !== 1 && options.cloneFormat !== 2) throw new ValidationError('cloneFormat', '1 or 2', `got ${String(options.cloneFormat)}`);
    out.cloneFormat = options.cloneFormat;
  }
  if (options.dataPool !== undefined && options.dataPool !== '') out.dataPool = checkPoolName(options.dataPool, 'dataPool');
  return out;
}

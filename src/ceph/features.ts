// RBD image features by name: pure data and checks (no native code), shared by the Ceph layer and by
// StorageClass parameter parsing. Bits are librbd's ABI (rbd/features.h); a test checks them against the addon.

import { ValidationError } from './validation.js';

/** Features a new image may be created with, in librbd's canonical order. */
export const IMAGE_FEATURES = ['layering', 'exclusive-lock', 'object-map', 'fast-diff', 'deep-flatten', 'journaling'] as const;
export type ImageFeature = (typeof IMAGE_FEATURES)[number];

/** Every feature bit librbd may report, including the implicit ones (striping, data-pool, ...). */
export const FEATURE_BITS: Readonly<Record<string, number>> = {
  layering: 1 << 0,
  striping: 1 << 1,
  'exclusive-lock': 1 << 2,
  'object-map': 1 << 3,
  'fast-diff': 1 << 4,
  'deep-flatten': 1 << 5,
  journaling: 1 << 6,
  'data-pool': 1 << 7,
  operations: 1 << 8,
  migrating: 1 << 9,
  'non-primary': 1 << 10,
  'dirty-cache': 1 << 11,
};

// Each feature that needs another to be enabled too, as librbd enforces.
const FEATURE_REQUIRES: Partial<Record<ImageFeature, ImageFeature>> = {
  'object-map': 'exclusive-lock',
  'fast-diff': 'object-map',
  journaling: 'exclusive-lock',
};

/** Validates feature names and their dependencies; returns them de-duplicated in canonical order. */
export function checkFeatures(names: readonly string[], field = 'features'): ImageFeature[] {
  const allowed = IMAGE_FEATURES.join(', ');
  const chosen = new Set<ImageFeature>();
  for (const raw of names) {
    const name = raw.trim();
    if (name === '') continue;
    if (!(IMAGE_FEATURES as readonly string[]).includes(name)) throw new ValidationError(field, allowed, `unknown feature "${name}"`);
    chosen.add(name as ImageFeature);
  }
  for (const feature of chosen) {
    const needs = FEATURE_REQUIRES[feature];
    if (needs && !chosen.has(needs)) throw new ValidationError(field, allowed, `"${feature}" needs "${needs}"`);
  }
  return IMAGE_FEATURES.filter((f) => chosen.has(f));
}

export function featureBits(names: readonly string[]): number {
  return names.reduce((bits, name) => bits | (FEATURE_BITS[name] ?? 0), 0);
}

/** Every feature name set in a bitmask, in bit order. */
export function featureNames(bits: number): string[] {
  return Object.entries(FEATURE_BITS).filter(([, bit]) => (bits & bit) !== 0).map(([name]) => name);
}

// Byte sizes as Kubernetes and RBD users write them. Pure functions; errors are SyntaxError/RangeError carrying a
// short problem text that callers wrap into an error naming the field.

import { parseQuantity } from '../kube/quantity.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;

// The largest byte count we hand out, as a whole number of MiB. Keeping sizes inside Number's exact-integer range
// lets every layer compare and add them as plain numbers; 8 PiB is far beyond any RBD image in practice.
export const MAX_BYTES = Math.floor(Number.MAX_SAFE_INTEGER / MiB) * MiB;

/**
 * A Kubernetes quantity rounded up to whole MiB, in bytes. Zero, negative and oversized quantities are RangeErrors,
 * unparsable ones SyntaxErrors. Any positive amount, however small (`1`, `100m`), becomes at least 1 MiB.
 */
export function quantityToWholeMiB(text: string): number {
  const { numerator, denominator } = parseQuantity(text);
  if (numerator === 0n) throw new RangeError('not greater than zero');
  const unit = denominator * BigInt(MiB);
  const mebibytes = (numerator + unit - 1n) / unit;
  if (mebibytes > BigInt(MAX_BYTES / MiB)) throw new RangeError('not below 8Pi');
  return Number(mebibytes) * MiB;
}

const BINARY_SUFFIXES: ReadonlyArray<readonly [string, bigint]> = [
  ['Ei', 1n << 60n], ['Pi', 1n << 50n], ['Ti', 1n << 40n], ['Gi', 1n << 30n], ['Mi', 1n << 20n], ['Ki', 1n << 10n],
];

/**
 * Formats a byte count as an exact Kubernetes quantity: the largest binary suffix that divides it (the canonical form
 * the API server echoes back), else plain bytes.
 */
export function formatBytes(bytes: number | bigint): string {
  if (typeof bytes === 'number' && !Number.isSafeInteger(bytes)) throw new RangeError('not a whole number of bytes');
  const value = BigInt(bytes);
  if (value < 0n) throw new RangeError('negative byte count');
  if (value === 0n) return '0';
  for (const [suffix, unit] of BINARY_SUFFIXES) {
    if (value % unit === 0n) return `${value / unit}${suffix}`;
  }
  return value.toString();
}

const BYTE_SIZE = /^(\d+)(?:(k|ki|kib)|(m|mi|mib))?$/i;

/**
 * Parses an RBD layout size as the rbd CLI writes it (`4194304`, `4096K`, `4M`, `4MiB`): K and M are binary units.
 * Throws SyntaxError when unparsable.
 */
export function parseByteSize(text: string): number {
  const match = BYTE_SIZE.exec(text);
  if (!match) throw new SyntaxError('not a size');
  const multiplier = match[2] ? KiB : match[3] ? MiB : 1;
  const value = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(value)) throw new SyntaxError('not a size');
  return value;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && Number.isInteger(Math.log2(value));
}

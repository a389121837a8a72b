// Kubernetes resource quantities (`1Gi`, `1.5Gi`, `500M`, `1e9`), parsed exactly. Kubernetes-generic: the loops
// compare sizes with it, and src/rbd/size.ts rounds them into image sizes from the same parser.

const DECIMAL_EXPONENTS: Readonly<Record<string, number>> = {
  n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18,
};
const BINARY_EXPONENTS: Readonly<Record<string, number>> = {
  Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60,
};
// Exponents beyond this cannot describe a plausible volume and would only make the bigint arithmetic expensive.
const MAX_DECIMAL_EXPONENT = 64;

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$/;
const EXPONENT_SUFFIX = /^[eE]([+-]?\d+)$/;

/** An exact non-negative rational number (of bytes, for storage). */
export interface Rational { readonly numerator: bigint; readonly denominator: bigint }

/**
 * Parses a Kubernetes resource quantity (`1Gi`, `1.5Gi`, `500M`, `1e9`, `100m`, `1073741824`) exactly.
 * Throws SyntaxError when the text is not a quantity and RangeError when it is negative.
 */
export function parseQuantity(text: string): Rational {
  const match = QUANTITY.exec(text);
  if (!match) throw new SyntaxError('not a Kubernetes quantity');
  const [, sign = '', number = '', suffix = ''] = match;

  let decimalExponent: number;
  let binaryExponent = 0;
  const exponentSuffix = EXPONENT_SUFFIX.exec(suffix);
  if (exponentSuffix) {
    decimalExponent = Number(exponentSuffix[1]);
  } else if (suffix in BINARY_EXPONENTS) {
    decimalExponent = 0;
    binaryExponent = BINARY_EXPONENTS[suffix]!;
  } else if (suffix in DECIMAL_EXPONENTS) {
    decimalExponent = DECIMAL_EXPONENTS[suffix]!;
  } else {
    throw new SyntaxError(`unknown suffix ${JSON.stringify(suffix)}`);
  }
  if (Math.abs(decimalExponent) > MAX_DECIMAL_EXPONENT) throw new RangeError('out of range');

  const [whole = '', fraction = ''] = number.split('.');
  const mantissa = BigInt((whole + fraction) || '0');
  if (sign === '-' && mantissa !== 0n) throw new RangeError('negative');
  const exponent = decimalExponent - fraction.length;
  const numerator = mantissa * 10n ** BigInt(Math.max(exponent, 0)) * 2n ** BigInt(binaryExponent);
  const denominator = 10n ** BigInt(Math.max(-exponent, 0));
  return { numerator, denominator };
}

/**
 * Compares two quantities exactly: negative when a < b, 0 when equal, positive when a > b. Throws as parseQuantity
 * when either is not a non-negative quantity.
 */
export function compareQuantities(a: string, b: string): number {
  const x = parseQuantity(a);
  const y = parseQuantity(b);
  const left = x.numerator * y.denominator;
  const right = y.numerator * x.denominator;
  return left < right ? -1 : left > right ? 1 : 0;
}

/** compareQuantities that answers undefined instead of throwing for a missing or unparsable quantity. */
export function tryCompareQuantities(a: unknown, b: unknown): number | undefined {
  if (typeof a !== 'string' || typeof b !== 'string') return undefined;
  try {
    return compareQuantities(a, b);
  } catch {
    return undefined;
  }
}

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatBytes, isPowerOfTwo, MAX_BYTES, MiB, parseByteSize, quantityToWholeMiB } from '../../../src/rbd/size.js';

describe('formatBytes', () => {
  const cases: Array<[number | bigint, string]> = [
    [0, '0'], [1, '1'], [1023, '1023'], [1024, '1Ki'], [1536, '1536'], [MiB, '1Mi'], [3 * MiB + 1024, '3073Ki'],
    [2 ** 30, '1Gi'], [2 ** 40, '1Ti'], [2n ** 50n, '1Pi'], [2n ** 60n, '1Ei'], [2n ** 64n - 1n, '18446744073709551615'],
  ];
  for (const [bytes, expected] of cases) {
    test(`${bytes} -> ${expected}`, () => assert.equal(formatBytes(bytes), expected));
  }
  test('refuses negative and fractional counts', () => {
    assert.throws(() => formatBytes(-1), RangeError);
    assert.throws(() => formatBytes(0.5), RangeError);
    assert.throws(() => formatBytes(-1n), RangeError);
  });
});

describe('quantityToWholeMiB', () => {
  test('the largest accepted request is MAX_BYTES and is exact', () => {
    assert.equal(quantityToWholeMiB(String(MAX_BYTES)), MAX_BYTES);
    assert.equal(MAX_BYTES % MiB, 0);
    assert.ok(Number.isSafeInteger(MAX_BYTES));
    assert.throws(() => quantityToWholeMiB(String(MAX_BYTES + 1)), RangeError);
  });
  test('decimal fractions are exact, not floating point', () => {
    // 0.1 + 0.2 style errors would push this over one MiB.
    assert.equal(quantityToWholeMiB('1.048576M'), MiB);
    assert.equal(quantityToWholeMiB('1.048577M'), 2 * MiB);
    assert.equal(quantityToWholeMiB('104857600e-2'), MiB);
  });
  test('syntax and range errors are distinct', () => {
    assert.throws(() => quantityToWholeMiB('x'), SyntaxError);
    assert.throws(() => quantityToWholeMiB('-1'), RangeError);
  });
});

describe('parseByteSize', () => {
  const cases: Array<[string, number]> = [
    ['0', 0], ['512', 512], ['4k', 4096], ['4K', 4096], ['4Ki', 4096], ['4KiB', 4096], ['4kib', 4096],
    ['4m', 4 * MiB], ['4M', 4 * MiB], ['4Mi', 4 * MiB], ['4MiB', 4 * MiB],
  ];
  for (const [text, bytes] of cases) test(`${text} -> ${bytes}`, () => assert.equal(parseByteSize(text), bytes));
  for (const text of ['', '4G', '4 M', '4.5M', '-4M', 'M', '4MB', '4KB', '99999999999999999999']) {
    test(`${JSON.stringify(text)} is refused`, () => assert.throws(() => parseByteSize(text), SyntaxError));
  }
});

describe('isPowerOfTwo', () => {
  for (const value of [1, 2, 4096, 2 ** 25, 2 ** 40]) test(`${value} is`, () => assert.ok(isPowerOfTwo(value)));
  for (const value of [0, -2, 3, 4095, 1.5, 2 ** 40 + 1]) test(`${value} is not`, () => assert.ok(!isPowerOfTwo(value)));
});

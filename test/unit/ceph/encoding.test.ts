import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeString, decodeStringMap, encodeStringAndU64, encodeStringMap } from '../../../src/ceph/encoding.js';

test('encodeStringMap: a u32 count, then each key and value behind its u32 byte length, little-endian', () => {
  assert.deepEqual(
    encodeStringMap({ a: 'xy', 'é': '' }),
    Buffer.from([2, 0, 0, 0, 1, 0, 0, 0, 0x61, 2, 0, 0, 0, 0x78, 0x79, 2, 0, 0, 0, 0xc3, 0xa9, 0, 0, 0, 0]),
  );
  assert.deepEqual(encodeStringMap({}), Buffer.from([0, 0, 0, 0]));
});

test('decodeString reads one length-prefixed string and refuses a buffer that is not exactly one', () => {
  assert.equal(decodeString(Buffer.from([3, 0, 0, 0, 0x31, 0x30, 0x66])), '10f');
  assert.equal(decodeString(Buffer.from([0, 0, 0, 0])), '');
  assert.throws(() => decodeString(Buffer.from([3, 0])), /shorter than its length field/);
  assert.throws(() => decodeString(Buffer.from([3, 0, 0, 0, 0x31])), /says 3 bytes, 1 follow/);
});

test('encodeStringAndU64: the string behind its u32 length, then a little-endian u64', () => {
  assert.deepEqual(encodeStringAndU64('ab', 64), Buffer.from([2, 0, 0, 0, 0x61, 0x62, 64, 0, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual(encodeStringAndU64('', 2 ** 40), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]));
});

test('decodeStringMap reads what encodeStringMap writes, in order, and refuses a buffer that is not exactly one map', () => {
  const entries: [string, string][] = [['1', 'numeric-looking key'], ['a', 'xy'], ['é', '']];
  assert.deepEqual(decodeStringMap(encodeStringMap(Object.fromEntries(entries))), entries);
  assert.deepEqual(decodeStringMap(Buffer.from([0, 0, 0, 0])), []);
  assert.throws(() => decodeStringMap(Buffer.from([1, 0])), /shorter than its count/);
  assert.throws(() => decodeStringMap(Buffer.from([1, 0, 0, 0, 5, 0, 0, 0, 0x61])), /a key at byte 4 says 5 bytes, 1 follow/);
  assert.throws(() => decodeStringMap(Buffer.from([1, 0, 0, 0, 1, 0, 0, 0, 0x61])), /a value at byte 9 runs past the end/);
  assert.throws(() => decodeStringMap(Buffer.from([0, 0, 0, 0, 7])), /1 bytes left after 0 entries/);
});

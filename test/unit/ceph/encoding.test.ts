import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeString, encodeStringMap } from '../../../src/ceph/encoding.js';

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

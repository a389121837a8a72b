import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareQuantities, tryCompareQuantities } from '../../../src/kube/quantity.js';

describe('compareQuantities: exact, whatever the spelling', () => {
  const rows: [string, string, number][] = [
    ['1Gi', '1024Mi', 0],
    ['1Gi', '1073741824', 0],
    ['1G', '1Gi', -1],
    ['1.5Gi', '1536Mi', 0],
    ['2Gi', '1Gi', 1],
    ['1e9', '1G', 0],
    ['100m', '1', -1],
    ['1000341504', '1000M', 1],
  ];
  for (const [a, b, want] of rows) test(`${a} vs ${b}`, () => assert.equal(compareQuantities(a, b), want));
  test('unparsable or missing: undefined from tryCompareQuantities, SyntaxError from compareQuantities', () => {
    assert.equal(tryCompareQuantities('lots', '1Gi'), undefined);
    assert.equal(tryCompareQuantities(undefined, '1Gi'), undefined);
    assert.throws(() => compareQuantities('1Gi', 'lots'), SyntaxError);
  });
});

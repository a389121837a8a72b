import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkMonitors } from '../../../src/ceph/monitors.js';
import {
  CEPH_NAMES, cephxKeyProblem, checkCephId, checkCephxKey, checkImageId, checkNamespace, checkPoolName, nameProblem,
} from '../../../src/ceph/names.js';
import { ValidationError } from '../../../src/ceph/validation.js';
import { NAME_RULES } from '../../../src/rbd/parameters.js';

function assertValidation(fn: () => unknown, field: string, problem: string | RegExp, allowed: string | RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ValidationError, `expected ValidationError, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.match(error.problem, typeof problem === 'string' ? new RegExp(problem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : problem);
    assert.match(error.allowed, typeof allowed === 'string' ? new RegExp(allowed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : allowed);
    return true;
  });
}

describe('Ceph names: one rule per name, whichever layer checks it', () => {
  test('StorageClass parameters use the Ceph layer\'s rules themselves', () => {
    assert.equal(NAME_RULES.cephId, CEPH_NAMES.cephId);
    assert.equal(NAME_RULES.pool, CEPH_NAMES.pool);
    assert.equal(NAME_RULES.radosNamespace, CEPH_NAMES.radosNamespace);
    assert.equal(NAME_RULES.image, CEPH_NAMES.image);
  });

  // A cephx id with "client." is refused everywhere: librados would authenticate as "client.client.admin".
  for (const id of ['client.admin', 'Client.kube']) {
    test(`${id} is refused, saying what to write`, () => {
      assertValidation(() => checkCephId(id), 'user', 'includes the "client." prefix (write', 'without the "client." prefix');
    });
  }
  test('plain ids pass', () => {
    for (const id of ['admin', 'kube', 'csi-rbd.provisioner', 'a_b']) assert.equal(checkCephId(id), id);
  });

  const pools: Array<[string, string | undefined]> = [
    ['rbd', undefined], ['kube-ec.data_1', undefined], ['.mgr', '".mgr" is not allowed'], ['-x', '"-x" is not allowed'],
    ['a/b', '"a/b" is not allowed'], ['', 'empty'], ['p'.repeat(256), 'longer than 255 characters'],
  ];
  for (const [pool, problem] of pools) {
    test(`pool ${JSON.stringify(pool).slice(0, 20)}: ${problem ?? 'allowed'}`, () => {
      assert.equal(nameProblem(CEPH_NAMES.pool, pool), problem);
      if (problem === undefined) assert.equal(checkPoolName(pool), pool);
      else assertValidation(() => checkPoolName(pool), 'pool', problem, /^letters, digits/);
    });
  }

  test('the default RADOS namespace is ""; others follow the name rule', () => {
    assert.equal(checkNamespace(''), '');
    assert.equal(checkNamespace(undefined), '');
    assert.equal(checkNamespace('tenant-a'), 'tenant-a');
    assertValidation(() => checkNamespace('a/b'), 'namespace', 'not allowed', 'RADOS namespace');
  });

  test('image ids are lower-case hex', () => {
    assert.equal(checkImageId('10d3a6b8b4567'), '10d3a6b8b4567');
    assertValidation(() => checkImageId('10D3'), 'id', 'not allowed', 'lower-case hex');
    assertValidation(() => checkImageId(7), 'id', 'must be a string', 'lower-case hex');
  });
});

describe('checkMonitors', () => {
  test('returns the list as mon_host takes it', () => {
    assert.equal(checkMonitors(' 10.0.0.1:6789 , [v2:10.0.0.2:3300,v1:10.0.0.2:6789]'), '10.0.0.1:6789,[v2:10.0.0.2:3300,v1:10.0.0.2:6789]');
  });
  test('names the field and what monitors allow', () => {
    assertValidation(() => checkMonitors(''), 'monitors', 'empty', 'address vector');
    assertValidation(() => checkMonitors('mon_a:6789'), 'monitors', 'is not a host name', 'host:port');
  });
});

describe('cephx keys', () => {
  // Syntactically valid keys that no cluster knows.
  const valid = ['AQBq4ghnAAAAABAAJ3rZ0p1Xb6bqU4mj8XyCqA==', 'AQBzbD1lAAAAABAAk7ZpUbTwDSa0Xjbi3bVVAw=='];
  for (const key of valid) test(`${key.slice(0, 6)}... is a key`, () => assert.equal(cephxKeyProblem(key), undefined));

  const aes = Buffer.from(valid[0]!, 'base64');
  const withType = Buffer.from(aes);
  withType.writeUInt16LE(0, 0);
  const withLength = Buffer.from(aes);
  withLength.writeUInt16LE(32, 10);
  const malformed: Array<[string, string, string]> = [
    ['empty', '', 'empty'],
    ['not base64', 'not a key at all', 'malformed: not 40 characters of base64'],
    ['a keyring instead of a key', `[client.admin]\n\tkey = ${valid[0]}\n`, 'malformed: not 40 characters of base64'],
    ['a trailing newline', `${valid[0]}\n`, 'malformed: not 40 characters of base64'],
    ['cut short', valid[0]!.slice(0, 37), 'malformed: not 40 characters of base64'],
    ['key type 0', withType.toString('base64'), 'malformed: not 40 characters of base64'],
    ['a secret length other than 16', withLength.toString('base64'), 'malformed: base64, but not of a cephx AES secret'],
  ];
  for (const [title, key, problem] of malformed) {
    test(`${title} is refused, and the message never shows the key`, () => {
      assert.ok(cephxKeyProblem(key)?.startsWith(problem), cephxKeyProblem(key));
      assert.throws(() => checkCephxKey(key), (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.equal(error.field, 'key');
        if (key.length > 8) assert.ok(!error.message.includes(key.trim().slice(2, 30)), error.message);
        return true;
      });
    });
  }
});

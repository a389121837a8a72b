import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger, operationLogger, redactValue } from '../../src/logger.js';
import { memoryLogger } from './fakes.js';

const CEPHX_KEY = 'AQBzbD1lAAAAABAAk7ZpUbTwDSa0Xjbi3bVVAw==';

describe('logger', () => {
  test('secret-named fields are redacted at any depth, other fields kept', async () => {
    const { logger, lines } = memoryLogger('debug');
    logger.info('connecting', { pool: 'rbd', key: CEPHX_KEY, adminSecretName: 'ceph-admin', nested: { userKey: 'x', password: 'p', token: 't', items: [{ secret: 's' }] } });
    await new Promise((resolve) => setImmediate(resolve));
    const line = lines[0];
    assert.ok(line !== undefined);
    assert.equal(line['pool'], 'rbd');
    assert.equal(line['key'], '[redacted]');
    assert.equal(line['adminSecretName'], 'ceph-admin');
    assert.deepEqual(line['nested'], { userKey: '[redacted]', password: '[redacted]', token: '[redacted]', items: [{ secret: '[redacted]' }] });
  });

  test('a cephx key inside a message or an error is redacted', async () => {
    const { logger, text } = memoryLogger('debug');
    logger.debug(`mon_command with key=${CEPHX_KEY} failed`, { error: new Error(`bad ${CEPHX_KEY}`) });
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(!text().includes(CEPHX_KEY), text());
    assert.match(text(), /\[redacted\]/);
  });

  test('redaction copies: the caller object is untouched', () => {
    const original = { spec: { key: 'k' } };
    const copy = redactValue(original) as { spec: { key: string } };
    assert.equal(copy.spec.key, '[redacted]');
    assert.equal(original.spec.key, 'k');
  });

  test('child loggers carry op, pvc and pv; text format prints them', async () => {
    const chunks: string[] = [];
    const stream = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk.toString()); cb(); } });
    const logger = createLogger({ level: 'info', format: 'text', stream });
    operationLogger(logger, { op: 'provision', pvc: 'ns/data', pv: 'pvc-1' }).info('image exists and is ours; adopting');
    logger.debug('hidden at info level');
    await new Promise((resolve) => setImmediate(resolve));
    const out = chunks.join('');
    assert.match(out, /INFO  image exists and is ours; adopting op=provision pvc=ns\/data pv=pvc-1/);
    assert.doesNotMatch(out, /hidden/);
  });
});

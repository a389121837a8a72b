import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { callStats, setMaxInflight, type Pool } from '../../src/ceph/index.js';
import { openTestPool, uniqueName, type OpenTestPool } from '../support/ceph.js';

const BOUND = 8;
const IMAGES = 200;

let pool: Pool;
let fixture: OpenTestPool;

before(async () => {
  setMaxInflight(BOUND);
  fixture = await openTestPool('burst');
  pool = fixture.pool;
});

after(async () => {
  await fixture?.close();
});

test(`${IMAGES} concurrent creates and removes stay within ${BOUND} calls in flight and keep the event loop free`, async (t) => {
  const names = Array.from({ length: IMAGES }, () => uniqueName('burst'));
  let maxSeen = 0;
  const sampler = setInterval(() => {
    maxSeen = Math.max(maxSeen, callStats().inflight);
  }, 1);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const before = callStats().completed;
  try {
    const created = await Promise.allSettled(names.map((n) => pool.createImage(n, 1024 * 1024 * 1024)));
    assert.deepEqual(created.filter((r) => r.status === 'rejected'), []);
    assert.equal((await pool.listImages()).filter((n) => names.includes(n)).length, IMAGES);
    const removed = await Promise.allSettled(names.map((n) => pool.removeImage(n)));
    assert.deepEqual(removed.filter((r) => r.status === 'rejected'), []);
  } finally {
    delay.disable();
    clearInterval(sampler);
  }
  const stats = callStats();
  assert.equal(stats.maxInflight, BOUND);
  assert.ok(stats.completed - before >= 2 * IMAGES, `completed ${stats.completed - before}`);
  assert.ok(stats.peakInflight <= BOUND, `peak in flight ${stats.peakInflight} > ${BOUND}`);
  assert.ok(maxSeen <= BOUND, `sampled ${maxSeen} in flight`);
  assert.ok(stats.peakInflight > 1, 'calls actually ran concurrently');
  assert.equal((await pool.listImages()).filter((n) => names.includes(n)).length, 0);
  const p99 = delay.percentile(99) / 1e6;
  const max = delay.max / 1e6;
  t.diagnostic(`event loop delay p50 ${(delay.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms; peak in flight ${stats.peakInflight}/${BOUND}`);
  // Generous: a librbd call on the event loop would show up as a stall of the whole burst, not a few ms.
  assert.ok(p99 < 100, `event loop delay p99 ${p99} ms`);
});

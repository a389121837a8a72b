import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TokenBucket } from '../../../src/kube/ratelimit.js';
import { FakeClock, flush } from '../fakes.js';

describe('TokenBucket', () => {
  test('a burst passes at once, then calls are spaced at 1/qps', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(10, 3, clock);
    const start = clock.now();
    const done: number[] = [];
    for (let i = 0; i < 6; i++) void bucket.take().then(() => done.push(clock.now() - start));
    await flush();
    assert.deepEqual(done, [0, 0, 0]);
    await clock.advance(300);
    assert.deepEqual(done, [0, 0, 0, 100, 200, 300]);
  });

  test('tokens refill over time up to the burst', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(2, 2, clock);
    await bucket.take();
    await bucket.take();
    await clock.advance(10_000);
    const done: number[] = [];
    const start = clock.now();
    for (let i = 0; i < 3; i++) void bucket.take().then(() => done.push(clock.now() - start));
    await clock.advance(500);
    assert.deepEqual(done, [0, 0, 500]);
  });

  test('an aborted wait gives its token back', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1, 1, clock);
    await bucket.take();
    const abort = new AbortController();
    const waiting = bucket.take(abort.signal);
    abort.abort(new Error('stop'));
    await assert.rejects(waiting, /stop/);
    await clock.advance(1000);
    let passed = false;
    void bucket.take().then(() => (passed = true));
    await flush();
    assert.equal(passed, true);
  });

  test('low-priority calls (Events) wait while normal calls wait, and keep their own order', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(10, 1, clock);
    const start = clock.now();
    const done: string[] = [];
    const take = (name: string, priority: 'normal' | 'low') => void bucket.take(undefined, priority).then(() => done.push(`${name}@${clock.now() - start}`));
    take('first', 'normal');
    take('event-1', 'low');
    take('pv-1', 'normal');
    take('event-2', 'low');
    take('pv-2', 'normal');
    await flush();
    assert.deepEqual(done, ['first@0']);
    await clock.advance(400);
    assert.deepEqual(done, ['first@0', 'pv-1@100', 'pv-2@200', 'event-1@300', 'event-2@400']);
    // With nobody waiting, a low-priority call takes a free token at once.
    await clock.advance(1000);
    take('event-3', 'low');
    await flush();
    assert.equal(done.at(-1), 'event-3@1400');
  });

  test('many waiters on one signal add one abort listener, and an abort rejects every one of them', async () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1, 1, clock);
    await bucket.take();
    const abort = new AbortController();
    const waits = Array.from({ length: 20 }, () => bucket.take(abort.signal));
    abort.abort(new Error('leadership lost'));
    for (const wait of waits) await assert.rejects(wait, /leadership lost/);
    await assert.rejects(bucket.take(abort.signal), /leadership lost/);
  });

  test('rejects nonsense settings', () => {
    assert.throws(() => new TokenBucket(0, 1, new FakeClock()), /qps > 0/);
  });
});

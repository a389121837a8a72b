// The bound on Ceph calls in flight, with fake calls: nothing here reaches librados (the addon is loaded, not used).
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { callStats, invoke, setMaxInflight, type CallObserver } from '../../../src/ceph/calls.js';
import { HandleClosed, ImageNotFound } from '../../../src/ceph/errors.js';

interface Held { release(): void; promise: Promise<void> }
function held(): Held {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => { release = resolve; });
  return { release, promise };
}
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** `count` calls that each note that they started, then wait until released. */
function heldCalls(count: number) {
  const started: number[] = [];
  const holds = Array.from({ length: count }, held);
  const results = holds.map((h, i) => invoke(undefined, 'rbd_stat', async () => {
    started.push(i);
    await h.promise;
    return i;
  }));
  return { started, holds, results };
}

afterEach(() => setMaxInflight(16));

describe('invoke', () => {
  test('runs at most maxInflight calls at once; the others wait, in order, and count as queued', async () => {
    setMaxInflight(2);
    const { started, holds, results } = heldCalls(5);
    await settle();
    assert.deepEqual(started, [0, 1]);
    assert.equal(callStats().queued, 3);
    holds[1]!.release();
    await settle();
    assert.deepEqual(started, [0, 1, 2]);
    assert.equal(callStats().queued, 2);
    for (const h of holds) h.release();
    assert.deepEqual(await Promise.all(results), [0, 1, 2, 3, 4]);
    assert.equal(callStats().queued, 0);
  });

  test('a larger bound admits waiting calls at once; a smaller one lets running calls finish', async () => {
    setMaxInflight(1);
    const { started, holds, results } = heldCalls(4);
    await settle();
    assert.deepEqual(started, [0]);
    setMaxInflight(3);
    await settle();
    assert.deepEqual(started, [0, 1, 2]);
    setMaxInflight(1);
    holds[0]!.release();
    holds[1]!.release();
    await settle();
    assert.deepEqual(started, [0, 1, 2], 'two still running against a bound of one: none admitted');
    holds[2]!.release();
    await settle();
    assert.deepEqual(started, [0, 1, 2, 3]);
    holds[3]!.release();
    await Promise.all(results);
  });

  test('the observer is asked when a call is admitted, not when it queues: a refusal meanwhile stops it', async () => {
    setMaxInflight(1);
    let leading = true;
    const finished: Array<[string, string]> = [];
    const observer: CallObserver = {
      started: () => {
        if (!leading) throw new Error('lost the lease');
      },
      finished: (op, seconds, result) => {
        assert.ok(seconds >= 0);
        finished.push([op, result]);
      },
    };
    const first = held();
    let secondRan = false;
    const running = invoke(observer, 'rbd_create4', () => first.promise);
    const queued = invoke(observer, 'rbd_remove', async () => {
      secondRan = true;
    });
    await settle();
    leading = false;
    first.release();
    await running;
    await assert.rejects(queued, /lost the lease/);
    assert.equal(secondRan, false);
    assert.deepEqual(finished, [['rbd_create4', 'ok'], ['rbd_remove', 'refused']]);
  });

  test('a native rejection becomes a typed error, and the observer hears its errno name', async () => {
    const results: string[] = [];
    const nativeError = Object.assign(new Error('rbd_open failed'), { code: 'ENOENT', errno: 2, op: 'rbd_open', object: 'rbd/img' });
    const err = await invoke({ finished: (_op, _s, result) => results.push(result) }, 'rbd_open', () => Promise.reject(nativeError))
      .then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ImageNotFound, String(err));
    assert.deepEqual(results, ['ENOENT']);
  });

  test('releasing a handle neither waits for the bound nor asks the observer', async () => {
    setMaxInflight(1);
    const hold = held();
    const observer: CallObserver = { started: () => { throw new Error('refused'); } };
    const running = invoke(undefined, 'rbd_stat', () => hold.promise);
    await settle();
    await invoke(observer, 'rbd_close', async () => undefined);
    const closed = Object.assign(new Error('closed'), { code: 'EBADF', op: 'rados_shutdown', object: 'client.admin' });
    await assert.rejects(invoke(observer, 'rados_shutdown', () => Promise.reject(closed)), HandleClosed);
    hold.release();
    await running;
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ProcessResult, WorkQueue } from '../../../src/kube/workqueue.js';
import { FakeClock, flush } from '../fakes.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function makeQueue(clock: FakeClock, process: (key: string) => Promise<ProcessResult>, extra: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}): WorkQueue {
  return new WorkQueue({ concurrency: 4, clock, signal: new AbortController().signal, process: (key) => process(key), baseDelayMs: 1000, maxDelayMs: 8000, slowDelayMs: 60_000, ...extra });
}

describe('WorkQueue', () => {
  test('one run in flight per key; a key added while running runs exactly once more', async () => {
    const clock = new FakeClock();
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const queue = makeQueue(clock, async () => {
      runs++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) await gate.promise;
      running--;
      return undefined;
    });
    queue.add('ns/a');
    await flush();
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/a');
    await flush();
    assert.equal(runs, 1);
    gate.resolve();
    await flush();
    assert.equal(runs, 2);
    assert.equal(maxRunning, 1);
  });

  test('adding a queued key does not queue it twice', async () => {
    const clock = new FakeClock();
    const gate = deferred();
    const seen: string[] = [];
    const queue = makeQueue(clock, async (key) => {
      seen.push(key);
      if (key === 'blocker') await gate.promise;
      return undefined;
    }, { concurrency: 1 });
    queue.add('blocker');
    queue.add('x');
    queue.add('x');
    assert.equal(queue.depth, 1);
    gate.resolve();
    await flush();
    assert.deepEqual(seen, ['blocker', 'x']);
  });

  test('the global concurrency bound holds', async () => {
    const clock = new FakeClock();
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let done = 0;
    const queue = makeQueue(clock, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await gate.promise;
      running--;
      done++;
      return undefined;
    }, { concurrency: 2 });
    for (let i = 0; i < 7; i++) queue.add(`k${i}`);
    await flush();
    assert.equal(running, 2);
    assert.equal(queue.depth, 5);
    assert.equal(queue.inFlight, 2);
    gate.resolve();
    await flush(30);
    assert.equal(done, 7);
    assert.equal(maxRunning, 2);
    assert.equal(queue.depth, 0);
  });

  test('backoff doubles per failure up to the cap', async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const times: number[] = [];
    const queue = makeQueue(clock, async () => {
      times.push(clock.now() - start);
      return { retry: 'backoff' };
    });
    queue.add('k');
    await clock.advance(40_000);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    assert.deepEqual(gaps.slice(0, 6), [1000, 2000, 4000, 8000, 8000, 8000]);
    assert.equal(queue.failures('k'), times.length);
  });

  test('final errors wait the slow delay, not the fast backoff', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const queue = makeQueue(clock, async () => {
      runs++;
      return { retry: 'slow' };
    });
    queue.add('k');
    await clock.advance(59_999);
    assert.equal(runs, 1);
    await clock.advance(1);
    assert.equal(runs, 2);
  });

  test('success forgets the backoff', async () => {
    const clock = new FakeClock();
    const results: ProcessResult[] = [{ retry: 'backoff' }, { retry: 'backoff' }, undefined];
    let runs = 0;
    const queue = makeQueue(clock, async () => {
      runs++;
      return runs <= results.length ? results[runs - 1] : { retry: 'backoff' };
    });
    queue.add('k');
    await clock.advance(1000 + 2000);
    assert.equal(runs, 3);
    assert.equal(queue.failures('k'), 0);
    queue.add('k');
    await flush();
    assert.equal(runs, 4);
    assert.deepEqual(clock.pendingDelays(), [1000], 'the next failure starts at the base delay again');
  });

  test('an add while a key waits for its backoff runs it now, keeping the failure count', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const queue = makeQueue(clock, async () => {
      runs++;
      return { retry: 'backoff' };
    });
    queue.add('k');
    await clock.advance(1000);
    assert.equal(runs, 2);
    queue.add('k');
    await flush();
    assert.equal(runs, 3);
    assert.deepEqual(clock.pendingDelays(), [4000]);
  });

  test('a throwing process is retried with backoff and reported', async () => {
    const clock = new FakeClock();
    const errors: string[] = [];
    let runs = 0;
    const queue = makeQueue(clock, async () => {
      runs++;
      if (runs === 1) throw new Error('boom');
      return undefined;
    }, { onError: (key, error) => errors.push(`${key}: ${(error as Error).message}`) });
    queue.add('k');
    await clock.advance(1000);
    assert.deepEqual(errors, ['k: boom']);
    assert.equal(runs, 2);
  });

  test('forget cancels a scheduled retry', async () => {
    const clock = new FakeClock();
    let runs = 0;
    const queue = makeQueue(clock, async () => {
      runs++;
      return { retry: 'backoff' };
    });
    queue.add('k');
    await flush();
    queue.forget('k');
    await clock.advance(10_000);
    assert.equal(runs, 1);
  });

  test('shutDown waits for work in flight, up to the deadline', async () => {
    const clock = new FakeClock();
    const gate = deferred();
    const queue = makeQueue(clock, async () => {
      await gate.promise;
      return undefined;
    });
    queue.add('k');
    await flush();
    const drained = queue.shutDown(5000);
    await clock.advance(1000);
    gate.resolve();
    assert.equal(await drained, true);
    queue.add('after');
    assert.equal(queue.depth, 0, 'no work accepted after shutdown');
  });

  test('shutDown gives up after the deadline and drops queued keys', async () => {
    const clock = new FakeClock();
    const seen: string[] = [];
    const queue = makeQueue(clock, async (key) => {
      seen.push(key);
      await new Promise(() => undefined);
      return undefined;
    }, { concurrency: 1 });
    queue.add('a');
    queue.add('b');
    await flush();
    const drained = queue.shutDown(5000);
    await clock.advance(5000);
    assert.equal(await drained, false);
    assert.deepEqual(seen, ['a']);
  });

  test('depth is reported on every change', async () => {
    const clock = new FakeClock();
    const depths: number[] = [];
    const queue = makeQueue(clock, async () => undefined, { concurrency: 1, onDepth: (depth) => depths.push(depth) });
    queue.add('a');
    queue.add('b');
    await flush();
    // p-queue starts "a" at once; "b" waits for it.
    assert.deepEqual(depths, [1, 0, 1, 0]);
  });

  // client-go's workqueue metrics: what the runner turns into rbd_provisioner_workqueue_*.
  test('adds, the wait before a run and its duration, and the runs in progress, all on the clock', async () => {
    const clock = new FakeClock();
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const adds: string[] = [];
    const waited: Array<[string, number]> = [];
    const worked: Array<[string, number]> = [];
    const queue = makeQueue(clock, async (key) => {
      const gate = deferred();
      gates.set(key, gate);
      await gate.promise;
      return undefined;
    }, {
      concurrency: 2,
      onAdd: (key) => adds.push(key),
      onStart: (key, ms) => waited.push([key, ms]),
      onDone: (key, ms) => worked.push([key, ms]),
    });
    assert.deepEqual(queue.progress(), { unfinishedMs: 0, longestMs: 0 });

    queue.add('a');
    await flush();
    clock.jump(1000);
    queue.add('b');
    queue.add('c'); // waits: two workers
    queue.add('c'); // already waiting: not an add
    await flush();
    assert.deepEqual(adds, ['a', 'b', 'c']);
    assert.deepEqual(waited, [['a', 0], ['b', 0]]);
    clock.jump(500);
    // a has run 1.5 s, b 0.5 s.
    assert.deepEqual(queue.progress(), { unfinishedMs: 2000, longestMs: 1500 });

    queue.add('a'); // running: it will run once more, and that counts as an add
    queue.add('a');
    assert.deepEqual(adds, ['a', 'b', 'c', 'a']);
    clock.jump(500);
    gates.get('a')!.resolve();
    await flush();
    // a took 2 s; c waited 1 s for a worker and starts now.
    assert.deepEqual(worked, [['a', 2000]]);
    assert.deepEqual(waited.at(-1), ['c', 1000]);
    assert.deepEqual(queue.progress(), { unfinishedMs: 1000, longestMs: 1000 });

    clock.jump(250);
    gates.get('b')!.resolve();
    await flush();
    // a's second run waited from its second add (0.75 s ago), behind c.
    assert.deepEqual(worked.at(-1), ['b', 1250]);
    assert.deepEqual(waited.at(-1), ['a', 750]);
    gates.get('a')!.resolve();
    gates.get('c')!.resolve();
    await flush();
    assert.deepEqual(queue.progress(), { unfinishedMs: 0, longestMs: 0 });
  });

  test('a key scheduled for later is added when its timer fires; its wait starts then', async () => {
    const clock = new FakeClock();
    const adds: string[] = [];
    const waited: number[] = [];
    const queue = makeQueue(clock, async () => undefined, { onAdd: (key) => adds.push(key), onStart: (_key, ms) => waited.push(ms) });
    queue.addAfter('a', 5000);
    await clock.advance(4999);
    assert.deepEqual(adds, []);
    await clock.advance(1);
    assert.deepEqual(adds, ['a']);
    assert.deepEqual(waited, [0]);
  });
});

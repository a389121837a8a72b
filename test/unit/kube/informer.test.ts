import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1ConfigMap, V1Status } from '@kubernetes/client-node';
import { Informer, type InformerOptions, type ListWatchSource, type RestartReason, dropBookkeeping } from '../../../src/kube/informer.js';
import type { ListResult, WatchEventType } from '../../../src/kube/client.js';
import { FakeClock, apiError, flush, memoryLogger } from '../fakes.js';

type Obj = V1ConfigMap;
type OnEvent = (type: WatchEventType, object: Obj | V1Status) => void;
type WatchScript = (onEvent: OnEvent, signal: AbortSignal) => Promise<void>;

const obj = (name: string, rv: string): Obj => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

const hang: WatchScript = (_onEvent, signal) =>
  new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));

class ScriptedSource implements ListWatchSource<Obj> {
  lists: (() => ListResult<Obj>)[] = [];
  watches: WatchScript[] = [];
  listTimes: number[] = [];
  watchCalls: { rv: string; at: number; timeoutSeconds: number }[] = [];
  constructor(private readonly clock: FakeClock, private readonly fallbackList: () => ListResult<Obj> = () => ({ items: [], resourceVersion: '1' }), private readonly fallbackWatch: WatchScript = hang) {}

  // A runaway informer (a tight loop) would hang the fake clock; past this many calls the source stops answering
  // so the test fails on its call counts instead.
  private static readonly RUNAWAY = 50;

  async list(): Promise<ListResult<Obj>> {
    this.listTimes.push(this.clock.now());
    if (this.listTimes.length > ScriptedSource.RUNAWAY) return new Promise(() => undefined);
    return (this.lists.shift() ?? this.fallbackList)();
  }

  watch(resourceVersion: string, onEvent: OnEvent, options: { signal: AbortSignal; timeoutSeconds: number }): Promise<void> {
    this.watchCalls.push({ rv: resourceVersion, at: this.clock.now(), timeoutSeconds: options.timeoutSeconds });
    if (this.watchCalls.length > ScriptedSource.RUNAWAY) return hang(onEvent, options.signal);
    return (this.watches.shift() ?? this.fallbackWatch)(onEvent, options.signal);
  }
}

function makeInformer(clock: FakeClock, source: ScriptedSource, restarts: RestartReason[] = [], resyncPeriodMs = 0, extra: Partial<InformerOptions<Obj>> = {}): Informer<Obj> {
  const { logger } = memoryLogger('error');
  return new Informer<Obj>({
    name: 'configmaps',
    source,
    clock,
    logger,
    resyncPeriodMs,
    backoffBaseMs: 1000,
    backoffMaxMs: 30_000,
    jitter: 0.5,
    random: () => 0.5,
    healthyAfterMs: 30_000,
    minWatchTimeoutSeconds: 300,
    onRestart: (reason) => restarts.push(reason),
    ...extra,
  });
}

describe('Informer', { timeout: 20_000 }, () => {
  test('lists, syncs, then applies watch events from the list resourceVersion', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    source.lists.push(() => ({ items: [obj('a', '5')], resourceVersion: '10' }));
    let emit!: OnEvent;
    source.watches.push((onEvent, signal) => {
      emit = onEvent;
      return hang(onEvent, signal);
    });
    const informer = makeInformer(clock, source);
    const seen: string[] = [];
    informer.addHandlers({
      onAdd: (o) => seen.push(`add ${o.metadata?.name}`),
      onUpdate: (o, old) => seen.push(`update ${o.metadata?.name} ${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`),
      onDelete: (o) => seen.push(`delete ${o.metadata?.name}`),
    });
    const stop = new AbortController();
    assert.equal(informer.hasSynced(), false);
    const running = informer.run(stop.signal);
    await flush();
    assert.equal(informer.hasSynced(), true);
    assert.equal(source.watchCalls[0]?.rv, '10');
    emit('ADDED', obj('b', '11'));
    emit('MODIFIED', obj('a', '12'));
    emit('MODIFIED', obj('a', '12'));
    emit('DELETED', obj('b', '13'));
    emit('BOOKMARK', obj('', '14'));
    assert.deepEqual(seen, ['add a', 'add b', 'update a 5->12', 'delete b']);
    assert.equal(informer.get('ns/a')?.metadata?.resourceVersion, '12');
    assert.equal(informer.get('ns/b'), undefined);
    stop.abort();
    await running;
  });

  test('a watch error always restarts, with exponential backoff and a relist (never a tight loop)', async () => {
    const clock = new FakeClock();
    const failing: WatchScript = async () => {
      throw apiError(0, 'NoResponse', 'watch: socket hang up');
    };
    const source = new ScriptedSource(clock, undefined, failing);
    const restarts: RestartReason[] = [];
    const informer = makeInformer(clock, source, restarts);
    const stop = new AbortController();
    const started = clock.now();
    const running = informer.run(stop.signal);
    await clock.advance(60_000);
    const gaps = source.listTimes.slice(1).map((t, i) => t - (source.listTimes[i] as number));
    // base 1 s doubling, times (1 + 0.5 * jitter 0.5) = 1.25
    assert.deepEqual(gaps.slice(0, 5), [1250, 2500, 5000, 10_000, 20_000]);
    assert.ok(source.listTimes.length <= 7, `${source.listTimes.length} lists in 60 s`);
    assert.ok(restarts.every((r) => r === 'error') && restarts.length >= 5);
    assert.equal(source.listTimes[0], started);
    stop.abort();
    await running;
  });

  test('410 Gone as a watch ERROR event: relist', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    source.lists.push(() => ({ items: [obj('a', '5'), obj('b', '6')], resourceVersion: '10' }));
    source.lists.push(() => ({ items: [obj('a', '5')], resourceVersion: '50' }));
    source.watches.push(async (onEvent) => {
      onEvent('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 10 (40)' });
    });
    const restarts: RestartReason[] = [];
    const informer = makeInformer(clock, source, restarts);
    const deleted: string[] = [];
    informer.addHandlers({ onDelete: (o) => deleted.push(o.metadata?.name ?? '') });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await clock.advance(2000);
    assert.deepEqual(restarts, ['gone']);
    assert.equal(source.listTimes.length, 2);
    assert.deepEqual(deleted, ['b'], 'objects gone while we were not watching are reported deleted');
    assert.equal(source.watchCalls.at(-1)?.rv, '50');
    stop.abort();
    await running;
  });

  test('410 Gone when opening the watch: relist', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    source.watches.push(async () => {
      throw apiError(410, 'Expired', 'watch: HTTP 410');
    });
    const restarts: RestartReason[] = [];
    const informer = makeInformer(clock, source, restarts);
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await clock.advance(2000);
    assert.deepEqual(restarts, ['gone']);
    assert.equal(source.listTimes.length, 2);
    stop.abort();
    await running;
  });

  test('a failing list is retried with backoff and sync waits for it', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    source.lists.push(() => {
      throw apiError(503, 'ServiceUnavailable');
    });
    const informer = makeInformer(clock, source);
    const stop = new AbortController();
    let synced = false;
    void informer.waitForSync(stop.signal).then(() => (synced = true));
    const running = informer.run(stop.signal);
    await flush();
    assert.equal(informer.hasSynced(), false);
    assert.equal(synced, false);
    await clock.advance(1250);
    assert.equal(informer.hasSynced(), true);
    assert.equal(synced, true);
    stop.abort();
    await running;
  });

  test('a healthy watch that the server ends is resumed at once from its resourceVersion, without a relist', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    source.watches.push(async (onEvent) => {
      onEvent('MODIFIED', obj('a', '20'));
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 300_000));
    });
    const restarts: RestartReason[] = [];
    const informer = makeInformer(clock, source, restarts);
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await clock.advance(300_000);
    assert.equal(source.listTimes.length, 1);
    assert.equal(source.watchCalls.length, 2);
    assert.equal(source.watchCalls[1]?.rv, '20');
    assert.equal(source.watchCalls[1]?.at, source.watchCalls[0]!.at + 300_000);
    assert.deepEqual(restarts, []);
    stop.abort();
    await running;
  });

  test('a watch that closes at once backs off (a server that keeps closing cannot make us spin)', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock, undefined, async () => undefined);
    const restarts: RestartReason[] = [];
    const informer = makeInformer(clock, source, restarts);
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await clock.advance(10_000);
    assert.ok(source.watchCalls.length <= 4, `${source.watchCalls.length} watches in 10 s`);
    assert.ok(restarts.length >= 2 && restarts.every((r) => r === 'closed-early'));
    stop.abort();
    await running;
  });

  test('a watch that outlives its timeout is cut by the watchdog and reopened', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    const informer = makeInformer(clock, source);
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await flush();
    const timeoutSeconds = source.watchCalls[0]?.timeoutSeconds ?? 0;
    assert.equal(timeoutSeconds, 450, 'server timeout picked in [300, 600) s');
    await clock.advance(timeoutSeconds * 1000 + 30_000);
    assert.equal(source.watchCalls.length, 2);
    stop.abort();
    await running;
  });

  test('resync hands every cached object to the handlers each period', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock, () => ({ items: [obj('a', '1'), obj('b', '2')], resourceVersion: '3' }));
    const informer = makeInformer(clock, source, [], 600_000);
    const resynced: string[] = [];
    informer.addHandlers({ onResync: (o) => resynced.push(o.metadata?.name ?? '') });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await clock.advance(599_999);
    assert.deepEqual(resynced, []);
    await clock.advance(1);
    assert.deepEqual(resynced.sort(), ['a', 'b']);
    stop.abort();
    await running;
  });

  test('a throwing handler does not stop the informer', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock, () => ({ items: [obj('a', '1'), obj('b', '2')], resourceVersion: '3' }));
    const informer = makeInformer(clock, source);
    const added: string[] = [];
    informer.addHandlers({ onAdd: () => { throw new Error('bad handler'); } });
    informer.addHandlers({ onAdd: (o) => added.push(o.metadata?.name ?? '') });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await flush();
    assert.deepEqual(added, ['a', 'b']);
    assert.equal(informer.size, 2);
    stop.abort();
    await running;
  });

  test('listed and watched objects are trimmed once, before the cache and the handlers see them', async () => {
    const clock = new FakeClock();
    const source = new ScriptedSource(clock);
    const fat = (name: string, rv: string): Obj => ({
      metadata: {
        name, namespace: 'ns', resourceVersion: rv, finalizers: ['keep/me'],
        managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"a huge":"copy"}', 'keep': 'me' },
      },
      data: { key: 'value' },
    });
    source.lists.push(() => ({ items: [fat('a', '5')], resourceVersion: '10' }));
    let emit!: OnEvent;
    source.watches.push((onEvent, signal) => {
      emit = onEvent;
      return hang(onEvent, signal);
    });
    let trims = 0;
    const informer = makeInformer(clock, source, [], 0, { trim: (o) => (trims++, dropBookkeeping(o)) });
    const handed: Obj[] = [];
    informer.addHandlers({ onAdd: (o) => handed.push(o), onUpdate: (o) => handed.push(o), onDelete: (o) => handed.push(o) });
    const stop = new AbortController();
    const running = informer.run(stop.signal);
    await flush();
    emit('MODIFIED', fat('a', '11'));
    emit('ADDED', fat('b', '12'));
    emit('DELETED', fat('b', '13'));
    assert.equal(trims, 4);
    const expected = (rv: string, name = 'a'): Obj => ({
      metadata: { name, namespace: 'ns', resourceVersion: rv, finalizers: ['keep/me'], annotations: { keep: 'me' } },
      data: { key: 'value' },
    });
    assert.deepEqual(informer.get('ns/a'), expected('11'));
    assert.deepEqual(handed, [expected('5'), expected('11'), expected('12', 'b'), expected('13', 'b')]);
    stop.abort();
    await running;
  });
});

describe('dropBookkeeping', () => {
  test('keeps every other field, and objects without metadata or annotations', () => {
    assert.deepEqual(dropBookkeeping({ metadata: { name: 'a', labels: { l: 'v' } } }), { metadata: { name: 'a', labels: { l: 'v' } } });
    assert.deepEqual(dropBookkeeping({ kind: 'X' }), { kind: 'X' });
    assert.deepEqual(dropBookkeeping({ metadata: { annotations: {} } }), { metadata: { annotations: {} } });
  });
});

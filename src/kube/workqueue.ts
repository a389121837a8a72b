// A keyed work queue in the manner of client-go's workqueue: at most one in-flight run per key, a key added while
// it runs runs again right after, per-key exponential backoff, and p-queue only for the global concurrency bound.
import PQueue from 'p-queue';
import { type Clock, type TimerHandle, backoffDelay, sleep } from './clock.js';

/** undefined: done (the key's backoff is forgotten). */
export type ProcessResult = undefined | { retry: 'backoff' | 'slow' } | { requeueAfterMs: number };

export interface WorkQueueOptions {
  concurrency: number;
  clock: Clock;
  /** Handed to every run; aborting it is how the owner stops work at once (lost leadership). */
  signal: AbortSignal;
  process: (key: string, signal: AbortSignal) => Promise<ProcessResult>;
  /** First retry delay; doubles per consecutive failure up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Delay after a final error (bad input that only a human fixes). */
  slowDelayMs?: number;
  /** Called when the number of keys waiting to run changes. */
  onDepth?: (depth: number) => void;
  /** Called when the number of keys being processed changes. */
  onInFlight?: (inFlight: number) => void;
  /** Called when a failed key is scheduled to run again. */
  onRetry?: (key: string, kind: 'backoff' | 'slow', delayMs: number, failures: number) => void;
  /** Called when process throws (treated as a backoff retry). */
  onError?: (key: string, error: unknown) => void;
  /** Called when a key is added that was not already waiting (as client-go counts adds). */
  onAdd?: (key: string) => void;
  /** Called when a run starts, with how long the key waited since it was added. */
  onStart?: (key: string, waitedMs: number) => void;
  /** Called when a run ends, with how long it took. */
  onDone?: (key: string, workedMs: number) => void;
}

/** Runs in progress now (for metrics read at scrape time). */
export interface RunsInProgress {
  /** Sum of how long each run in progress has been running. */
  unfinishedMs: number;
  /** The longest of them; 0 when nothing runs. */
  longestMs: number;
}

interface Entry {
  queued: boolean;
  running: boolean;
  /** Added again while running: run once more afterwards. */
  dirty: boolean;
  failures: number;
  timer?: TimerHandle;
  timerAt?: number;
  /** When the key was added and not yet started (queued, or dirty while running). */
  addedAt?: number;
  /** When its run in progress started. */
  startedAt?: number;
}

export const DEFAULT_BASE_DELAY_MS = 1000;
export const DEFAULT_MAX_DELAY_MS = 5 * 60_000;

export class WorkQueue {
  private readonly entries = new Map<string, Entry>();
  /** Entries with a run in progress. */
  private readonly runs = new Set<Entry>();
  private readonly pq: PQueue;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly slowDelayMs: number;
  private waiting = 0;
  private running = 0;
  private closed = false;

  constructor(private readonly options: WorkQueueOptions) {
    this.pq = new PQueue({ concurrency: options.concurrency });
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.slowDelayMs = options.slowDelayMs ?? this.maxDelayMs;
  }

  /** Runs the key as soon as a worker is free (after its current run, if one is in flight). */
  add(key: string): void {
    if (this.closed) return;
    const entry = this.entry(key);
    if (entry.running) {
      if (!entry.dirty) this.added(key, entry);
      entry.dirty = true;
      return;
    }
    if (entry.queued) return;
    this.cancelTimer(entry);
    this.added(key, entry);
    this.enqueue(key, entry);
  }

  /** Runs the key after delayMs, unless it is queued or scheduled earlier anyway. */
  addAfter(key: string, delayMs: number): void {
    if (this.closed) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const entry = this.entry(key);
    if (entry.queued) return;
    const at = this.options.clock.now() + delayMs;
    if (entry.timer !== undefined && (entry.timerAt as number) <= at) return;
    this.cancelTimer(entry);
    entry.timerAt = at;
    entry.timer = this.options.clock.setTimeout(() => {
      entry.timer = undefined;
      entry.timerAt = undefined;
      this.add(key);
    }, delayMs);
  }

  /** Drops the key's backoff and any scheduled retry (the object is gone). */
  forget(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    entry.failures = 0;
    this.cancelTimer(entry);
    this.dropIfIdle(key, entry);
  }

  failures(key: string): number {
    return this.entries.get(key)?.failures ?? 0;
  }

  /** Keys waiting for a worker (not running, not waiting for a backoff timer). */
  get depth(): number {
    return this.waiting;
  }

  get inFlight(): number {
    return this.running;
  }

  /** How long the runs in progress have been running, now. */
  progress(): RunsInProgress {
    const now = this.options.clock.now();
    let unfinishedMs = 0;
    let longestMs = 0;
    for (const entry of this.runs) {
      const runningMs = Math.max(0, now - (entry.startedAt as number));
      unfinishedMs += runningMs;
      longestMs = Math.max(longestMs, runningMs);
    }
    return { unfinishedMs, longestMs };
  }

  /** Delay before the next retry of a key that failed `failures` times in a row. */
  retryDelay(kind: 'backoff' | 'slow', failures: number): number {
    if (kind === 'slow') return this.slowDelayMs;
    return backoffDelay(failures, this.baseDelayMs, this.maxDelayMs);
  }

  /**
   * Stops accepting work, drops queued and scheduled keys, and waits up to deadlineMs for runs in flight.
   * Resolves true when everything finished in time. Calling it again waits again (e.g. after aborting the runs).
   */
  async shutDown(deadlineMs: number): Promise<boolean> {
    this.closed = true;
    for (const entry of this.entries.values()) this.cancelTimer(entry);
    this.pq.clear();
    this.setWaiting(0);
    if (this.running === 0) return true;
    const deadline = new AbortController();
    const timedOut = sleep(this.options.clock, deadlineMs, deadline.signal).then(
      () => false,
      () => true,
    );
    const drained = this.pq.onIdle().then(() => true);
    const result = await Promise.race([drained, timedOut]);
    deadline.abort();
    return result;
  }

  private entry(key: string): Entry {
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { queued: false, running: false, dirty: false, failures: 0 };
      this.entries.set(key, entry);
    }
    return entry;
  }

  private added(key: string, entry: Entry): void {
    entry.addedAt = this.options.clock.now();
    this.options.onAdd?.(key);
  }

  private enqueue(key: string, entry: Entry): void {
    entry.queued = true;
    this.setWaiting(this.waiting + 1);
    void this.pq.add(() => this.run(key, entry));
  }

  private async run(key: string, entry: Entry): Promise<void> {
    entry.queued = false;
    entry.running = true;
    this.setWaiting(this.waiting - 1);
    this.running += 1;
    this.options.onInFlight?.(this.running);
    const startedAt = this.options.clock.now();
    this.options.onStart?.(key, Math.max(0, startedAt - (entry.addedAt ?? startedAt)));
    entry.addedAt = undefined;
    entry.startedAt = startedAt;
    this.runs.add(entry);
    let result: ProcessResult;
    try {
      result = await this.options.process(key, this.options.signal);
    } catch (error) {
      this.options.onError?.(key, error);
      result = { retry: 'backoff' };
    }
    entry.running = false;
    this.runs.delete(entry);
    this.options.onDone?.(key, Math.max(0, this.options.clock.now() - startedAt));
    entry.startedAt = undefined;
    this.running -= 1;
    this.options.onInFlight?.(this.running);
    if (this.closed) return;

    let delayMs: number | undefined;
    if (result === undefined) {
      entry.failures = 0;
    } else if ('retry' in result) {
      entry.failures += 1;
      delayMs = this.retryDelay(result.retry, entry.failures);
      this.options.onRetry?.(key, result.retry, delayMs, entry.failures);
    } else {
      delayMs = result.requeueAfterMs;
    }

    if (entry.dirty) {
      // The object changed while we worked on it: look again now, whatever the outcome was.
      entry.dirty = false;
      this.cancelTimer(entry);
      this.enqueue(key, entry);
    } else if (delayMs !== undefined) {
      this.addAfter(key, delayMs);
    } else {
      this.dropIfIdle(key, entry);
    }
  }

  private cancelTimer(entry: Entry): void {
    if (entry.timer !== undefined) this.options.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.timerAt = undefined;
  }

  private dropIfIdle(key: string, entry: Entry): void {
    if (!entry.queued && !entry.running && entry.timer === undefined && entry.failures === 0 && !entry.dirty) {
      this.entries.delete(key);
    }
  }

  private setWaiting(depth: number): void {
    this.waiting = Math.max(0, depth);
    this.options.onDepth?.(this.waiting);
  }
}

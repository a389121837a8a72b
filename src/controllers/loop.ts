// What the runner needs of one reconcile loop. Each loop watches its objects through the shared informers, decides
// per key, and acts only while this replica leads; the runner gives it a work queue for exactly that time.
import type { ProcessResult } from '../kube/workqueue.js';

/** Where a loop's informer handlers put keys; a no-op while this replica is not leading. */
export interface KeySink {
  add(key: string): void;
  forget(key: string): void;
}

export interface ControlLoop {
  /** Short and stable: used in logs and as a metric label. */
  readonly name: string;
  /** Concurrent keys at most. */
  readonly workers: number;
  /** Reconciles one key. Reads the current object from the caches; never throws for an expected failure. */
  process(key: string, signal: AbortSignal): Promise<ProcessResult>;
  /** Leading starts (every informer synced): keys go to `sink` until stop(). Enqueue what the caches hold now. */
  start(sink: KeySink): void;
  /** Leading stops: informer events are no longer queued. */
  stop(): void;
  /** Work of the loop's own while leading (e.g. orphan collection); resolves soon after `signal` aborts. */
  background?(signal: AbortSignal): Promise<void>;
}

/** The part of a loop that holds the sink: handlers call enqueue/forget whether or not this replica leads. */
export class LoopKeys implements KeySink {
  private sink: KeySink | undefined;

  attach(sink: KeySink | undefined): void {
    this.sink = sink;
  }

  add(key: string): void {
    this.sink?.add(key);
  }

  forget(key: string): void {
    this.sink?.forget(key);
  }
}

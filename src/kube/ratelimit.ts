// Client-side token bucket for API calls (qps refill, burst capacity), like client-go's flowcontrol limiter, with one
// addition: calls of low priority (Events) take a token only when no other call is waiting for one, so a burst of
// claims spends the budget on PVs first and its Events follow (client-go's recorder has its own queue for the same
// reason: an event never holds up the work it reports).
import { abortReason, type Clock, type TimerHandle } from './clock.js';
import { onAbort } from './abort.js';

export type Priority = 'normal' | 'low';

interface Waiter {
  grant(): void;
}

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly waiting: Record<Priority, Waiter[]> = { normal: [], low: [] };
  private timer: TimerHandle | undefined;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`token bucket needs qps > 0 and burst >= 1 (got ${qps}, ${burst})`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes one token, waiting for it (in call order within a priority) when the bucket is empty. */
  async take(signal?: AbortSignal, priority: Priority = 'normal'): Promise<void> {
    if (signal?.aborted) throw abortReason(signal);
    this.refill();
    const ahead = this.waiting.normal.length + (priority === 'low' ? this.waiting.low.length : 0);
    if (ahead === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const queue = this.waiting[priority];
      let stopFollowing = (): void => {};
      const waiter: Waiter = {
        grant: () => {
          stopFollowing();
          resolve();
        },
      };
      queue.push(waiter);
      if (signal !== undefined) {
        // One listener per shared signal (abort.ts), not one per waiting call.
        stopFollowing = onAbort(signal, () => {
          const index = queue.indexOf(waiter);
          if (index >= 0) queue.splice(index, 1);
          reject(abortReason(signal));
        });
      }
      this.schedule();
    });
  }

  /** Hands out the tokens refilled so far, normal calls first; then waits for the next one if anyone still waits. */
  private pump(): void {
    this.timer = undefined;
    this.refill();
    while (this.tokens >= 1) {
      const next = this.waiting.normal.shift() ?? this.waiting.low.shift();
      if (next === undefined) break;
      this.tokens -= 1;
      next.grant();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.waiting.normal.length + this.waiting.low.length === 0) return;
    const waitMs = Math.max(0, ((1 - this.tokens) / this.qps) * 1000);
    this.timer = this.clock.setTimeout(() => this.pump(), waitMs);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }
}

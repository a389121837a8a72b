// Client-side token bucket for API calls (qps refill, burst capacity), like client-go's flowcontrol limiter.
import { type Clock, sleep } from './clock.js';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new RangeError(`token bucket needs qps > 0 and burst >= 1 (got ${qps}, ${burst})`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /**
   * Takes one token, waiting for it when the bucket is empty. Callers reserve in call order (tokens may go
   * negative), so waiting is fair and needs no queue of its own.
   */
  async take(signal?: AbortSignal): Promise<void> {
    this.refill();
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    const waitMs = (-this.tokens / this.qps) * 1000;
    try {
      await sleep(this.clock, waitMs, signal);
    } catch (error) {
      this.tokens += 1;
      throw error;
    }
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
  }
}

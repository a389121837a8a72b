// Time is injected everywhere so unit tests can drive timers with a fake clock.
import { onAbort } from './abort.js';

export interface TimerHandle {
  readonly id: unknown;
}

export interface Clock {
  /** Milliseconds, roughly since the epoch; only differences are meaningful. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

// Monotonic (performance.now based) so a wall-clock step cannot stretch how long we believe a lease is ours.
export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (callback, delayMs) => ({ id: setTimeout(callback, Math.max(0, delayMs)) }),
  clearTimeout: (handle) => clearTimeout(handle.id as NodeJS.Timeout),
};

/** The reason of an aborted signal, as an Error (AbortSignal.reason may be anything). */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === 'string' ? reason : 'the operation was aborted');
  error.name = 'AbortError';
  return error;
}

export function isAbortError(error: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted === true) return true;
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'LeaderLostError');
}

/** Resolves after delayMs, or rejects with the signal's reason when it aborts first. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortReason(signal));
      return;
    }
    const timer = clock.setTimeout(() => {
      unsubscribe();
      resolve();
    }, delayMs);
    // Many sleepers share one work signal (token-bucket waits, backoffs): one listener on it, not one each.
    const unsubscribe = signal === undefined ? () => {} : onAbort(signal, () => {
      clock.clearTimeout(timer);
      reject(abortReason(signal));
    });
  });
}

/** Resolves true when the promise settles (either way) within delayMs, false otherwise. */
export async function settlesWithin(clock: Clock, delayMs: number, promise: Promise<unknown>): Promise<boolean> {
  const deadline = new AbortController();
  const timedOut = sleep(clock, delayMs, deadline.signal).then(
    () => false,
    () => true,
  );
  const result = await Promise.race([promise.then(() => true, () => true), timedOut]);
  deadline.abort();
  return result;
}

/** Resolves (never rejects) when the signal aborts. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * Exponential backoff with full-range jitter: attempt 1 waits about baseMs, doubling up to maxMs.
 * Jitter (factor in [0,1)) spreads reconnects of many replicas so they never synchronise.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, jitter = 0, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const raw = Math.min(maxMs, baseMs * 2 ** Math.min(exponent, 52));
  if (jitter <= 0) return raw;
  return Math.min(maxMs, raw * (1 + jitter * random()));
}

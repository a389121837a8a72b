// Whether the API server answers, from the outcome of every request this process makes (leases, lists, watches,
// writes): unreachable once the latest request got no answer and none has been answered for a grace period (one slow
// request on a loaded server is not an outage). A refusal (4xx) is an answer; a network error, a timeout or a 5xx is
// not. /readyz reports it, so an outage shows on every replica, standbys included.
import { type Clock, isAbortError } from './clock.js';
import { KubeApiError, type KubeFacade } from './client.js';

export interface ApiHealth {
  /** False while the latest request failed to get an answer. */
  reachable(): boolean;
  /** What the latest unanswered request failed with, for /readyz and logs (never a response body). */
  lastProblem(): string | undefined;
}

function unanswered(error: unknown): boolean {
  if (error instanceof KubeApiError) return error.status === 0 || error.status >= 500;
  // Our own aborts (shutdown, a lost lease) say nothing about the API server.
  return !isAbortError(error);
}

/** Returns a facade that records the outcome of each call, and the health read from those outcomes. */
export function trackApiHealth(kube: KubeFacade, clock: Clock, graceMs = 5000): { kube: KubeFacade; health: ApiHealth } {
  const tracker = apiHealthTracker(clock, graceMs);
  return { kube: tracker.track(kube), health: tracker.health };
}

/**
 * One health read from the calls of every facade passed to track(): the controller's own and the Lease's (which has
 * connections of its own, and is what still talks to the API server when no claim work does).
 */
export function apiHealthTracker(clock: Clock, graceMs = 5000): { health: ApiHealth; track<F extends object>(facade: F): F } {
  let lastAnswerAt = clock.now();
  let lastFailureAt = Number.NEGATIVE_INFINITY;
  let problem: string | undefined;
  const record = <T>(call: Promise<T>): Promise<T> =>
    call.then(
      (value) => {
        lastAnswerAt = clock.now();
        return value;
      },
      (error: unknown) => {
        if (unanswered(error)) {
          lastFailureAt = clock.now();
          problem = error instanceof Error ? error.message : String(error);
        } else {
          lastAnswerAt = clock.now();
        }
        throw error;
      },
    );
  const track = <F extends object>(facade: F): F =>
    new Proxy(facade, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result instanceof Promise ? record(result) : result;
        };
      },
    });
  const reachable = (): boolean => lastAnswerAt >= lastFailureAt || clock.now() - lastAnswerAt < graceMs;
  return {
    track,
    health: {
      reachable,
      lastProblem: () => (reachable() ? undefined : problem),
    },
  };
}

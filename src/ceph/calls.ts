import PQueue from 'p-queue';
import { toCephError } from './errors.js';
import { native } from './native.js';

/** Told about every librados/librbd call: for metrics, and to refuse calls once this replica may not act. */
export interface CallObserver {
  /** Right before the call is handed to a Ceph thread; throwing here refuses the call. */
  started?(op: string): void;
  finished?(op: string, seconds: number, result: string): void;
}

const DEFAULT_MAX_INFLIGHT = 16;

/**
 * Admits at most maxInflight calls to the addon at once, in order. The addon's own thread pool has the same size, so
 * nothing waits inside it: a call waits here, where the observer can still refuse it at the moment it would run
 * (a replica that lost its lease while the call queued must not start it), because the observer is asked inside
 * the queued task. p-queue rather than a hand-written gate: same behaviour, and its queue stays fast under a burst
 * (an array shift per admitted call made a 200k-call burst quadratic).
 */
const gate = new PQueue({ concurrency: DEFAULT_MAX_INFLIGHT });
native.setMaxInflight(DEFAULT_MAX_INFLIGHT);

// Releasing a handle must work even after the observer refuses new calls, or handles would leak until GC.
const RELEASES = new Set(['rbd_close', 'rados_ioctx_destroy', 'rados_shutdown']);

/** Bound on librados/librbd calls running at once in this process. */
export function setMaxInflight(maxInflight: number): void {
  native.setMaxInflight(maxInflight);
  gate.concurrency = maxInflight;
}

export interface CallStats {
  maxInflight: number;
  /** Calls running on a Ceph thread now. */
  inflight: number;
  /** Calls waiting for one. */
  queued: number;
  peakInflight: number;
  completed: number;
}

export function callStats(): CallStats {
  const stats = native.poolStats();
  return { ...stats, queued: stats.queued + gate.size };
}

/** Runs one native call: bounded, reported to the observer, and a native rejection turned into a typed CephError. */
export async function invoke<T>(observer: CallObserver | undefined, op: string, call: () => Promise<T>): Promise<T> {
  if (RELEASES.has(op)) return call().catch((err: unknown) => Promise.reject(toCephError(err)));
  return gate.add(async () => {
    let result = 'ok';
    const start = process.hrtime.bigint();
    try {
      observer?.started?.(op);
      return await call();
    } catch (err) {
      const mapped = toCephError(err);
      result = (mapped as { code?: string }).code ?? 'refused';
      throw mapped;
    } finally {
      observer?.finished?.(op, Number(process.hrtime.bigint() - start) / 1e9, result);
    }
  });
}

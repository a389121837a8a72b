import { toCephError } from './errors.js';
import { native } from './native.js';

/** Told about every librados/librbd call: for metrics, and to refuse calls once this replica may not act. */
export interface CallObserver {
  /** Right before the call is handed to a Ceph thread; throwing here refuses the call. */
  started?(op: string): void;
  finished?(op: string, seconds: number, result: string): void;
}

/**
 * Admits at most `limit` calls to the addon at once, in order. The addon's own thread pool has the same size, so
 * nothing waits inside it: a call waits here, where the observer can still refuse it at the moment it would run
 * (a replica that lost its lease while the call queued must not start it).
 */
class CallGate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private limit: number) {}

  get queued(): number {
    return this.waiting.length;
  }

  setLimit(limit: number): void {
    this.limit = limit;
    while (this.running < this.limit && this.waiting.length > 0) {
      this.running++;
      this.waiting.shift()!();
    }
  }

  async enter(): Promise<void> {
    if (this.running < this.limit) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  leave(): void {
    const next = this.running <= this.limit ? this.waiting.shift() : undefined;
    if (next) next();
    else this.running--;
  }
}

const DEFAULT_MAX_INFLIGHT = 16;
const gate = new CallGate(DEFAULT_MAX_INFLIGHT);
native.setMaxInflight(DEFAULT_MAX_INFLIGHT);

// Releasing a handle must work even after the observer refuses new calls, or handles would leak until GC.
const RELEASES = new Set(['rbd_close', 'rados_ioctx_destroy', 'rados_shutdown']);

/** Bound on librados/librbd calls running at once in this process. */
export function setMaxInflight(maxInflight: number): void {
  native.setMaxInflight(maxInflight);
  gate.setLimit(maxInflight);
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
  return { ...stats, queued: stats.queued + gate.queued };
}

/** Runs one native call: bounded, reported to the observer, and a native rejection turned into a typed CephError. */
export async function invoke<T>(observer: CallObserver | undefined, op: string, call: () => Promise<T>): Promise<T> {
  if (RELEASES.has(op)) return call().catch((err: unknown) => Promise.reject(toCephError(err)));
  await gate.enter();
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
    gate.leave();
    observer?.finished?.(op, Number(process.hrtime.bigint() - start) / 1e9, result);
  }
}

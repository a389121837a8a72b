import { toCephError } from './errors.js';

/** Told about every librados/librbd call: for metrics. `result` is 'ok' or the error code. */
export interface CallObserver {
  started?(op: string): void;
  finished?(op: string, seconds: number, result: string): void;
}

/** Runs one native call: reports it to the observer and turns a native rejection into a typed CephError. */
export async function invoke<T>(observer: CallObserver | undefined, op: string, call: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  observer?.started?.(op);
  let result = 'ok';
  try {
    return await call();
  } catch (err) {
    const mapped = toCephError(err);
    result = (mapped as { code?: string }).code ?? 'error';
    throw mapped;
  } finally {
    observer?.finished?.(op, Number(process.hrtime.bigint() - start) / 1e9, result);
  }
}

// One 'abort' listener per signal, however many waiters share it. Every request, token wait and sleep of a work
// session used to add its own listener to the session's signal, so a burst piled up hundreds of them
// (MaxListenersExceededWarning) and each abort walked them all. Here a signal gets a single listener that fans out
// to the callbacks registered now; a callback is dropped as soon as its waiter is done.
const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls fn once when signal aborts (at once, synchronously, if it already has). Returns the function that
 * unsubscribes: call it when the waiter is done, whether or not the signal fired.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  let callbacks = subscribers.get(signal);
  if (callbacks === undefined) {
    const created = new Set<() => void>();
    subscribers.set(signal, created);
    signal.addEventListener('abort', () => {
      subscribers.delete(signal);
      for (const callback of [...created]) callback();
      created.clear();
    }, { once: true });
    callbacks = created;
  }
  const own = (): void => fn();
  const set = callbacks;
  set.add(own);
  return () => {
    set.delete(own);
  };
}

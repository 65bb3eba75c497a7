/**
 * Polls `fn` until it returns a truthy value (or a promise of one) and resolves with it; a throw
 * counts as "not yet". Rejects after `timeoutMs` with the last error `fn` threw, if any. An
 * assertion-style callback (`() => { expect(...) }`) must end with `return true`.
 * Use it instead of fixed sleeps.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 2000, intervalMs = 5): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`waitFor: no truthy value within ${timeoutMs} ms${why}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves with the arguments of the next `event` emitted by `emitter`; rejects after `timeoutMs`. */
export function nextEvent<A extends unknown[] = unknown[]>(
  emitter: { once(event: string, fn: (...args: A) => void): unknown; off(event: string, fn: (...args: A) => void): unknown },
  event: string,
  timeoutMs = 2000,
): Promise<A> {
  return new Promise((resolve, reject) => {
    const handler = (...args: A): void => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`nextEvent: no '${event}' within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(event, handler);
  });
}

/** How `waitFor` polls (a number as the third argument is `timeoutMs`). */
export interface WaitOptions {
  /** Default 20000. */
  timeoutMs?: number;
  /** Default 50. */
  intervalMs?: number;
  /** `truthy` (default): a truthy value ends the wait; `defined`: any value but `undefined` does (null, 0, false too). */
  until?: 'truthy' | 'defined';
  /** An error thrown by `probe` ends the wait at once (default: it is retried until the deadline). */
  failFast?: boolean;
}

/**
 * Polls `probe` until it returns a truthy value (or, with `until: 'defined'`, anything but
 * `undefined`); throws naming `what` after the timeout. The one polling helper of the tests.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T> | T,
  timeoutMs?: number,
  intervalMs?: number,
): Promise<NonNullable<T>>;
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T> | T,
  options: WaitOptions & { until?: 'truthy' },
): Promise<NonNullable<T>>;
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T> | T,
  options: WaitOptions & { until: 'defined' },
): Promise<Exclude<T, undefined>>;
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T> | T,
  timeoutOrOptions: number | WaitOptions = {},
  interval?: number,
): Promise<T> {
  const options = typeof timeoutOrOptions === 'number' ? { timeoutMs: timeoutOrOptions } : timeoutOrOptions;
  const timeoutMs = options.timeoutMs ?? 20000;
  const intervalMs = interval ?? options.intervalMs ?? 50;
  const done = options.until === 'defined' ? (value: T) => value !== undefined : (value: T) => Boolean(value);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (done(value)) return value;
    } catch (error) {
      if (options.failFast) throw error;
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

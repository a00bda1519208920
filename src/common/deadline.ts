/**
 * Rejects when `promise` has not settled within `ms`, with `<what> did not answer [<during>] within
 * <ms> ms` (a dependency that hangs must not hang a probe, a scrape or an API request). The work
 * itself is not cancelled; a rejection that is not an Error becomes one.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string, during?: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not answer${during ? ` ${during}` : ''} within ${ms} ms`)),
      ms,
    );
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error instanceof Error ? error : new Error(String(error)))),
    );
  });
}

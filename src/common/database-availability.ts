/**
 * Which MongoDB failures mean "the database cannot serve this now, try again": the server cannot be
 * reached, or a replica set has no writable primary for a moment (a step-down, an election, a
 * restart). The API answers them with a 503 and `Retry-After`; the engine and the API's idempotent
 * multi-document writes repeat them.
 */

/** The driver's and mongoose's errors for a database that cannot be reached (not for a bad query). */
const UNREACHABLE_ERRORS = new Set([
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoNotConnectedError',
  'MongoPoolClearedError',
  'MongoTopologyClosedError',
]);

/**
 * Server errors of a replica set member that is not (or no longer) the primary, or that is shutting
 * down: the SDAM specification's "not writable primary" and "node is recovering" codes.
 */
export const STEP_DOWN_CODES: ReadonlySet<number> = new Set([
  10107, // NotWritablePrimary (NotMaster on 4.4 and older)
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  11602, // InterruptedDueToReplStateChange
  11600, // InterruptedAtShutdown
  189, // PrimarySteppedDown
  91, // ShutdownInProgress
]);

/** Whether `error` says the database is unavailable for now (unreachable, or no primary). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (UNREACHABLE_ERRORS.has(error.name)) return true;
  const { code, errorLabels } = error as { code?: unknown; errorLabels?: unknown };
  if (typeof code === 'number' && STEP_DOWN_CODES.has(code)) return true;
  // The driver labels what it would retry; a write that failed twice keeps the label.
  if (Array.isArray(errorLabels) && errorLabels.includes('RetryableWriteError')) return true;
  // mongoose queues operations while disconnected and fails them after bufferTimeoutMS.
  return error.name === 'MongooseError' && /buffering timed out/.test(error.message);
}

export interface RetryOptions {
  /** Gives up after this long (ms) since the first attempt; the last error is thrown. */
  withinMs: number;
  /** First wait between attempts (ms); doubles up to `maxDelayMs`. */
  delayMs?: number;
  maxDelayMs?: number;
}

/**
 * Repeats `operation` while it fails because the database is unavailable (a step-down, a short
 * outage), for at most `withinMs`. Only for operations that are safe to repeat: idempotent writes
 * (`$set` to fixed values, deletes by filter) whose first attempt may or may not have applied, and
 * that the driver does not retry itself (multi-document writes are not retryable writes).
 */
export async function retryWhileUnavailable<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  const deadline = Date.now() + options.withinMs;
  let delay = options.delayMs ?? 250;
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      const wait = Math.min(delay, deadline - Date.now());
      if (!isDatabaseUnavailable(error) || wait <= 0) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
      delay = Math.min(delay * 2, options.maxDelayMs ?? 2000);
    }
  }
}

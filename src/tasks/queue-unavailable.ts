import type { Logger } from '@nestjs/common';
import { serviceUnavailable } from './errors';

export const QUEUE_UNAVAILABLE =
  'The rerun queue (Redis) is unavailable, so nothing was changed. Try again when it is back.';

/**
 * What the tasks API does when the rerun queue (Redis) did not answer a call it needed, within
 * QUEUE_TIMEOUT_MS (the scheduler's `deadlineMs`): logs `<what>: <why>` and throws the 503 that
 * says nothing was changed.
 */
export function queueUnavailable(logger: Logger, what: string): (error: unknown) => never {
  return (error: unknown) => {
    logger.error(`${what}: ${(error as Error).message}`);
    throw serviceUnavailable(QUEUE_UNAVAILABLE);
  };
}

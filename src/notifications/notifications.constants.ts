import type { DeliveryKind } from '../database/schemas';

/**
 * The notifications' own Bull queue (same Redis and prefix as the rerun queue, never shared with
 * it: its jobs have their own concurrency, NOTIFY_CONCURRENCY, so a slow receiver never takes a
 * rerun's place). Jobs are wake-ups, as the engine's: MongoDB (`notifications`) holds every
 * delivery's state, and the sweeper re-adds what Redis lost.
 */
export const NOTIFICATIONS_QUEUE = 'notifications';

/** One job per attempt of one delivery (one webhook URL, or the e-mails of one event). */
export interface DeliveryJobData {
  eventId: string;
  /** The delivery's position in the notification's `deliveries`. */
  index: number;
  /** Attempts already made when the job was added: the job makes attempt `attempts + 1`. */
  attempts: number;
}

/** The job of attempt `attempts + 1` of a delivery: one id, so adding it twice adds it once. */
export const deliveryJobId = (kind: DeliveryKind, eventId: string, index: number, attempts: number) =>
  `${kind}:${eventId}:${index}:${attempts}`;

/** Finished jobs are not kept (the state is in MongoDB). */
export const DELIVERY_JOB_DEFAULTS = { removeOnComplete: true, removeOnFail: true } as const;

/** The longest wait between two attempts of a delivery. */
export const MAX_RETRY_DELAY_MS = 5 * 60 * 1000;

/** The wait after failed attempt number `attempt` (1-based): NOTIFY_RETRY_DELAY_MS, doubling, at most 5 min. */
export function retryDelayMs(firstDelayMs: number, attempt: number): number {
  return Math.min(firstDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30), MAX_RETRY_DELAY_MS);
}

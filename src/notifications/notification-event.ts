/**
 * What the service tells people about ("Notifications", issue 25): the event types and the JSON body
 * a webhook receives (a stable schema: fields are only ever added). Emitted by the tasks API and the
 * engine through `Notifier.emit`, delivered by the notifications worker.
 */
export const NOTIFICATION_TYPES = [
  'task.created',
  'task.started',
  'task.completed',
  'task.failed',
  'task.cancelled',
  'task.auto-paused',
  'task.auto-resumed',
  'breaker.opened',
  'breaker.closed',
  'tasks.paused-all',
  'tasks.resumed-all',
] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

/** The task an event is about, as it was when the event happened. */
export interface NotifiedTask {
  /** Hex id. */
  id: string;
  status?: string;
  /** Who created it (email). */
  user?: string;
  totalTransactions?: number;
  remainingTransactions?: number;
  /** Items that ended failed (task.completed). */
  failed?: number;
}

/** The channel an event is about (breaker events; an emergency stop of one channel). */
export interface NotifiedChannel {
  /** Hex id. */
  id: string;
  name?: string;
  /** Failed reruns in a row (breaker.opened). */
  failures?: number;
  lastError?: string;
}

/** What an emitter says happened. */
export interface NotificationInput {
  type: NotificationType;
  task?: NotifiedTask;
  channel?: NotifiedChannel;
  /** Why (auto-pause's reason, the emergency stop's reason...). */
  reason?: string;
  /** Who did it (the API user's email), for what a person did. */
  user?: string;
  /** Tasks an emergency stop or resume changed (hex ids). */
  tasks?: string[];
  /**
   * OpenHIM contact groups to e-mail for this event: the task's own `notify` list when the event is
   * about a task that has one; else the defaults for the event type from the environment.
   */
  notify?: string[];
}

/** A webhook's body: the input plus an id (for de-duplication) and the time. */
export interface NotificationEvent extends Omit<NotificationInput, 'notify'> {
  /** Unique per event; the same on every attempt of every delivery of it. */
  id: string;
  /** ISO 8601. */
  at: string;
}

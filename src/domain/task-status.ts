/**
 * A task's statuses, as OpenHIM stores them, and which of them the engine runs (docs/design.md,
 * "Task lifecycle"). Pure declarations, shared by the API and the engine.
 */
export const TASK_STATUSES = ['Queued', 'Processing', 'Paused', 'Cancelled', 'Completed', 'Pending Async'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** An item's `tstatus` (one transaction of a task). */
export const ITEM_STATUSES = ['Queued', 'Processing', 'Completed', 'Failed'] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/**
 * Statuses in which a task's slots may be held and its items started: the task may still start or
 * finish reruns.
 */
export const RUNNABLE_STATUSES: readonly TaskStatus[] = ['Queued', 'Processing', 'Pending Async'];

/** Runnable statuses in which the task still starts reruns (not only waiting for 202 answers). */
export const STARTING_STATUSES: readonly TaskStatus[] = ['Queued', 'Processing'];

/** Item statuses of a transaction still to rerun (or whose rerun is on its way). */
export const PENDING_ITEM_STATUSES: readonly ItemStatus[] = ['Queued', 'Processing'];

/** The runnable statuses and `Paused`: a task not finished, which the sweeper looks after. */
export const UNFINISHED_STATUSES: readonly TaskStatus[] = [...RUNNABLE_STATUSES, 'Paused'];

export function isTaskStatus(value: unknown): value is TaskStatus {
  return typeof value === 'string' && (TASK_STATUSES as readonly string[]).includes(value);
}

export function isRunnable(status: string): boolean {
  return (RUNNABLE_STATUSES as readonly string[]).includes(status);
}

/** What a task's `history` records (docs/design.md, "Task lifecycle"). */
export const HISTORY_ACTIONS = [
  'created',
  'paused',
  'resumed',
  'cancelled',
  'auto-paused',
  'started',
  'completed',
  // The emergency stop (POST /tasks/pause-all, /tasks/resume-all): who stopped or released, and why.
  'emergency-paused',
  'emergency-resumed',
  // Outage recovery: a channel's circuit breaker paused the task; a successful probe resumed it.
  'breaker-paused',
  'auto-resumed',
] as const;
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

/** A task keeps at most this many history entries; the oldest go first. */
export const HISTORY_LIMIT = 200;

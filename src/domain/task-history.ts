/** What a task's `history` records (docs/design.md, "Task lifecycle"). */
export const HISTORY_ACTIONS = [
  'created',
  'paused',
  'resumed',
  'cancelled',
  'auto-paused',
  'started',
  'completed',
] as const;
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

/** A task keeps at most this many history entries; the oldest go first. */
export const HISTORY_LIMIT = 200;

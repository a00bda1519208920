import { HISTORY_LIMIT, type HistoryAction } from '../domain/task-history';

/** One entry of a task's `history`: who did what, when (and why, for the engine's own moves). */
export interface HistoryEntry {
  at: Date;
  action: HistoryAction;
  /** The API user's email; absent for what the engine does. */
  user?: string;
  reason?: string;
}

export function historyEntry(action: HistoryAction, fields: { user?: string; reason?: string; at?: Date } = {}) {
  const entry: HistoryEntry = { at: fields.at ?? new Date(), action };
  if (fields.user !== undefined) entry.user = fields.user;
  if (fields.reason !== undefined) entry.reason = fields.reason;
  return entry;
}

/** The `$push` that appends entries, newest last, keeping the last HISTORY_LIMIT. */
export function pushHistory(...entries: HistoryEntry[]) {
  return { history: { $each: entries, $slice: -HISTORY_LIMIT } };
}

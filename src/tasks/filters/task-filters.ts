import { ITEM_STATUSES, TASK_STATUSES } from '../../domain/task-status';
import { assertKnownKeys, badRequest, parseDateRange, parseStringFilter } from './query-params';

export const TASK_LIST_FILTER_KEYS = ['status', 'user', 'created'] as const;
export const TASK_ITEM_FILTER_KEYS = ['tstatus', 'rerunStatus', 'hasErrors'] as const;

/**
 * Paging of `GET /tasks` and of the transactions of `GET /tasks/:id` when the client gives none.
 * There is no maximum (OpenHIM has none): both answers are streamed from a cursor.
 */
export const TASK_LIST_PAGING = { defaultLimit: 100 };
export const TASK_ITEM_PAGING = { defaultLimit: 100 };

export type TaskListQuery = {
  status?: string | { $in: string[] };
  user?: string;
  created?: Record<string, Date>;
};

/** `GET /tasks` filters: `status` (or `{$in}`), `user`, `created` (date range); nothing else. */
export function toTaskListQuery(filters: Record<string, unknown>): TaskListQuery {
  assertKnownKeys('filter', filters, TASK_LIST_FILTER_KEYS);
  const query: TaskListQuery = {};
  const status = parseStringFilter('status', filters.status, { allowed: TASK_STATUSES, allowIn: true });
  if (status !== undefined) query.status = status;
  const user = parseStringFilter('user', filters.user);
  if (user !== undefined) query.user = user as string;
  if (filters.created !== undefined && filters.created !== '' && filters.created !== null) {
    query.created = parseDateRange('created', filters.created);
  }
  return query;
}

export interface TaskItemFilter {
  tstatus?: string;
  rerunStatus?: string;
  /** true: items with an `error`; false: items without. */
  hasErrors?: boolean;
}

/** `GET /tasks/:id` filters on the task's transactions: `tstatus`, `rerunStatus`, `hasErrors` (yes/no). */
export function toTaskItemFilter(filters: Record<string, unknown>): TaskItemFilter {
  assertKnownKeys('filter', filters, TASK_ITEM_FILTER_KEYS);
  const filter: TaskItemFilter = {};
  const tstatus = parseStringFilter('tstatus', filters.tstatus, { allowed: ITEM_STATUSES });
  if (tstatus !== undefined) filter.tstatus = tstatus as string;
  const rerunStatus = parseStringFilter('rerunStatus', filters.rerunStatus);
  if (rerunStatus !== undefined) filter.rerunStatus = rerunStatus as string;
  const hasErrors = filters.hasErrors;
  if (hasErrors !== undefined && hasErrors !== '' && hasErrors !== null) {
    if (hasErrors === 'yes' || hasErrors === true || hasErrors === 'true') filter.hasErrors = true;
    else if (hasErrors === 'no' || hasErrors === false || hasErrors === 'false') filter.hasErrors = false;
    else throw badRequest(`hasErrors must be "yes" or "no" (got ${JSON.stringify(hasErrors)})`);
  }
  return filter;
}

export function isUnfiltered(filter: TaskItemFilter): boolean {
  return filter.tstatus === undefined && filter.rerunStatus === undefined && filter.hasErrors === undefined;
}

const hasError = (item: { error?: unknown }) => item.error !== undefined && item.error !== null && item.error !== '';

/** The same filter applied to an embedded `transactions[]` entry (tasks created by OpenHIM core). */
export function itemMatches(
  item: { tstatus?: unknown; rerunStatus?: unknown; error?: unknown },
  filter: TaskItemFilter,
): boolean {
  if (filter.tstatus !== undefined && item.tstatus !== filter.tstatus) return false;
  if (filter.rerunStatus !== undefined && item.rerunStatus !== filter.rerunStatus) return false;
  if (filter.hasErrors !== undefined && hasError(item) !== filter.hasErrors) return false;
  return true;
}

/** The same filter as a query on `taskitems`. */
export function itemQuery(filter: TaskItemFilter): Record<string, unknown> {
  const query: Record<string, unknown> = {};
  if (filter.tstatus !== undefined) query.tstatus = filter.tstatus;
  if (filter.rerunStatus !== undefined) query.rerunStatus = filter.rerunStatus;
  if (filter.hasErrors === true) query.error = { $exists: true, $nin: [null, ''] };
  if (filter.hasErrors === false) query.$or = [{ error: { $exists: false } }, { error: { $in: [null, ''] } }];
  return query;
}

import { Types } from 'mongoose';
import { assertKnownKeys, badRequest, isPlainObject, parseDateRange, parseStringFilter } from './query-params';

export const TRANSACTION_FILTER_KEYS = [
  'channelID',
  'clientID',
  'status',
  'request.timestamp',
  'request.method',
  'request.path',
  'response.status',
] as const;

/** The statuses OpenHIM core gives a transaction. */
export const TRANSACTION_STATUSES = ['Processing', 'Successful', 'Completed', 'Completed with error(s)', 'Failed'];

const HEX_ID = /^[0-9a-f]{24}$/i;

export interface TransactionQuery {
  channelID?: Types.ObjectId;
  clientID?: Types.ObjectId;
  status?: string | { $in: string[] };
  'request.timestamp'?: Record<string, Date>;
  'request.method'?: string;
  'request.path'?: RegExp;
  'response.status'?: number | { $gte: number; $lt: number };
}

/**
 * The transaction filters of `POST /bulkrerun` turned into a MongoDB query. Only these keys and
 * operators exist; `request.path` is matched literally (case-insensitive substring, as OpenHIM's
 * console search behaves) and never as a user-supplied regular expression.
 */
export function toTransactionQuery(filters: unknown): TransactionQuery {
  if (filters === undefined || filters === null) return {};
  if (!isPlainObject(filters)) throw badRequest('filters must be a JSON object');
  assertKnownKeys('transaction filter', filters, TRANSACTION_FILTER_KEYS);
  const query: TransactionQuery = {};
  for (const key of ['channelID', 'clientID'] as const) {
    const value = filters[key];
    if (value === undefined || value === '' || value === null) continue;
    if (typeof value !== 'string' || !HEX_ID.test(value)) {
      throw badRequest(`${key} must be a 24-character hex id (got ${JSON.stringify(value)})`);
    }
    query[key] = new Types.ObjectId(value);
  }
  const status = parseStringFilter('status', filters.status, { allowed: TRANSACTION_STATUSES, allowIn: true });
  if (status !== undefined) query.status = status;
  const timestamp = filters['request.timestamp'];
  if (timestamp !== undefined && timestamp !== '' && timestamp !== null) {
    query['request.timestamp'] = parseDateRange('request.timestamp', timestamp);
  }
  const method = parseStringFilter('request.method', filters['request.method']);
  if (method !== undefined) {
    if (!/^[A-Za-z]+$/.test(method as string))
      throw badRequest(`request.method must be an HTTP method (got ${JSON.stringify(method)})`);
    query['request.method'] = (method as string).toUpperCase();
  }
  const path = parseStringFilter('request.path', filters['request.path']);
  if (path !== undefined) query['request.path'] = new RegExp(escapeRegExp(path as string), 'i');
  const responseStatus = parseResponseStatus(filters['response.status']);
  if (responseStatus !== undefined) query['response.status'] = responseStatus;
  return query;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** A status code (`404`, `"404"`) or a class (`"4xx"`). */
function parseResponseStatus(raw: unknown): number | { $gte: number; $lt: number } | undefined {
  if (raw === undefined || raw === '' || raw === null) return undefined;
  const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : undefined;
  const classMatch = text ? /^([1-5])xx$/i.exec(text) : null;
  if (classMatch) {
    const base = Number(classMatch[1]) * 100;
    return { $gte: base, $lt: base + 100 };
  }
  if (text && /^[1-5]\d\d$/.test(text)) return Number(text);
  throw badRequest(`response.status must be a status code like 404 or a class like "4xx" (got ${JSON.stringify(raw)})`);
}

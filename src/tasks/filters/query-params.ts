import { badRequest } from '../errors';
import { isPlainObject } from '../validation/checks';
import type { Page } from '../../database/repositories/cursors';

export type QueryParams = Record<string, unknown>;

export { badRequest };

/** Rejects parameters we do not know (a typo would otherwise be silently ignored). */
export function assertKnownParams(query: QueryParams, allowed: readonly string[]): void {
  const unknown = Object.keys(query).filter((key) => !allowed.includes(key));
  if (unknown.length) {
    throw badRequest(
      `Unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => `"${key}"`).join(', ')} ` +
        `(allowed: ${allowed.join(', ')})`,
    );
  }
}

/** One value of a query parameter (a repeated parameter arrives as an array). */
export function single(query: QueryParams, name: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`Query parameter ${name} must be given once`);
  return value;
}

/** A page of a listing, as the query string asks for it. */
export type Paging = Page;

export interface PagingRules {
  defaultLimit: number;
}

/**
 * `filterPage` (0-based) and `filterLimit`, with defaults when absent (the console polls without
 * them). No maximum, as in OpenHIM: the reads stream their answers, so a page's size costs no memory.
 */
export function parsePaging(query: QueryParams, rules: PagingRules): Paging {
  const page = integerParam(query, 'filterPage', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const limit = integerParam(query, 'filterLimit', 0, Number.MAX_SAFE_INTEGER) ?? rules.defaultLimit;
  const skip = page * limit;
  if (!Number.isSafeInteger(skip)) throw badRequest('filterPage is too large');
  return { skip, limit };
}

function integerParam(query: QueryParams, name: string, min: number, max: number): number | undefined {
  const text = single(query, name);
  if (text === undefined || text === '') return undefined;
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw badRequest(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(text)})`);
  }
  return value;
}

/** `filters`: a JSON object given as a string; absent or empty means no filter. */
export function parseFiltersParam(query: QueryParams): Record<string, unknown> {
  const text = single(query, 'filters');
  if (text === undefined || text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badRequest(`filters must be a JSON object: ${(error as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw badRequest('filters must be a JSON object');
  return parsed;
}

export function assertKnownKeys(what: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length) {
    throw badRequest(`Unknown ${what} ${unknown.map((key) => `"${key}"`).join(', ')} (allowed: ${allowed.join(', ')})`);
  }
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;
export const RANGE_OPERATORS = ['$gte', '$gt', '$lte', '$lt'] as const;

/**
 * A date range `{"$gte": iso, "$lte": iso}` (any of $gte $gt $lte $lt), given as an object or, as the
 * console sends it, as a JSON string of that object.
 */
export function parseDateRange(field: string, raw: unknown): Record<string, Date> {
  let value = raw;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw badRequest(
        `${field} must be a date range like {"$gte":"2024-01-01T00:00:00Z","$lte":"2024-01-31T23:59:59Z"}`,
      );
    }
  }
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    throw badRequest(
      `${field} must be a date range like {"$gte":"2024-01-01T00:00:00Z","$lte":"2024-01-31T23:59:59Z"}`,
    );
  }
  assertKnownKeys(`operator in ${field}:`, value, RANGE_OPERATORS);
  const range: Record<string, Date> = {};
  for (const [operator, bound] of Object.entries(value)) {
    const date = typeof bound === 'string' && ISO_DATE.test(bound.trim()) ? new Date(bound.trim()) : undefined;
    if (!date || Number.isNaN(date.getTime())) {
      throw badRequest(`${field}.${operator} must be an ISO 8601 date (got ${JSON.stringify(bound)})`);
    }
    range[operator] = date;
  }
  return range;
}

/** A string filter value, or `{"$in": [...]}` of strings when `allowIn`; empty string = no filter. */
export function parseStringFilter(
  field: string,
  raw: unknown,
  options: { allowed?: readonly string[]; allowIn?: boolean } = {},
): string | { $in: string[] } | undefined {
  const check = (value: unknown): string => {
    if (typeof value !== 'string') throw badRequest(`${field} must be a string (got ${JSON.stringify(value)})`);
    if (options.allowed && !options.allowed.includes(value)) {
      throw badRequest(`${field} must be one of ${options.allowed.join(', ')} (got ${JSON.stringify(value)})`);
    }
    return value;
  };
  if (raw === '' || raw === null || raw === undefined) return undefined;
  if (options.allowIn && isPlainObject(raw)) {
    assertKnownKeys(`operator in ${field}:`, raw, ['$in']);
    if (!Array.isArray(raw.$in) || raw.$in.length === 0) throw badRequest(`${field}.$in must be a non-empty array`);
    return { $in: raw.$in.map(check) };
  }
  return check(raw);
}

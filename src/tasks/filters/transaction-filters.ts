import { Types } from 'mongoose';
import { MAX_REGEX_LENGTH, repeatsARepetition } from '../../common/safe-regex';
import { TRANSACTION_STATUSES } from '../../domain/transaction-status';
import { reservedKeyPath } from '../validation/body-validation.pipe';
import { describeValue, HEX_ID, isPlainObject } from '../validation/checks';
import { assertKnownKeys, badRequest, parseDateRange, parseStringFilter } from './query-params';

/** The regular expressions' limit (src/common/safe-regex.ts), re-exported for the DTO's description. */
export { MAX_REGEX_LENGTH };
/** Longest plain text value (host, route name, property value). */
const MAX_TEXT_LENGTH = 1000;

type FieldParser = (field: string, raw: unknown) => unknown;

/** Filters on each element of `routes[]` and `orchestrations[]` (a transaction matches when one element does). */
const SUBDOCUMENT_FILTERS: Record<string, FieldParser> = {
  name: text,
  'request.host': text,
  'request.port': port,
  'request.path': regex,
  'request.querystring': regex,
  'request.method': method,
  'response.status': statusOrClass,
};

const prefixed = (prefix: string, parsers: Record<string, FieldParser>) =>
  Object.fromEntries(Object.entries(parsers).map(([key, parser]) => [`${prefix}.${key}`, parser]));

/**
 * Every filter key of OpenHIM's transaction list (api/transactions.js) and how its value is read.
 * Only these keys, and only the operators each parser builds, ever reach MongoDB.
 */
const FIELD_FILTERS: Record<string, FieldParser> = {
  channelID: hexId,
  clientID: hexId,
  status: (field, raw) => parseStringFilter(field, raw, { allowed: TRANSACTION_STATUSES, allowIn: true }),
  'request.timestamp': parseDateRange,
  'request.method': method,
  'request.path': regex,
  'request.querystring': regex,
  'request.host': text,
  'request.port': port,
  'response.status': statusOrClass,
  childIDs,
  ...prefixed('routes', SUBDOCUMENT_FILTERS),
  ...prefixed('orchestrations', SUBDOCUMENT_FILTERS),
};

export const TRANSACTION_FILTER_KEYS = [...Object.keys(FIELD_FILTERS), 'properties'];

const ALLOWED_TEXT =
  'channelID, clientID, status, request.timestamp, request.method, request.path, request.querystring, ' +
  'request.host, request.port, response.status, childIDs, properties, and routes.<f> / orchestrations.<f> ' +
  `with <f> one of ${Object.keys(SUBDOCUMENT_FILTERS).join(', ')}`;

/** The MongoDB query built from the filters; `channelID` is an id (the permission check reads it). */
export type TransactionQuery = Record<string, unknown> & { channelID?: Types.ObjectId };

/**
 * The transaction filters of `POST /bulkrerun` (OpenHIM's transaction-list filters) turned into a
 * MongoDB query, as OpenHIM core's `parseTransactionFilters` does, but only for the keys above:
 * `filters` is an object or, as the console sends it, a JSON string of one; `request.timestamp`
 * and `childIDs` may be JSON strings too; `*.path` and `*.querystring` are case-insensitive regular
 * expressions (at most MAX_REGEX_LENGTH characters, they must compile); `*.status` is a code or a
 * class like "5xx"; `properties: {key: value}` matches `properties.key` (null: the property exists).
 * Empty values (`""`, null) filter nothing. Anything else is a 400 naming it.
 */
export function toTransactionQuery(raw: unknown): TransactionQuery {
  if (raw === undefined || raw === null) return {};
  const filters = typeof raw === 'string' ? parseJsonFilters(raw) : raw;
  if (!isPlainObject(filters)) throw badRequest('filters must be a JSON object, or a JSON string of one');
  const unknown = Object.keys(filters).filter((key) => !TRANSACTION_FILTER_KEYS.includes(key));
  if (unknown.length) {
    throw badRequest(
      `Unknown transaction filter${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => `"${key}"`).join(', ')} ` +
        `(allowed: ${ALLOWED_TEXT})`,
    );
  }
  const query: TransactionQuery = {};
  for (const [key, value] of Object.entries(filters)) {
    if (isEmpty(value)) continue;
    if (key === 'properties') Object.assign(query, properties(value));
    else query[key] = FIELD_FILTERS[key](key, value);
  }
  return query;
}

function parseJsonFilters(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badRequest(`filters must be a JSON object, or a JSON string of one: ${(error as Error).message}`);
  }
  const reserved = reservedKeyPath(parsed);
  if (reserved)
    throw badRequest(`Filter "${reserved}" is not allowed (__proto__, constructor and prototype are reserved)`);
  return parsed;
}

const isEmpty = (value: unknown) => value === undefined || value === null || value === '';

function hexId(field: string, raw: unknown): Types.ObjectId {
  if (typeof raw !== 'string' || !HEX_ID.test(raw)) {
    throw badRequest(`${field} must be a 24-character hex id (got ${describeValue(raw)})`);
  }
  return new Types.ObjectId(raw);
}

function text(field: string, raw: unknown): string {
  if (typeof raw !== 'string') throw badRequest(`${field} must be a string (got ${describeValue(raw)})`);
  if (raw.length > MAX_TEXT_LENGTH) throw badRequest(`${field} must be at most ${MAX_TEXT_LENGTH} characters`);
  return raw;
}

/** Ports are stored as text by OpenHIM; the console may send a number. */
function port(field: string, raw: unknown): string {
  const value = typeof raw === 'number' ? String(raw) : raw;
  if (typeof value !== 'string' || !/^\d{1,5}$/.test(value.trim()) || Number(value) > 65535) {
    throw badRequest(`${field} must be a port number (got ${describeValue(raw)})`);
  }
  return value.trim();
}

function method(field: string, raw: unknown): string {
  if (typeof raw !== 'string' || !/^[A-Za-z]{1,20}$/.test(raw)) {
    throw badRequest(`${field} must be an HTTP method (got ${describeValue(raw)})`);
  }
  return raw.toUpperCase();
}

/**
 * A case-insensitive regular expression, as OpenHIM builds it (`new RegExp(value, 'i')`); a path
 * without regex metacharacters matches where it appears. Bounded and compiled here; what MongoDB
 * itself refuses (PCRE differs from JavaScript in a few corners) is a 400 too (see isInvalidRegexError).
 */
function regex(field: string, raw: unknown): RegExp {
  if (typeof raw !== 'string') {
    throw badRequest(`${field} must be a regular expression as a string (got ${describeValue(raw)})`);
  }
  if (raw.length > MAX_REGEX_LENGTH) {
    throw badRequest(`${field} must be at most ${MAX_REGEX_LENGTH} characters (got ${raw.length})`);
  }
  let compiled: RegExp;
  try {
    compiled = new RegExp(raw, 'i');
  } catch (error) {
    throw badRequest(`${field} is not a valid regular expression: ${(error as Error).message}`);
  }
  if (repeatsARepetition(raw)) {
    throw badRequest(
      `${field} must not repeat a group that itself repeats, like (a+)+ (matching such an expression can take ` +
        'exponential time)',
    );
  }
  return compiled;
}

/** A status code (`404`, `"404"`) or a class (`"4xx"`), as OpenHIM's `statusCodePatternMatch`. */
function statusOrClass(field: string, raw: unknown): number | { $gte: number; $lt: number } {
  const value = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : undefined;
  const classMatch = value ? /^([1-5])xx$/i.exec(value) : null;
  if (classMatch) {
    const base = Number(classMatch[1]) * 100;
    return { $gte: base, $lt: base + 100 };
  }
  if (value && /^[1-5]\d\d$/.test(value)) return Number(value);
  throw badRequest(`${field} must be a status code like 404 or a class like "4xx" (got ${describeValue(raw)})`);
}

const CHILD_IDS_EXAMPLE = '{"$exists":true,"$ne":[]} (reruns only) or {"$eq":[]} (not reruns)';
const CHILD_IDS_OPERATORS = ['$exists', '$ne', '$eq', '$size', '$not'] as const;
const MAX_CHILDREN = 1_000_000;

/**
 * `childIDs`, an object or a JSON string of one, with only these operators: `$exists` (true/false),
 * `$ne: []` and `$eq: []` (the empty list only), `$size: n` and `$not: {$size: n}` (0 <= n).
 * The console sends `{"$exists":true,"$ne":[]}` ("reruns only") and `{"$eq":[]}` ("not reruns").
 */
function childIDs(field: string, raw: unknown): Record<string, unknown> {
  let value = raw;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw badRequest(`${field} must be a JSON object like ${CHILD_IDS_EXAMPLE}`);
    }
  }
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    throw badRequest(`${field} must be a JSON object like ${CHILD_IDS_EXAMPLE}`);
  }
  assertKnownKeys(`operator in ${field}:`, value, CHILD_IDS_OPERATORS);
  const condition: Record<string, unknown> = {};
  for (const [operator, operand] of Object.entries(value)) {
    const where = `${field}.${operator}`;
    switch (operator) {
      case '$exists':
        if (typeof operand !== 'boolean')
          throw badRequest(`${where} must be true or false (got ${describeValue(operand)})`);
        condition.$exists = operand;
        break;
      case '$ne':
      case '$eq':
        if (!Array.isArray(operand) || operand.length !== 0) {
          throw badRequest(`${where} may only be [] (got ${describeValue(operand)})`);
        }
        condition[operator] = [];
        break;
      case '$size':
        condition.$size = childCount(where, operand);
        break;
      case '$not':
        if (!isPlainObject(operand) || Object.keys(operand).join() !== '$size') {
          throw badRequest(`${where} may only be {"$size": n} (got ${describeValue(operand)})`);
        }
        condition.$not = { $size: childCount(`${where}.$size`, operand.$size) };
        break;
    }
  }
  return condition;
}

function childCount(where: string, operand: unknown): number {
  if (!Number.isInteger(operand) || (operand as number) < 0 || (operand as number) > MAX_CHILDREN) {
    throw badRequest(`${where} must be a whole number from 0 to ${MAX_CHILDREN} (got ${describeValue(operand)})`);
  }
  return operand as number;
}

const PROPERTIES_EXAMPLE = '{"key":"value"} or {"key":null} (the property exists)';

/** `properties: {key: value}` → `properties.key = value`; `{key: null}` → `properties.key` exists. */
function properties(raw: unknown): Record<string, unknown> {
  if (!isPlainObject(raw)) throw badRequest(`properties must be an object like ${PROPERTIES_EXAMPLE}`);
  const keys = Object.keys(raw);
  if (keys.length !== 1) {
    throw badRequest(`properties must name exactly one property, like ${PROPERTIES_EXAMPLE} (got ${keys.length})`);
  }
  const [key] = keys;
  // A key is a field path inside `properties`: never an operator, never an empty segment.
  if (key.length > 200 || key.split('.').some((segment) => segment === '' || segment.startsWith('$'))) {
    throw badRequest(`properties: ${describeValue(key)} is not a property name`);
  }
  const value = raw[key];
  const path = `properties.${key}`;
  if (value === null) return { [path]: { $exists: true } };
  if (typeof value === 'string') return { [path]: text(path, value) };
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return { [path]: value };
  throw badRequest(`${path} must be a string, a number, true/false or null (got ${describeValue(value)})`);
}

/** MongoDB refusing a regular expression that JavaScript compiled (PCRE differs in a few corners). */
export function isInvalidRegexError(error: unknown): error is Error {
  const candidate = error as { code?: unknown; message?: unknown };
  return error instanceof Error && (candidate.code === 51091 || /regular expression is invalid/i.test(error.message));
}

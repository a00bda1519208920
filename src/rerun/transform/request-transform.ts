/**
 * The transform engine of "Fix it, then rerun it" (issue 24): what a task's `transform` and `edits`
 * may say, and what they do to one rerun request. Pure: no HTTP, no database, no clock.
 *
 * ## Validation (a 400 at task creation; nothing is written)
 * `validateTransform` and `validateEdits` throw an `InvalidTransformError` whose message names the
 * field (`transform.body[1].op`, `edits[3].tid`), says what was expected and what was got. They
 * return a fresh, normalised copy (the caller stores that one).
 * - `transform`: an object with only `body`, `bodyReplace`, `headers` and `path`, at least one of
 *   them. `body` and `bodyReplace` together are refused: one body transform per task.
 * - `body`: a JSON Patch (RFC 6902), 1 to MAX_PATCH_OPERATIONS operations, each checked by
 *   fast-json-patch's `validate`; `op` is one of add, remove, replace, move, copy, test (the
 *   library's private `_get` is refused); `path` and `from` are JSON Pointers (RFC 6901: "" or
 *   starting with `/`, `~` only as `~0` or `~1`) that do not go through `__proto__` or
 *   `constructor/prototype`; a `move` cannot move a value into itself. Members an operation does
 *   not define are dropped, as RFC 6902 says to ignore them.
 * - `bodyReplace` and `path`: `{pattern, replacement, flags?}`: `pattern` a non-empty string of at
 *   most MAX_REGEX_LENGTH characters that compiles and does not repeat a group that itself repeats
 *   (`(a+)+`, see src/common/safe-regex.ts); `flags` letters of `gimsu`, each at most once (default
 *   `g`, stored); `replacement` a string of at most MAX_REPLACEMENT_LENGTH characters (`$1`, `$&`,
 *   `$<name>` as in String.prototype.replace).
 * - `headers`: `{set?, remove?}`, at least one. `set`: 1 to MAX_HEADERS names (valid HTTP names, no
 *   two equal ignoring case) with string values (valid HTTP values, at most MAX_HEADER_VALUE_LENGTH
 *   characters); `remove`: 1 to MAX_HEADERS valid names, none twice, none also set. Neither may name
 *   (ignoring case) the rerun's own headers (`host`, `content-length`, `transfer-encoding`,
 *   `connection`, `parentid`, `taskid`, `clientid`: the service sets them on every rerun) nor a
 *   hop-by-hop header the rerun never forwards (`keep-alive`, `upgrade`, `te`, `trailer`, `expect`,
 *   `proxy-*`).
 * - `edits`: an array of at most `maxEdits` (MAX_EDITS) `{tid, body?, headers?}`: `tid` a 24-hex
 *   transaction id (returned in lower case), no tid twice; `body` a string (the whole new body);
 *   `headers` as `headers.set`; each edit gives a body or headers. `[]` is valid (no edits).
 *
 * ## Application (`applyTransform`, per rerun request, in this order)
 * 1. `path`: the regular expression replaces in the whole path + `?` + query string; the result must
 *    start with `/` and hold only what a request line may (no spaces, control characters or
 *    characters above U+00FF).
 * 2. headers: the transform's `remove`, then its `set`, then the edit's `headers` (the edit wins).
 *    Names compare ignoring case; a set header keeps the spelling of the header it replaces.
 * 3. body: an edit with `body` replaces the body outright (no body transform applies to it); else
 *    `body`: with a content-type header (after step 2) that is not JSON (`isJsonContentType`), or a
 *    body that does not parse, the request fails (`the body is not JSON (...)`); an absent body fails
 *    (nothing to patch). The operations apply in order to the parsed document (a copy: neither the
 *    request nor the spec is touched); the first one that fails (a `test` that does not hold, a
 *    path that does not exist) fails the request, naming its index, op, path and reason. `replace`,
 *    `remove`, `test` and the `from` of `move`/`copy` need the location to exist as an own member
 *    (RFC 6902), never an inherited one like `toString`. The result is serialised with
 *    JSON.stringify (compact: formatting and number spellings such as `1.50` are not kept), unless
 *    it is deep-equal to the original document: then the original bytes are kept. Else
 *    `bodyReplace` replaces in the body text (an absent body stays absent).
 * `changed` says whether the request that comes out differs from the one that went in (path, the
 * headers as a set of names and values, body). The method is never changed.
 *
 * `applyTransform` never throws (anything unexpected becomes `{ok: false, error}`) and never mutates
 * its arguments; its errors are short and readable by an operator, prefixed with the field:
 * `transform.body[2] (test /resourceType) failed: Test operation failed`.
 *
 * Not done here: `content-length` is not recomputed (the sender computes it from the body it sends)
 * and a header the request holds under `content-length` passes through unchanged.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { applyOperation, JsonPatchError, validate } from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import { setFlagsFromString } from 'node:v8';
import { MAX_REGEX_LENGTH, repeatsARepetition } from '../../common/safe-regex';

// A text replacement runs on a worker's event loop: a pattern that backtracks too much falls back to
// V8's linear-time engine (for regexes compiled from now on), so no body can stall the worker. The
// patterns that engine cannot run (backreferences, lookarounds) are refused by the validator.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

/** Backreferences and lookarounds: what V8's linear-time engine cannot run. */
const NOT_LINEAR = /\\[1-9]|\\k<|\(\?<?[=!]/;

/** As a task stores it (plain JSON). */
export interface TransformSpec {
  /** JSON Patch for JSON bodies. */
  body?: Operation[];
  /** For text bodies (HL7 v2, XML, CSV). */
  bodyReplace?: { pattern: string; replacement: string; flags?: string };
  headers?: { set?: Record<string, string>; remove?: string[] };
  /** On path + '?' + querystring. */
  path?: { pattern: string; replacement: string; flags?: string };
}

export interface ItemEdit {
  tid: string;
  body?: string;
  headers?: Record<string, string>;
}

/** The parts of a rerun request a transform may change. */
export interface RequestParts {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: string;
}

export type TransformResult = { ok: true; request: RequestParts; changed: boolean } | { ok: false; error: string };

/** Thrown by the validators; `message` names the field. */
export class InvalidTransformError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTransformError';
  }
}

export type RegexReplace = NonNullable<TransformSpec['path']>;

export const MAX_PATCH_OPERATIONS = 100;
export const MAX_EDITS = 1000;
export const MAX_HEADERS = 100;
export const MAX_HEADER_VALUE_LENGTH = 8192;
export const MAX_REPLACEMENT_LENGTH = 10_000;
export const REGEX_FLAGS = 'gimsu';
export const DEFAULT_REGEX_FLAGS = 'g';
export const PATCH_OPERATIONS = ['add', 'remove', 'replace', 'move', 'copy', 'test'] as const;

/** Set by the service on every rerun (or recomputed for it): a transform may neither set nor remove them. */
export const RERUN_OWN_HEADERS = [
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'parentid',
  'taskid',
  'clientid',
] as const;
/** Hop-by-hop headers, dropped from every rerun (src/rerun/sending/rerun-request.ts), besides `proxy-*`. */
export const HOP_BY_HOP_HEADERS = ['keep-alive', 'upgrade', 'te', 'trailer', 'expect'] as const;

const TRANSFORM_KEYS = ['body', 'bodyReplace', 'headers', 'path'] as const;
const REPLACE_KEYS = ['pattern', 'replacement', 'flags'] as const;
const HEADERS_KEYS = ['set', 'remove'] as const;
const EDIT_KEYS = ['tid', 'body', 'headers'] as const;
const HEX_ID = /^[0-9a-f]{24}$/i;
/** What node's http.request refuses in a path (its INVALID_PATH_REGEX). */
const INVALID_PATH_CHARACTER = /[^\u0021-\u00ff]/;
const ARRAY_INDEX = /^(0|[1-9]\d*)$/;
const hasOwn = (value: object, key: string) => Object.prototype.hasOwnProperty.call(value, key);

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/** The transform of a task, checked and normalised; throws InvalidTransformError naming the field. */
export function validateTransform(raw: unknown): TransformSpec {
  const field = 'transform';
  if (!isPlainObject(raw)) {
    throw invalid(`${field} must be an object with one or more of ${TRANSFORM_KEYS.join(', ')} (got ${describe(raw)})`);
  }
  assertKnownKeys(field, raw, TRANSFORM_KEYS);
  const present = TRANSFORM_KEYS.filter((key) => raw[key] !== undefined);
  if (!present.length) throw invalid(`${field} must give at least one of ${TRANSFORM_KEYS.join(', ')}`);
  if (raw.body !== undefined && raw.bodyReplace !== undefined) {
    throw invalid(
      `${field} may give body (a JSON Patch) or bodyReplace (a text replacement), not both: one body transform per task`,
    );
  }
  const spec: TransformSpec = {};
  if (raw.body !== undefined) spec.body = validatePatch(raw.body, `${field}.body`);
  if (raw.bodyReplace !== undefined) spec.bodyReplace = validateReplace(raw.bodyReplace, `${field}.bodyReplace`);
  if (raw.headers !== undefined) spec.headers = validateHeaders(raw.headers, `${field}.headers`);
  if (raw.path !== undefined) spec.path = validateReplace(raw.path, `${field}.path`);
  return spec;
}

/** A task's `edits`, checked and normalised (tids in lower case); throws InvalidTransformError naming the field. */
export function validateEdits(raw: unknown, maxEdits = MAX_EDITS): ItemEdit[] {
  const field = 'edits';
  if (!Array.isArray(raw)) {
    throw invalid(`${field} must be an array of {tid, body?, headers?} (got ${describe(raw)})`);
  }
  if (raw.length > maxEdits) throw invalid(`${field} must hold at most ${maxEdits} edits (got ${raw.length})`);
  const seen = new Map<string, number>();
  return raw.map((entry: unknown, index) => {
    const where = `${field}[${index}]`;
    if (!isPlainObject(entry)) {
      throw invalid(
        `${where} must be an object like {"tid": "<24-hex id>", "body": "...", "headers": {...}} (got ${describe(entry)})`,
      );
    }
    assertKnownKeys(where, entry, EDIT_KEYS);
    if (typeof entry.tid !== 'string' || !HEX_ID.test(entry.tid)) {
      throw invalid(`${where}.tid must be a 24-character hex transaction id (got ${describe(entry.tid)})`);
    }
    const tid = entry.tid.toLowerCase();
    const earlier = seen.get(tid);
    if (earlier !== undefined) {
      throw invalid(`${where}.tid ${describe(tid)} is also ${field}[${earlier}].tid (one edit per transaction)`);
    }
    seen.set(tid, index);
    if (entry.body === undefined && entry.headers === undefined) {
      throw invalid(`${where} must give a body, headers or both (got neither)`);
    }
    const edit: ItemEdit = { tid };
    if (entry.body !== undefined) {
      if (typeof entry.body !== 'string') {
        throw invalid(`${where}.body must be a string, the whole new body (got ${describe(entry.body)})`);
      }
      edit.body = entry.body;
    }
    if (entry.headers !== undefined) edit.headers = validateHeaderSet(entry.headers, `${where}.headers`);
    return edit;
  });
}

/** The edits by tid (lower case), for looking one up per item. */
export function editsByTid(edits: readonly ItemEdit[] | undefined): Map<string, ItemEdit> {
  return new Map((edits ?? []).map((edit) => [edit.tid.toLowerCase(), edit]));
}

function validatePatch(raw: unknown, field: string): Operation[] {
  const example = '{"op": "replace", "path": "/status", "value": "final"}';
  if (!Array.isArray(raw)) {
    throw invalid(`${field} must be a JSON Patch: an array of operations like ${example} (got ${describe(raw)})`);
  }
  if (raw.length === 0) throw invalid(`${field} must hold at least one operation`);
  if (raw.length > MAX_PATCH_OPERATIONS) {
    throw invalid(`${field} must hold at most ${MAX_PATCH_OPERATIONS} operations (got ${raw.length})`);
  }
  const operations = raw.map((entry: unknown, index) => {
    const where = `${field}[${index}]`;
    if (!isPlainObject(entry)) throw invalid(`${where} must be an operation like ${example} (got ${describe(entry)})`);
    if (typeof entry.op !== 'string' || !(PATCH_OPERATIONS as readonly string[]).includes(entry.op)) {
      throw invalid(`${where}.op must be one of ${PATCH_OPERATIONS.join(', ')} (got ${describe(entry.op)})`);
    }
    // The members RFC 6902 defines for the operation; others are ignored (RFC 6902 section 4).
    const operation: Record<string, unknown> = { op: entry.op };
    for (const member of ['path', 'from', 'value']) {
      if (hasOwn(entry, member) && definesMember(entry.op, member)) operation[member] = entry[member];
    }
    return operation as unknown as Operation;
  });
  const error = validate(operations);
  if (error) throw invalid(describePatchError(error, field, raw as Record<string, unknown>[]));
  operations.forEach((operation, index) => {
    const where = `${field}[${index}]`;
    checkPointer(operation.path, `${where}.path`);
    if (operation.op === 'move' || operation.op === 'copy') {
      checkPointer(operation.from, `${where}.from`);
      if (operation.op === 'move' && isProperPrefix(operation.from, operation.path)) {
        throw invalid(
          `${where} cannot move a value into itself (from ${describe(operation.from)} contains path ${describe(operation.path)})`,
        );
      }
    }
  });
  return operations;
}

function definesMember(op: string, member: string): boolean {
  if (member === 'path') return true;
  if (member === 'from') return op === 'move' || op === 'copy';
  return op === 'add' || op === 'replace' || op === 'test';
}

/** fast-json-patch's validation error as a message naming the operation's field. */
function describePatchError(error: JsonPatchError, field: string, raw: Record<string, unknown>[]): string {
  const index = error.index ?? 0;
  const where = `${field}[${index}]`;
  const entry = raw[index] ?? {};
  switch (error.name) {
    case 'OPERATION_PATH_INVALID':
      return `${where}.path must be a JSON Pointer: "" (the whole document) or a string starting with / (got ${describe(entry.path)})`;
    case 'OPERATION_FROM_REQUIRED':
      return `${where}.from must be a JSON Pointer string: "${String(entry.op)}" needs one (got ${describe(entry.from)})`;
    case 'OPERATION_VALUE_REQUIRED':
    case 'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED':
      return `${where}.value is required by "${String(entry.op)}" (got ${describe(entry.value)})`;
    default:
      return `${where}: ${firstLine(error.message)}`;
  }
}

/** RFC 6901 escapes, and no way into an object's prototype (fast-json-patch refuses those at application). */
function checkPointer(pointer: string, where: string): void {
  if (pointer !== '' && !pointer.startsWith('/')) {
    throw invalid(
      `${where} must be a JSON Pointer: "" (the whole document) or a string starting with / (got ${describe(pointer)})`,
    );
  }
  if (/~(?![01])/.test(pointer)) {
    throw invalid(`${where} is not a valid JSON Pointer: write ~0 for "~" and ~1 for "/" (got ${describe(pointer)})`);
  }
  const segments = pointer.split('/').map(unescapeSegment);
  if (
    segments.some(
      (segment, at) => segment === '__proto__' || (segment === 'prototype' && segments[at - 1] === 'constructor'),
    )
  ) {
    throw invalid(`${where} must not go through __proto__ or constructor/prototype (got ${describe(pointer)})`);
  }
}

const unescapeSegment = (segment: string) => segment.replace(/~1/g, '/').replace(/~0/g, '~');
const isProperPrefix = (prefix: string, pointer: string) => pointer.startsWith(`${prefix}/`);

function validateReplace(raw: unknown, field: string): RegexReplace {
  if (!isPlainObject(raw)) {
    throw invalid(
      `${field} must be an object like {"pattern": "OLD", "replacement": "NEW", "flags": "g"} (got ${describe(raw)})`,
    );
  }
  assertKnownKeys(field, raw, REPLACE_KEYS);
  const { pattern, replacement } = raw;
  if (typeof pattern !== 'string' || pattern === '') {
    throw invalid(`${field}.pattern must be a non-empty regular expression as a string (got ${describe(pattern)})`);
  }
  if (pattern.length > MAX_REGEX_LENGTH) {
    throw invalid(`${field}.pattern must be at most ${MAX_REGEX_LENGTH} characters (got ${pattern.length})`);
  }
  const flags = raw.flags === undefined ? DEFAULT_REGEX_FLAGS : raw.flags;
  if (
    typeof flags !== 'string' ||
    [...flags].some((flag, at) => !REGEX_FLAGS.includes(flag) || flags.indexOf(flag) !== at)
  ) {
    throw invalid(`${field}.flags must be letters of "${REGEX_FLAGS}", each at most once (got ${describe(raw.flags)})`);
  }
  try {
    new RegExp(pattern, flags);
  } catch (error) {
    throw invalid(`${field}.pattern is not a valid regular expression: ${(error as Error).message}`);
  }
  if (NOT_LINEAR.test(pattern)) {
    throw invalid(
      `${field}.pattern must not use backreferences (\\1, \\k<name>) or lookarounds ((?=, (?!, (?<=, (?<!): ` +
        'patterns are run so that no body can make them take exponential time, which these would prevent',
    );
  }
  if (repeatsARepetition(pattern)) {
    throw invalid(
      `${field}.pattern must not repeat a group that itself repeats, like (a+)+ (matching such an expression can ` +
        'take exponential time)',
    );
  }
  if (typeof replacement !== 'string') {
    throw invalid(`${field}.replacement must be a string (got ${describe(replacement)})`);
  }
  if (replacement.length > MAX_REPLACEMENT_LENGTH) {
    throw invalid(
      `${field}.replacement must be at most ${MAX_REPLACEMENT_LENGTH} characters (got ${replacement.length})`,
    );
  }
  return { pattern, replacement, flags };
}

function validateHeaders(raw: unknown, field: string): NonNullable<TransformSpec['headers']> {
  if (!isPlainObject(raw)) {
    throw invalid(
      `${field} must be an object like {"set": {"name": "value"}, "remove": ["name"]} (got ${describe(raw)})`,
    );
  }
  assertKnownKeys(field, raw, HEADERS_KEYS);
  if (raw.set === undefined && raw.remove === undefined) throw invalid(`${field} must give set, remove or both`);
  const headers: NonNullable<TransformSpec['headers']> = {};
  if (raw.set !== undefined) headers.set = validateHeaderSet(raw.set, `${field}.set`);
  if (raw.remove !== undefined) {
    const where = `${field}.remove`;
    if (!Array.isArray(raw.remove) || raw.remove.length === 0) {
      throw invalid(`${where} must be a non-empty array of header names (got ${describe(raw.remove)})`);
    }
    if (raw.remove.length > MAX_HEADERS) {
      throw invalid(`${where} must hold at most ${MAX_HEADERS} names (got ${raw.remove.length})`);
    }
    const seen = new Set<string>();
    headers.remove = raw.remove.map((name: unknown, index) => {
      checkHeaderName(name, `${where}[${index}]`, 'remove');
      const lower = (name as string).toLowerCase();
      if (seen.has(lower)) throw invalid(`${where} names ${describe(name)} twice`);
      seen.add(lower);
      return name as string;
    });
    const setAndRemoved = Object.keys(headers.set ?? {}).find((name) => seen.has(name.toLowerCase()));
    if (setAndRemoved !== undefined) {
      throw invalid(`${field}: ${describe(setAndRemoved)} is both in set and in remove (give it in one of them)`);
    }
  }
  return headers;
}

/** `headers.set` of a transform, `headers` of an edit: header names and their new values. */
function validateHeaderSet(raw: unknown, field: string): Record<string, string> {
  if (!isPlainObject(raw) || Object.keys(raw).length === 0) {
    throw invalid(`${field} must be a non-empty object of header names and values (got ${describe(raw)})`);
  }
  const names = Object.keys(raw);
  if (names.length > MAX_HEADERS)
    throw invalid(`${field} must hold at most ${MAX_HEADERS} headers (got ${names.length})`);
  const seen = new Map<string, string>();
  const entries = names.map((name): [string, string] => {
    checkHeaderName(name, field, 'set');
    const twin = seen.get(name.toLowerCase());
    if (twin !== undefined) {
      throw invalid(`${field} gives ${describe(twin)} and ${describe(name)}: header names do not depend on case`);
    }
    seen.set(name.toLowerCase(), name);
    const value = raw[name];
    const where = `${field}[${JSON.stringify(name)}]`;
    if (typeof value !== 'string') throw invalid(`${where} must be a string (got ${describe(value)})`);
    if (value.length > MAX_HEADER_VALUE_LENGTH) {
      throw invalid(`${where} must be at most ${MAX_HEADER_VALUE_LENGTH} characters (got ${value.length})`);
    }
    try {
      validateHeaderValue(name, value);
    } catch {
      throw invalid(
        `${where} is not a valid HTTP header value: control characters such as line breaks, and characters above ` +
          `U+00FF, are not allowed (got ${describe(value)})`,
      );
    }
    return [name, value];
  });
  return Object.fromEntries(entries);
}

function checkHeaderName(name: unknown, field: string, verb: 'set' | 'remove'): void {
  if (typeof name !== 'string') throw invalid(`${field} must be a header name (got ${describe(name)})`);
  try {
    validateHeaderName(name);
  } catch {
    throw invalid(`${field}: ${describe(name)} is not a valid HTTP header name`);
  }
  const lower = name.toLowerCase();
  if ((RERUN_OWN_HEADERS as readonly string[]).includes(lower)) {
    throw invalid(
      `${field} may not ${verb} ${describe(name)}: ${RERUN_OWN_HEADERS.join(', ')} are the rerun's own headers ` +
        '(the service sets them on every rerun)',
    );
  }
  if ((HOP_BY_HOP_HEADERS as readonly string[]).includes(lower) || lower.startsWith('proxy-')) {
    throw invalid(
      `${field} may not ${verb} ${describe(name)}: ${HOP_BY_HOP_HEADERS.join(', ')} and proxy-* are hop-by-hop ` +
        'headers, which a rerun never forwards',
    );
  }
}

function assertKnownKeys(field: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length) {
    throw invalid(
      `Unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => describe(key)).join(', ')} in ${field} ` +
        `(allowed: ${allowed.join(', ')})`,
    );
  }
}

const invalid = (message: string) => new InvalidTransformError(message);

// ---------------------------------------------------------------------------------------------
// Application
// ---------------------------------------------------------------------------------------------

/** Failure of one step, with the message the request fails with. */
class StepFailure extends Error {}

/**
 * The request as the transform and the edit make it; never throws, never mutates its arguments
 * (a fresh request is returned, even when nothing changed).
 */
export function applyTransform(
  spec: TransformSpec | undefined,
  edit: ItemEdit | undefined,
  request: RequestParts,
): TransformResult {
  try {
    return transform(spec, edit, request);
  } catch (error) {
    if (error instanceof StepFailure) return { ok: false, error: error.message };
    return { ok: false, error: `transform: ${reasonOf(error)}` };
  }
}

function transform(
  spec: TransformSpec | undefined,
  edit: ItemEdit | undefined,
  request: RequestParts,
): TransformResult {
  let path = request.path;
  if (spec?.path) path = rewritePath(spec.path, path);

  // Header entries, not an object: a stored name like `__proto__` stays a plain entry.
  let headers: [string, string | string[]][] = Object.entries(request.headers ?? {}).map(([name, value]) => [
    name,
    Array.isArray(value) ? [...value] : value,
  ]);
  if (spec?.headers?.remove?.length) {
    const removed = new Set(spec.headers.remove.map((name) => name.toLowerCase()));
    headers = headers.filter(([name]) => !removed.has(name.toLowerCase()));
  }
  if (spec?.headers?.set) headers = setHeaders(headers, spec.headers.set);
  if (edit?.headers) headers = setHeaders(headers, edit.headers);

  let body = request.body;
  if (edit?.body !== undefined) body = edit.body;
  else if (spec?.body) body = patchBody(spec.body, body, headerValue(headers, 'content-type'));
  else if (spec?.bodyReplace && body !== undefined) {
    body = step('transform.bodyReplace', () => replaceWith(spec.bodyReplace!, body!));
  }

  const result: RequestParts = { ...request, path, headers: Object.fromEntries(headers) };
  if (body !== undefined || 'body' in request) result.body = body;
  const changed = path !== request.path || body !== request.body || !sameHeaders(result.headers, request.headers ?? {});
  return { ok: true, request: result, changed };
}

function rewritePath(rule: RegexReplace, path: string): string {
  const field = 'transform.path';
  const rewritten = step(field, () => replaceWith(rule, path));
  if (!rewritten.startsWith('/'))
    throw new StepFailure(`${field}: the result ${describe(rewritten)} does not start with /`);
  if (INVALID_PATH_CHARACTER.test(rewritten)) {
    throw new StepFailure(
      `${field}: the result ${describe(rewritten)} holds characters a request path cannot (spaces, control ` +
        'characters, characters above U+00FF)',
    );
  }
  return rewritten;
}

function replaceWith(rule: RegexReplace, text: string): string {
  return text.replace(new RegExp(rule.pattern, rule.flags ?? DEFAULT_REGEX_FLAGS), rule.replacement);
}

/** Sets each header, replacing (ignoring case) what the request holds, under the spelling it holds. */
function setHeaders(
  headers: [string, string | string[]][],
  set: Record<string, string>,
): [string, string | string[]][] {
  let result = headers;
  for (const [name, value] of Object.entries(set)) {
    const lower = name.toLowerCase();
    const at = result.findIndex(([held]) => held.toLowerCase() === lower);
    if (at < 0) {
      result = [...result, [name, value]];
    } else {
      result = result.filter(([held], index) => index <= at || held.toLowerCase() !== lower);
      result[at] = [result[at][0], value];
    }
  }
  return result;
}

function headerValue(headers: [string, string | string[]][], lowerName: string): string | undefined {
  const found = headers.find(([name]) => name.toLowerCase() === lowerName)?.[1];
  return Array.isArray(found) ? found[0] : found;
}

function sameHeaders(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => {
    if (!hasOwn(b, name)) return false;
    const [x, y] = [a[name], b[name]];
    if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((part, at) => part === y[at]);
    return x === y;
  });
}

/** A media type of JSON: application/json, application/fhir+json, any type/subtype+json; parameters allowed. */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (typeof contentType !== 'string') return false;
  const mediaType = contentType.split(';', 1)[0].trim().toLowerCase();
  return (
    /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(mediaType) &&
    (mediaType === 'application/json' || mediaType.endsWith('+json'))
  );
}

function patchBody(
  operations: readonly Operation[],
  body: string | undefined,
  contentType: string | undefined,
): string {
  const field = 'transform.body';
  if (body === undefined) throw new StepFailure(`${field}: the request has no body to patch`);
  if (contentType !== undefined && !isJsonContentType(contentType)) {
    throw new StepFailure(`${field}: the body is not JSON (content-type ${describe(contentType)})`);
  }
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch (error) {
    throw new StepFailure(`${field}: the body is not JSON (${jsonSyntaxReason(body, error)})`);
  }
  operations.forEach((operation, index) => {
    try {
      document = applyOne(document, operation);
    } catch (error) {
      const path = typeof operation?.path === 'string' ? clip(operation.path, 60) : describe(operation?.path);
      throw new StepFailure(`${field}[${index}] (${String(operation?.op)} ${path}) failed: ${reasonOf(error)}`);
    }
  });
  // A patch that leaves the document as it was leaves the body's bytes as they were.
  return jsonEqual(document, JSON.parse(body)) ? body : JSON.stringify(document);
}

/**
 * One operation on the document (which it may mutate: it is the request's parsed copy). Locations
 * that must exist are checked here as own members (fast-json-patch would accept an inherited
 * `toString` as existing); `test` is compared here too (fast-json-patch's equality calls the
 * document's own `hasOwnProperty`, which a JSON member may shadow).
 */
function applyOne(document: unknown, operation: Operation): unknown {
  const op = operation.op as string;
  if (op === 'test') {
    const found = resolvePointer(document, operation.path);
    if (!found.exists) throw new Error('Test operation failed (the path does not exist)');
    if (!jsonEqual(found.value, (operation as { value: unknown }).value)) throw new Error('Test operation failed');
    return document;
  }
  if ((op === 'replace' || op === 'remove') && !resolvePointer(document, operation.path).exists) {
    throw new Error('Cannot perform the operation at a path that does not exist');
  }
  if (op === 'move' || op === 'copy') {
    const from = (operation as { from: string }).from;
    if (!resolvePointer(document, from).exists)
      throw new Error('Cannot perform the operation from a path that does not exist');
    if (op === 'move' && isProperPrefix(from, operation.path)) throw new Error('Cannot move a value into itself');
  }
  if (!(PATCH_OPERATIONS as readonly string[]).includes(op)) throw new Error(`Unknown operation ${describe(op)}`);
  // The library stores an operation's value by reference: give it a copy, never the spec's own.
  const copy = { ...operation } as Operation & { value?: unknown };
  if ('value' in copy) copy.value = cloneJson(copy.value);
  return applyOperation(document, copy, true, true, true).newDocument;
}

function resolvePointer(document: unknown, pointer: string): { exists: boolean; value?: unknown } {
  if (pointer === '') return { exists: true, value: document };
  if (typeof pointer !== 'string' || !pointer.startsWith('/')) return { exists: false };
  let value = document;
  for (const segment of pointer.slice(1).split('/').map(unescapeSegment)) {
    if (Array.isArray(value)) {
      if (!ARRAY_INDEX.test(segment) || Number(segment) >= value.length) return { exists: false };
      value = value[Number(segment)];
    } else if (value !== null && typeof value === 'object' && hasOwn(value, segment)) {
      value = (value as Record<string, unknown>)[segment];
    } else {
      return { exists: false };
    }
  }
  return { exists: true, value };
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((entry, index) => jsonEqual(entry, b[index]));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every(
    (key) => hasOwn(b, key) && jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  );
}

const cloneJson = (value: unknown): unknown =>
  value === null || typeof value !== 'object' ? value : JSON.parse(JSON.stringify(value));

/** Runs a step whose unexpected errors (a stored spec that no longer compiles) name its field. */
function step<T>(field: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof StepFailure) throw error;
    throw new StepFailure(`${field}: ${reasonOf(error)}`);
  }
}

/** V8's JSON.parse message without the piece of the body it quotes (a body may hold patient data). */
function jsonSyntaxReason(body: string, error: unknown): string {
  if (body.trim() === '') return 'it is empty';
  // `Unexpected token 'M', "MSH|^~\&|L"... is not valid JSON`: everything from the quote goes.
  return firstLine(reasonOf(error)).replace(/, "[\s\S]*$/, '');
}

function reasonOf(error: unknown): string {
  if (error instanceof JsonPatchError) return firstLine(error.message);
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith('JSON-Patch: modifying `__proto__`'))
    return 'modifying __proto__ or constructor/prototype is not allowed';
  return clip(firstLine(message), 200);
}

const firstLine = (text: string) => text.split('\n', 1)[0];
const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length - 3)}...` : text);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** As src/tasks/validation/checks.ts describes a value (rerun/ may not import tasks/). */
function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A BigInt or a cycle: not JSON, said as JavaScript says it.
  }
  text ??= String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

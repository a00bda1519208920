import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { StoredRequest } from '../../database/schemas';

/** Headers never copied from the stored request: hop-by-hop, or recomputed for the new request. */
const DROPPED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  // Set by us below; a stored copy must not duplicate them.
  'clientid',
  'parentid',
  'taskid',
]);

/** Methods whose stored body is sent again (OpenHIM loses PATCH bodies; we do not). */
const WITH_BODY = new Set(['POST', 'PUT', 'PATCH']);

export interface HttpRerunRequest {
  method: string;
  /** Path plus `?querystring`. */
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
}

export interface RerunSource {
  _id: { toString(): string };
  clientID?: unknown;
  request?: StoredRequest;
}

/** MongoDB forbids `.` and `$` in keys, so OpenHIM stores them as U+FF0E and U+FF04. */
export function unescapeHeaderName(name: string): string {
  return name.replace(/\uFF0E/g, '.').replace(/\uFF04/g, '$');
}

/**
 * The request OpenHIM core's rerun endpoint expects (spec §6): the original method, path, query and
 * headers, plus `clientID`, `parentID` and `taskID`; the body for POST, PUT and PATCH.
 */
export function buildHttpRerun(transaction: RerunSource, taskId: string): HttpRerunRequest {
  const request = transaction.request ?? {};
  const method = (request.method || 'GET').toUpperCase();
  const query = request.querystring ? `?${request.querystring}` : '';
  const headers: Record<string, string | string[]> = {};
  for (const [stored, value] of Object.entries(request.headers ?? {})) {
    const name = unescapeHeaderName(stored);
    const lower = name.toLowerCase();
    if (DROPPED.has(lower) || lower.startsWith('proxy-')) continue;
    const text = headerValue(value);
    if (text === undefined || !isValidHeader(name, text)) continue;
    headers[name] = text;
  }
  if (transaction.clientID) headers.clientID = String(transaction.clientID);
  headers.parentID = transaction._id.toString();
  headers.taskID = taskId;

  let body: Buffer | undefined;
  if (WITH_BODY.has(method)) {
    body = Buffer.from(typeof request.body === 'string' ? request.body : '', 'utf8');
    headers['content-length'] = String(body.length);
  }
  return { method, path: `${request.path || '/'}${query}`, headers, body };
}

function headerValue(value: unknown): string | string[] | undefined {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'object') return undefined;
  return String(value);
}

function isValidHeader(name: string, value: string | string[]): boolean {
  try {
    validateHeaderName(name);
    for (const part of Array.isArray(value) ? value : [value]) validateHeaderValue(name, part);
    return true;
  } catch {
    return false;
  }
}

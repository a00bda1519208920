import { createHash } from 'node:crypto';
import type { HttpRerunRequest } from '../sending/rerun-request';
import { applyTransform, type ItemEdit, type RequestParts, type TransformSpec } from './request-transform';

/** What a task's transform (and an item's edit) make of one rerun: the request to send, or why not. */
export type TransformedRerun =
  { ok: true; http?: HttpRerunRequest; tcpBody?: string; bodySha256: string } | { ok: false; error: string };

/**
 * Applies the task's transform and the item's edit to the rerun built from the original (never
 * changed): an HTTP request (its `content-length` recomputed) or a TCP body, with the SHA-256 of the
 * body that will be sent (the item records it).
 */
export function transformRerun(
  spec: TransformSpec | undefined,
  edit: Omit<ItemEdit, 'tid'> | undefined,
  tid: string,
  rerun: { http: HttpRerunRequest } | { tcpBody: string },
): TransformedRerun {
  const parts: RequestParts =
    'http' in rerun
      ? {
          method: rerun.http.method,
          path: rerun.http.path,
          headers: withoutContentLength(rerun.http.headers),
          ...(rerun.http.body ? { body: rerun.http.body.toString('utf8') } : {}),
        }
      : { method: 'TCP', path: '/', headers: {}, body: rerun.tcpBody };
  const result = applyTransform(spec, edit ? { tid, ...edit } : undefined, parts);
  if (!result.ok) return { ok: false, error: `The transform could not be applied: ${result.error}` };
  const body = result.request.body ?? '';
  const bodySha256 = createHash('sha256').update(body, 'utf8').digest('hex');
  if (!('http' in rerun)) return { ok: true, tcpBody: body, bodySha256 };
  const headers = { ...result.request.headers };
  // Only methods that carry a body send one (as without a transform).
  const sent = rerun.http.body ? Buffer.from(body, 'utf8') : undefined;
  if (sent) headers['content-length'] = String(sent.length);
  return {
    ok: true,
    http: { method: rerun.http.method, path: result.request.path, headers, ...(sent ? { body: sent } : {}) },
    bodySha256: sent ? bodySha256 : createHash('sha256').update('').digest('hex'),
  };
}

function withoutContentLength(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'content-length'));
}

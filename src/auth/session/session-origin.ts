import type { Request } from 'express';
import { crossSite } from '../../common/http/cross-site';

/** Whether `origin` is one of CORS_ORIGINS (which are stored lower-case, without a trailing slash). */
export function isListedOrigin(listed: readonly string[], origin: string | undefined): boolean {
  return origin !== undefined && listed.includes(origin.trim().replace(/\/+$/, '').toLowerCase());
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Why a request authenticated by a session cookie may not change anything, or undefined when it
 * may: only the console origins of CORS_ORIGINS, and this service's own origin, can send such
 * requests. OpenHIM core accepts them from any origin (its cookie is SameSite=None and it reflects
 * every origin with credentials), so any website could drive a logged-in browser; we do not.
 */
export function sessionOriginRefusal(
  request: Pick<Request, 'method' | 'headers'>,
  listed: readonly string[],
): string | undefined {
  if (SAFE_METHODS.has(request.method.toUpperCase())) return undefined;
  const origin = request.headers.origin;
  if (isListedOrigin(listed, origin)) return undefined;
  if (!crossSite(request)) return undefined;
  return `Requests that change tasks with a session cookie are not accepted from ${origin ? `origin ${origin}` : 'another site'}`;
}

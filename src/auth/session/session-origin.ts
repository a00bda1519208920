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
  const refused = 'Requests that change tasks with a session cookie are not accepted from';
  const listable = listableOrigin(origin);
  if (listable) {
    return (
      `${refused} origin ${listable}: it is not in CORS_ORIGINS. If the OpenHIM console is served from there, ` +
      `allow it with CORS_ORIGINS=${listable} (comma-separated with any others) and restart`
    );
  }
  // Nothing the client sent is echoed unless it is a plain origin (it goes into the answer and the log).
  const from =
    origin === 'null'
      ? 'an opaque origin ("null"), which CORS_ORIGINS cannot list'
      : origin
        ? 'an origin that is not a plain http(s) origin'
        : 'another site (no Origin header)';
  return (
    `${refused} ${from}. Only this service's own origin and the origins listed in CORS_ORIGINS ` +
    '(e.g. CORS_ORIGINS=https://console.example.org) may send them'
  );
}

/** Hosts, ports and IPv6 brackets only: what a browser sends for an http(s) page, and CORS_ORIGINS accepts. */
const PLAIN_ORIGIN = /^https?:\/\/[a-z0-9.\-:[\]]{1,260}$/;

/** The refused origin as it would be listed in CORS_ORIGINS, or undefined when it cannot be listed. */
function listableOrigin(origin: string | undefined): string | undefined {
  const normalised = origin?.trim().replace(/\/+$/, '').toLowerCase();
  return normalised !== undefined && PLAIN_ORIGIN.test(normalised) ? normalised : undefined;
}

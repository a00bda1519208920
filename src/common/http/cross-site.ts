import type { Request } from 'express';

/** Sent by another site: Sec-Fetch-Site says so, or the Origin is not this host. */
export function crossSite(request: Pick<Request, 'headers'>): boolean {
  const fetchSite = request.headers['sec-fetch-site'];
  if (fetchSite === 'cross-site' || fetchSite === 'same-site') return true;
  const origin = request.headers.origin;
  if (!origin || origin === 'null') return origin === 'null';
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

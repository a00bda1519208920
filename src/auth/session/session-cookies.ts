import Keygrip from 'keygrip';

/** OpenHIM core's koa-session cookie (the session id) and its keygrip signature cookie. */
export const SESSION_COOKIE = 'koa.sess';
export const SESSION_SIGNATURE_COOKIE = `${SESSION_COOKIE}.sig`;

export type SessionCookie =
  /** No session cookie, or one without its signature (koa-session ignores it). */
  | { kind: 'none' }
  /** A signature no key of ours made. */
  | { kind: 'forged' }
  | { kind: 'signed'; id: string };

/** One cookie's value from a `Cookie` header, as the `cookies` package reads it (no decoding). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const pattern = new RegExp(`(?:^|;) *${name.replace(/[-[\]{}()*+?.,\\^$|#\s]/g, '\\$&')}=([^;]*)`);
  return pattern.exec(header)?.[1];
}

/**
 * Core's session cookies, read and written exactly as koa 2 (`cookies` with keygrip) does:
 * `koa.sess=<id>` signed by `koa.sess.sig` = keygrip's sign of `koa.sess=<id>` (HMAC-SHA1, URL-safe
 * base64), any key of the list verifying (in constant time) and the first one signing.
 */
export class SessionCookies {
  private readonly keygrip: Keygrip;

  constructor(
    keys: readonly string[],
    private readonly options: { maxAgeMs: number; secure: boolean },
  ) {
    this.keygrip = new Keygrip([...keys]);
  }

  read(cookieHeader: string | undefined): SessionCookie {
    const id = readCookie(cookieHeader, SESSION_COOKIE);
    const signature = readCookie(cookieHeader, SESSION_SIGNATURE_COOKIE);
    if (!id || signature === undefined) return { kind: 'none' };
    return this.keygrip.verify(`${SESSION_COOKIE}=${id}`, signature) ? { kind: 'signed', id } : { kind: 'forged' };
  }

  /** The two `Set-Cookie` values of a new session, expiring `maxAgeMs` from `now`. */
  issue(id: string, now = Date.now()): string[] {
    return this.pair(id, new Date(now + this.options.maxAgeMs));
  }

  /** What koa-session sends when a session ends: both cookies emptied, expired in 1970. */
  expire(): string[] {
    return this.pair('', new Date(0));
  }

  private pair(value: string, expires: Date): string[] {
    const attributes = `; path=/; expires=${expires.toUTCString()}; samesite=none${this.options.secure ? '; secure' : ''}; httponly`;
    const signature = this.keygrip.sign(`${SESSION_COOKIE}=${value}`);
    return [`${SESSION_COOKIE}=${value}${attributes}`, `${SESSION_SIGNATURE_COOKIE}=${signature}${attributes}`];
  }
}

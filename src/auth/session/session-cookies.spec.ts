import { createHmac } from 'node:crypto';
import { readCookie, SessionCookies } from './session-cookies';

/** keygrip 1.1 as koa signs: base64 HMAC-SHA1 of `name=value`, with + / = made URL-safe. */
const keygripSign = (key: string, data: string) =>
  createHmac('sha1', key).update(data).digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '');

const ID = '3f2504e0-4f89-41d3-9a0c-0305e82c3301';
const CORE_DEFAULT_KEY = 'r8q,+&1LM3)CD*zAGpx1xm{NeQhc;#';

describe('SessionCookies (OpenHIM core 8 koa-session cookies)', () => {
  const cookies = new SessionCookies(['new-key', CORE_DEFAULT_KEY], { maxAgeMs: 7_200_000, secure: true });

  it('accepts a cookie signed with any of its keys, refuses another signature, ignores a cookie without one', () => {
    const signedBy = (key: string) => `koa.sess=${ID}; koa.sess.sig=${keygripSign(key, `koa.sess=${ID}`)}`;
    expect(cookies.read(signedBy('new-key'))).toEqual({ kind: 'signed', id: ID });
    expect(cookies.read(signedBy(CORE_DEFAULT_KEY))).toEqual({ kind: 'signed', id: ID });
    expect(cookies.read(signedBy('another-key'))).toEqual({ kind: 'forged' });
    expect(cookies.read(`koa.sess=${ID}; koa.sess.sig=`)).toEqual({ kind: 'forged' });
    // The signature covers the id: a signature of another session does not carry over.
    const other = keygripSign('new-key', 'koa.sess=another-id');
    expect(cookies.read(`koa.sess=${ID}; koa.sess.sig=${other}`)).toEqual({ kind: 'forged' });
    expect(cookies.read(`koa.sess=${ID}`)).toEqual({ kind: 'none' });
    expect(cookies.read('other=1')).toEqual({ kind: 'none' });
    expect(cookies.read(undefined)).toEqual({ kind: 'none' });
  });

  it('writes the cookies as koa does: signed with the first key, path, expires, samesite=none, secure, httponly', () => {
    const now = Date.parse('2026-12-03T10:00:00Z');
    expect(cookies.issue(ID, now)).toEqual([
      `koa.sess=${ID}; path=/; expires=Thu, 03 Dec 2026 12:00:00 GMT; samesite=none; secure; httponly`,
      `koa.sess.sig=${keygripSign('new-key', `koa.sess=${ID}`)}; path=/; expires=Thu, 03 Dec 2026 12:00:00 GMT; samesite=none; secure; httponly`,
    ]);
    const insecure = new SessionCookies(['k'], { maxAgeMs: 1000, secure: false });
    expect(insecure.issue(ID, now)[0]).toBe(
      `koa.sess=${ID}; path=/; expires=Thu, 03 Dec 2026 10:00:01 GMT; samesite=none; httponly`,
    );
  });

  it("expires both cookies as koa-session's logout does", () => {
    expect(cookies.expire()).toEqual([
      'koa.sess=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=none; secure; httponly',
      `koa.sess.sig=${keygripSign('new-key', 'koa.sess=')}; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=none; secure; httponly`,
    ]);
  });

  it('reads one cookie of a Cookie header literally', () => {
    expect(readCookie('a=1; koa.sess=x; koa.sess.sig=y', 'koa.sess')).toBe('x');
    expect(readCookie('a=1; koa.sess=x; koa.sess.sig=y', 'koa.sess.sig')).toBe('y');
    expect(readCookie('xkoa.sess=x', 'koa.sess')).toBeUndefined();
    expect(readCookie('koa_sess=x', 'koa.sess')).toBeUndefined();
  });
});

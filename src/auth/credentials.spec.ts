import { createHash } from 'node:crypto';
import {
  DEFAULT_ROOT_PASSWORD_HASH,
  exactCaseInsensitive,
  expectedToken,
  hashPassword,
  isWithinWindow,
  parseAuthTs,
  parseBasicAuthorization,
  safeEqual,
  selectPasswordFields,
  toStoredPassword,
} from './credentials';

const sha512 = (text: string) => createHash('sha512').update(text).digest('hex');

describe('OpenHIM credential checks', () => {
  describe('parseAuthTs', () => {
    it('reads ISO 8601, as the console and the bash client send it', () => {
      expect(parseAuthTs('2026-11-29T07:20:09.123Z')).toBe(Date.UTC(2026, 10, 29, 7, 20, 9, 123));
    });

    it("reads Date.prototype.toString(), as the docs' Node client sends it", () => {
      expect(parseAuthTs('Sun Nov 29 2026 07:20:09 GMT+0000 (Coordinated Universal Time)')).toBe(
        Date.UTC(2026, 10, 29, 7, 20, 9),
      );
      expect(parseAuthTs('Sun Nov 29 2026 09:20:09 GMT+0200 (Central European Standard Time)')).toBe(
        Date.UTC(2026, 10, 29, 7, 20, 9),
      );
      const now = new Date();
      now.setMilliseconds(0);
      expect(parseAuthTs(String(now))).toBe(now.getTime());
    });

    it('rejects what does not parse', () => {
      for (const text of ['', '   ', 'yesterday', 'not a date', '2026-13-45T99:00:00Z']) {
        expect(parseAuthTs(text)).toBeUndefined();
      }
    });
  });

  describe('isWithinWindow', () => {
    const now = 1_700_000_000_000;
    it('accepts the window edges and rejects beyond them on either side', () => {
      expect(isWithinWindow(now, now, 10)).toBe(true);
      expect(isWithinWindow(now - 10_000, now, 10)).toBe(true);
      expect(isWithinWindow(now + 10_000, now, 10)).toBe(true);
      expect(isWithinWindow(now - 10_001, now, 10)).toBe(false);
      expect(isWithinWindow(now + 10_001, now, 10)).toBe(false);
    });
  });

  describe('token computation', () => {
    it("matches OpenHIM's default root user", () => {
      const salt = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';
      expect(hashPassword('sha512', salt, 'openhim-password')).toBe(
        '943a856bba65aad6c639d5c8d4a11fc8bb7fe9de62ae307aec8cf6ae6c1faab722127964c71db4bdd2ea2cdf60c6e4094dcad54d4522ab2839b65ae98100d0fb',
      );
      expect(DEFAULT_ROOT_PASSWORD_HASH).toBe(hashPassword('sha512', salt, 'openhim-password'));
    });

    it('is sha512hex(passwordHash + auth-salt + auth-ts) over the raw strings', () => {
      const stored = { algorithm: 'sha512', hash: sha512('s' + 'pw'), salt: 's' };
      const ts = 'Sun Nov 29 2026 07:20:09 GMT+0000 (Coordinated Universal Time)';
      expect(expectedToken(stored, 'abc', ts)).toBe(sha512(stored.hash + 'abc' + ts));
    });
  });

  describe('safeEqual', () => {
    it('compares exactly, including length and case', () => {
      expect(safeEqual('abc', 'abc')).toBe(true);
      expect(safeEqual('abc', 'abd')).toBe(false);
      expect(safeEqual('abc', 'ABC')).toBe(false);
      expect(safeEqual('abc', 'abcd')).toBe(false);
      expect(safeEqual('', 'a')).toBe(false);
      expect(safeEqual('é', 'e')).toBe(false);
    });
  });

  describe('stored credentials', () => {
    const legacy = { passwordAlgorithm: 'sha512', passwordHash: 'h1', passwordSalt: 's1' };
    const passport = { passwordAlgorithm: 'sha512', passwordHash: 'h2', passwordSalt: 's2' };

    it('takes the token passport over the legacy user fields (OpenHIM ≥ 7.2)', () => {
      expect(selectPasswordFields(legacy, passport)).toBe(passport);
      expect(selectPasswordFields(legacy, null)).toBe(legacy);
    });

    it('never lets a passport with the default root password outlive a password changed on the user', () => {
      const defaultFields = {
        passwordAlgorithm: 'sha512',
        passwordHash: DEFAULT_ROOT_PASSWORD_HASH,
        passwordSalt: 'd',
      };
      expect(selectPasswordFields(legacy, defaultFields)).toBe(legacy);
      expect(selectPasswordFields(defaultFields, passport)).toBe(passport);
      const bothDefault = { ...defaultFields };
      expect(selectPasswordFields(bothDefault, defaultFields)).toBe(defaultFields);
      expect(selectPasswordFields({}, defaultFields)).toBe(defaultFields);
    });

    it('needs hash and salt, and an algorithm we know', () => {
      expect(toStoredPassword(legacy)).toEqual({ algorithm: 'sha512', hash: 'h1', salt: 's1' });
      expect(toStoredPassword({})).toBe('no password set');
      expect(toStoredPassword({ passwordAlgorithm: 'sha512', passwordHash: 'h' })).toBe('no password set');
      expect(toStoredPassword({ ...legacy, passwordAlgorithm: 'md4' })).toBe('unsupported password algorithm');
      expect(toStoredPassword({ ...legacy, passwordAlgorithm: 'bcrypt' })).toBe('unsupported password algorithm');
      expect(toStoredPassword({ ...legacy, passwordAlgorithm: undefined })).toBe('unsupported password algorithm');
    });
  });

  describe('parseBasicAuthorization', () => {
    const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
    it('splits at the first colon', () => {
      expect(parseBasicAuthorization(basic('a@b.org:pa:ss'))).toEqual({ email: 'a@b.org', password: 'pa:ss' });
      expect(parseBasicAuthorization(basic('a@b.org:'))).toEqual({ email: 'a@b.org', password: '' });
    });
    it('rejects other schemes and malformed values', () => {
      expect(parseBasicAuthorization(undefined)).toBeUndefined();
      expect(parseBasicAuthorization('Bearer abc')).toBeUndefined();
      expect(parseBasicAuthorization(basic('no-colon'))).toBeUndefined();
      expect(parseBasicAuthorization(basic(':password'))).toBeUndefined();
      expect(parseBasicAuthorization('Basic !!!')).toBeUndefined();
    });
  });

  describe('exactCaseInsensitive', () => {
    it('matches the whole email in any case, with regex characters taken literally', () => {
      expect(exactCaseInsensitive('Root@OpenHIM.org').test('root@openhim.org')).toBe(true);
      expect(exactCaseInsensitive('root@openhim.org').test('rootXopenhim.org')).toBe(false);
      expect(exactCaseInsensitive('root@openhim.org').test('aroot@openhim.org')).toBe(false);
      expect(exactCaseInsensitive('a+b(c)*[d]$^|\\e?.{1}@x.org').test('A+B(C)*[D]$^|\\E?.{1}@X.ORG')).toBe(true);
      expect(exactCaseInsensitive('.*').test('anything')).toBe(false);
    });
  });
});

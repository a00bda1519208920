import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The pure parts of OpenHIM's credential checks: no I/O, no clock reads (the caller passes `now`).
 */

/** OpenHIM stores `sha512`; the other SHA-2 digests cost nothing to allow. Anything else is a 401. */
export const SUPPORTED_PASSWORD_ALGORITHMS: readonly string[] = ['sha512', 'sha384', 'sha256'];

/** The sha fields a user or token passport carries. */
export interface PasswordFields {
  passwordAlgorithm?: string;
  passwordHash?: string;
  passwordSalt?: string;
}

/** Usable credentials: all three fields present and the algorithm one we support. */
export interface StoredPassword {
  algorithm: string;
  hash: string;
  salt: string;
}

export type StoredPasswordProblem = 'no password set' | 'unsupported password algorithm';

/** sha512hex of OpenHIM's default root salt + `openhim-password`. */
export const DEFAULT_ROOT_PASSWORD_HASH =
  '943a856bba65aad6c639d5c8d4a11fc8bb7fe9de62ae307aec8cf6ae6c1faab722127964c71db4bdd2ea2cdf60c6e4094dcad54d4522ab2839b65ae98100d0fb';

/**
 * OpenHIM ≥ 7.2 keeps the sha fields in the `token` passport and authenticates only through it;
 * older releases keep them on the user. A passport, when there is one, wins, with one exception:
 * a passport still holding the default root password never outlives a password changed on the
 * user (an OpenHIM < 7.2 updates only the user, and the passport may be the one we created).
 */
export function selectPasswordFields(
  user: PasswordFields,
  tokenPassport: PasswordFields | null | undefined,
): PasswordFields {
  if (!tokenPassport) return user;
  const staleDefault =
    tokenPassport.passwordHash === DEFAULT_ROOT_PASSWORD_HASH &&
    isNonEmptyString(user.passwordHash) &&
    user.passwordHash !== DEFAULT_ROOT_PASSWORD_HASH;
  return staleDefault ? user : tokenPassport;
}

export function toStoredPassword(fields: PasswordFields): StoredPassword | StoredPasswordProblem {
  const { passwordAlgorithm, passwordHash, passwordSalt } = fields;
  if (!isNonEmptyString(passwordHash) || !isNonEmptyString(passwordSalt)) return 'no password set';
  if (!isNonEmptyString(passwordAlgorithm) || !SUPPORTED_PASSWORD_ALGORITHMS.includes(passwordAlgorithm)) {
    return 'unsupported password algorithm';
  }
  return { algorithm: passwordAlgorithm, hash: passwordHash, salt: passwordSalt };
}

export function hexDigest(algorithm: string, ...parts: string[]): string {
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

/** OpenHIM's stored hash: hex(algorithm(salt + password)). */
export function hashPassword(algorithm: string, salt: string, password: string): string {
  return hexDigest(algorithm, salt, password);
}

/** The token the clients send: hex(algorithm(passwordHash + auth-salt + auth-ts)), over the raw header strings. */
export function expectedToken(stored: StoredPassword, authSalt: string, authTs: string): string {
  return hexDigest(stored.algorithm, stored.hash, authSalt, authTs);
}

/** Constant-time string equality (the time does not depend on where the strings differ). */
export function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  if (a.length !== b.length) {
    // Still spend the comparison so a wrong length is not measurably faster.
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

/**
 * `auth-ts` as real clients send it: ISO 8601 (the console, the bash client) or
 * `Date.prototype.toString()` (the docs' Node client passes a Date object as the header value).
 * Returns epoch milliseconds, or undefined when it does not parse (OpenHIM then skipped the time check).
 */
export function parseAuthTs(raw: string): number | undefined {
  const text = raw.trim();
  if (!text) return undefined;
  const time = new Date(text).getTime();
  return Number.isNaN(time) ? undefined : time;
}

export function isWithinWindow(time: number, now: number, windowSeconds: number): boolean {
  return Math.abs(time - now) <= windowSeconds * 1000;
}

/** `Authorization: Basic base64(email:password)`; the password may contain ':'. */
export function parseBasicAuthorization(header: string | undefined): { email: string; password: string } | undefined {
  if (!header) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { email: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** A case-insensitive, anchored, literal match (OpenHIM's caseInsensitiveRegex, with escaping). */
export function exactCaseInsensitive(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}$`, 'i');
}

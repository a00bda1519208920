import { Injectable } from '@nestjs/common';
import bcrypt from 'bcryptjs';
import { createHash } from 'node:crypto';
import { hashPassword, safeEqual } from './credentials';
import type { UserCredentials } from './credentials.service';
import { ExpiringCache } from './expiring-cache';

/** A bcrypt hash (cost 10) of nothing anyone knows: unknown users cost as much as known ones. */
const DUMMY_BCRYPT_HASH = '$2b$10$jGeke0C09ls9EqHtNvYLFug3go2aZhliiGEdUWhQI9p96TktxJiJW';
/**
 * bcrypt costs ~60 ms of CPU per check, so scripts using Basic would be bound by it: a successful
 * check is remembered by (hash, password), which a password change (a new hash) invalidates.
 */
const VERIFIED_TTL_MS = 10 * 60_000;

export type PasswordCheck = { ok: true } | { ok: false; reason: string };

/**
 * The password of Basic and of the session login (`POST /authenticate/local`), as OpenHIM checks it:
 * OpenHIM 8 reads the passport of the user's `provider` — `local` (a bcrypt hash) unless the
 * provider is `token` (the sha fields); releases before 8 have no provider and only the sha fields,
 * so a user without a provider is checked against the sha fields when it has them.
 */
@Injectable()
export class PasswordVerifier {
  private readonly verified = new ExpiringCache<boolean>(VERIFIED_TTL_MS);

  async verify(user: UserCredentials, password: string): Promise<PasswordCheck> {
    const useBcrypt =
      user.provider === 'local' ||
      (user.provider !== 'token' && typeof user.password === 'string' && !!user.bcryptHash);
    if (useBcrypt) {
      if (!user.bcryptHash) return { ok: false, reason: 'no local passport' };
      return (await this.bcryptMatches(user.bcryptHash, password))
        ? { ok: true }
        : { ok: false, reason: 'wrong password' };
    }
    if (typeof user.password === 'string') return { ok: false, reason: user.password };
    const { algorithm, salt, hash } = user.password;
    return safeEqual(hashPassword(algorithm, salt, password), hash)
      ? { ok: true }
      : { ok: false, reason: 'wrong password' };
  }

  /** Spends a bcrypt check for a user that does not exist, so the answer time does not tell. */
  async spendForUnknownUser(password: string): Promise<void> {
    await this.bcryptMatches(DUMMY_BCRYPT_HASH, password);
  }

  private bcryptMatches(hash: string, password: string): Promise<boolean> {
    const key = createHash('sha256').update(hash).update('\0').update(password).digest('base64');
    return this.verified.get(key, () => bcrypt.compare(password, hash).catch(() => false));
  }
}

import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { selectPasswordFields, StoredPassword, StoredPasswordProblem, toStoredPassword } from './credentials';
import { CredentialsRepository } from './credentials.repository';
import { ExpiringCache } from './expiring-cache';

/** What authentication needs to know about one user. */
export interface UserCredentials {
  /** As stored (the request may have used another case). */
  email: string;
  groups: string[];
  /** The salt handed out by GET /authenticate (the token passport's, else the user's). */
  salt?: string;
  /** The sha credentials of the token scheme (the token passport's, else the user's legacy fields). */
  password: StoredPassword | StoredPasswordProblem;
  /** OpenHIM 8's `local` passport: a bcrypt hash, checked by Basic and the session login. */
  bcryptHash?: string;
  /** OpenHIM 8's `provider` (`local` or `token`); absent before 8. */
  provider?: string;
}

/**
 * Resolves an email to its credentials: the `users` document plus, when present, its `token`
 * passport. Results (including "no such user") are cached per email for `AUTH_CACHE_MS`, so a
 * changed password or group takes effect within that time; a login (GET /authenticate) always reads
 * afresh and refreshes the entry.
 */
@Injectable()
export class CredentialsService {
  private readonly cache: ExpiringCache<UserCredentials | null>;

  constructor(
    private readonly repository: CredentialsRepository,
    config: AppConfig,
  ) {
    this.cache = new ExpiringCache(config.AUTH_CACHE_MS);
  }

  find(email: string): Promise<UserCredentials | null> {
    return this.cache.get(email, () => this.load(email));
  }

  findFresh(email: string): Promise<UserCredentials | null> {
    return this.cache.refresh(email, () => this.load(email));
  }

  private async load(email: string): Promise<UserCredentials | null> {
    // The passport read runs alongside the user read; it is redone only when the stored email differs.
    const [user, passportsByRequestedEmail] = await Promise.all([
      this.repository.findUser(email),
      this.repository.findPassports(email),
    ]);
    if (!user) return null;
    const passports =
      user.email === email ? passportsByRequestedEmail : await this.repository.findPassports(user.email);
    const fields = selectPasswordFields(
      user,
      passports.find((passport) => passport.protocol === 'token'),
    );
    const bcryptHash = passports.find((passport) => passport.protocol === 'local')?.password;
    return {
      email: user.email,
      groups: Array.isArray(user.groups) ? user.groups.filter((group) => typeof group === 'string') : [],
      salt: typeof fields.passwordSalt === 'string' && fields.passwordSalt ? fields.passwordSalt : undefined,
      password: toStoredPassword(fields),
      ...(typeof bcryptHash === 'string' && bcryptHash ? { bcryptHash } : {}),
      ...(typeof user.provider === 'string' ? { provider: user.provider } : {}),
    };
  }
}

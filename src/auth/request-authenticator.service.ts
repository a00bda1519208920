import { Injectable } from '@nestjs/common';
import { AppConfig, AuthType } from '../config/app-config';
import type { AuthenticatedUser } from './authenticated-user';
import {
  expectedToken,
  hashPassword,
  isNonEmptyString,
  isWithinWindow,
  parseAuthTs,
  parseBasicAuthorization,
  safeEqual,
} from './credentials';
import { CredentialsService, UserCredentials } from './credentials.service';

export const ADMIN_GROUP = 'admin';

export type AuthenticationResult =
  | { ok: true; user: AuthenticatedUser; scheme: AuthType }
  /** `email` is what the client claimed (for the log); `reason` is never sent to the client. */
  | { ok: false; email?: string; reason: string };

type RequestHeaders = Record<string, string | string[] | undefined>;

const TOKEN_HEADERS = ['auth-username', 'auth-ts', 'auth-salt', 'auth-token'] as const;

export function toAuthenticatedUser(credentials: Pick<UserCredentials, 'email' | 'groups'>): AuthenticatedUser {
  return { email: credentials.email, groups: credentials.groups, isAdmin: credentials.groups.includes(ADMIN_GROUP) };
}

/** Verifies one request's credentials with the schemes enabled by `AUTH_TYPES`. */
@Injectable()
export class RequestAuthenticator {
  private readonly types: ReadonlySet<AuthType>;

  constructor(
    private readonly credentials: CredentialsService,
    private readonly config: AppConfig,
  ) {
    this.types = new Set(config.AUTH_TYPES);
  }

  async authenticate(headers: RequestHeaders, now = Date.now()): Promise<AuthenticationResult> {
    const hasToken = TOKEN_HEADERS.some((name) => headers[name] !== undefined);
    const authorization = header(headers, 'authorization');
    const hasBasic = authorization !== undefined && /^basic(\s|$)/i.test(authorization);

    const failures: Array<Extract<AuthenticationResult, { ok: false }>> = [];
    if (hasToken) {
      const result = this.types.has('token')
        ? await this.verifyToken(headers, now)
        : { ok: false as const, email: header(headers, 'auth-username'), reason: 'token authentication is disabled' };
      if (result.ok) return result;
      failures.push(result);
    }
    if (hasBasic) {
      const result = this.types.has('basic')
        ? await this.verifyBasic(authorization)
        : { ok: false as const, reason: 'basic authentication is disabled' };
      if (result.ok) return result;
      failures.push(result);
    }
    if (!failures.length) return { ok: false, reason: 'no credentials' };
    return {
      ok: false,
      email: failures.find((failure) => failure.email)?.email,
      reason: failures.map((failure) => failure.reason).join('; '),
    };
  }

  private async verifyToken(headers: RequestHeaders, now: number): Promise<AuthenticationResult> {
    const [email, ts, salt, token] = TOKEN_HEADERS.map((name) => header(headers, name));
    const missing = TOKEN_HEADERS.filter((_, index) => !isNonEmptyString([email, ts, salt, token][index]));
    if (missing.length) return { ok: false, email, reason: `missing or empty ${missing.join(', ')}` };

    const time = parseAuthTs(ts!);
    if (time === undefined) return { ok: false, email, reason: 'auth-ts does not parse as a date' };
    if (!isWithinWindow(time, now, this.config.AUTH_WINDOW_SECONDS)) {
      return { ok: false, email, reason: `auth-ts is ${Math.round((time - now) / 1000)} s off the server clock` };
    }

    const user = await this.credentials.find(email!);
    if (!user) return { ok: false, email, reason: 'unknown user' };
    if (typeof user.password === 'string') return { ok: false, email, reason: user.password };
    if (!safeEqual(token!, expectedToken(user.password, salt!, ts!))) {
      return { ok: false, email, reason: 'token does not match' };
    }
    return { ok: true, user: toAuthenticatedUser(user), scheme: 'token' };
  }

  private async verifyBasic(authorization: string | undefined): Promise<AuthenticationResult> {
    const basic = parseBasicAuthorization(authorization);
    if (!basic) return { ok: false, reason: 'malformed Basic credentials' };
    const { email, password } = basic;
    const user = await this.credentials.find(email);
    if (!user) return { ok: false, email, reason: 'unknown user' };
    if (typeof user.password === 'string') return { ok: false, email, reason: user.password };
    const { algorithm, salt, hash } = user.password;
    if (!safeEqual(hashPassword(algorithm, salt, password), hash)) {
      return { ok: false, email, reason: 'wrong password' };
    }
    return { ok: true, user: toAuthenticatedUser(user), scheme: 'basic' };
  }
}

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

import { Injectable } from '@nestjs/common';
import { AppConfig, AuthType } from '../config/app-config';
import { AuthenticatedUser, toAuthenticatedUser } from './authenticated-user';
import {
  expectedToken,
  isNonEmptyString,
  isWithinWindow,
  parseAuthTs,
  parseBasicAuthorization,
  safeEqual,
} from './credentials';
import { CredentialsService } from './credentials.service';
import { PasswordVerifier } from './password-verifier';
import { SessionService } from './session/session.service';

export type AuthScheme = AuthType | 'session';

export type AuthenticationResult =
  | { ok: true; user: AuthenticatedUser; scheme: AuthScheme }
  /**
   * `email` is what the client claimed (for the log); `reason` is never sent to the client;
   * `counts` is false when nothing was guessed (no credentials, a session that ended).
   */
  | { ok: false; email?: string; reason: string; counts: boolean };

type Failure = Extract<AuthenticationResult, { ok: false }>;
type RequestHeaders = Record<string, string | string[] | undefined>;

const TOKEN_HEADERS = ['auth-username', 'auth-ts', 'auth-salt', 'auth-token'] as const;

/**
 * Verifies one request's credentials in OpenHIM core 8's order: its session cookie first (when
 * OPENHIM_SESSION_KEY is set), then the token headers (any `auth-*` header), then Basic — the last
 * two as `AUTH_TYPES` allows; a request carrying both token headers and Basic passes with either.
 */
@Injectable()
export class RequestAuthenticator {
  private readonly types: ReadonlySet<AuthType>;

  constructor(
    private readonly credentials: CredentialsService,
    private readonly config: AppConfig,
    private readonly passwords: PasswordVerifier,
    private readonly sessions: SessionService,
  ) {
    this.types = new Set(config.AUTH_TYPES);
  }

  async authenticate(headers: RequestHeaders, now = Date.now()): Promise<AuthenticationResult> {
    const failures: Failure[] = [];
    const session = await this.sessions.check(header(headers, 'cookie'), now);
    if (session.kind === 'ok') return { ok: true, user: session.user, scheme: 'session' };
    if (session.kind === 'failed') failures.push({ ok: false, ...session });

    const hasToken = Object.keys(headers).some((name) => name.startsWith('auth-'));
    const authorization = header(headers, 'authorization');
    const hasBasic = authorization !== undefined && /^basic(\s|$)/i.test(authorization);
    if (hasToken) {
      const result = this.types.has('token')
        ? await this.verifyToken(headers, now)
        : failure('token authentication is disabled', header(headers, 'auth-username'));
      if (result.ok) return result;
      failures.push(result);
    }
    if (hasBasic) {
      const result = this.types.has('basic')
        ? await this.verifyBasic(authorization)
        : failure('basic authentication is disabled');
      if (result.ok) return result;
      failures.push(result);
    }
    if (!failures.length) return { ok: false, reason: 'no credentials', counts: false };
    return {
      ok: false,
      email: failures.find((item) => item.email)?.email,
      reason: failures.map((item) => item.reason).join('; '),
      counts: failures.some((item) => item.counts),
    };
  }

  private async verifyToken(headers: RequestHeaders, now: number): Promise<AuthenticationResult> {
    const [email, ts, salt, token] = TOKEN_HEADERS.map((name) => header(headers, name));
    const missing = TOKEN_HEADERS.filter((_, index) => !isNonEmptyString([email, ts, salt, token][index]));
    if (missing.length) return failure(`missing or empty ${missing.join(', ')}`, email);
    const time = parseAuthTs(ts!);
    if (time === undefined) return failure('auth-ts does not parse as a date', email);
    if (!isWithinWindow(time, now, this.config.AUTH_WINDOW_SECONDS)) {
      return failure(`auth-ts is ${Math.round((time - now) / 1000)} s off the server clock`, email);
    }
    const user = await this.credentials.find(email!);
    if (!user) return failure('unknown user', email);
    if (typeof user.password === 'string') return failure(user.password, email);
    if (!safeEqual(token!, expectedToken(user.password, salt!, ts!))) return failure('token does not match', email);
    return { ok: true, user: toAuthenticatedUser(user), scheme: 'token' };
  }

  private async verifyBasic(authorization: string | undefined): Promise<AuthenticationResult> {
    const basic = parseBasicAuthorization(authorization);
    if (!basic) return failure('malformed Basic credentials');
    const result = await this.verifyPassword(basic.email, basic.password);
    return result.ok ? { ok: true, user: result.user, scheme: 'basic' } : result;
  }

  /** An email and password, as Basic and the session login (`POST /authenticate/local`) check them. */
  async verifyPassword(
    email: string,
    password: string,
  ): Promise<{ ok: true; user: AuthenticatedUser; email: string } | Failure> {
    const user = await this.credentials.find(email);
    if (!user) {
      await this.passwords.spendForUnknownUser(password);
      return failure('unknown user', email);
    }
    const check = await this.passwords.verify(user, password);
    if (!check.ok) return failure(check.reason, email);
    return { ok: true, user: toAuthenticatedUser(user), email: user.email };
  }
}

function failure(reason: string, email?: string): Failure {
  return { ok: false, reason, counts: true, ...(email !== undefined ? { email } : {}) };
}

function header(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

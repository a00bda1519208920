import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AppConfig } from '../../config/app-config';
import { AuthenticatedUser, toAuthenticatedUser } from '../authenticated-user';
import { CredentialsRepository, PublicUser } from '../credentials.repository';
import { SessionCookies } from './session-cookies';
import { SessionsRepository } from './sessions.repository';

export type SessionCheck =
  /** No session cookie (or sessions are off): other schemes decide. */
  | { kind: 'none' }
  | { kind: 'ok'; user: AuthenticatedUser; profile: PublicUser; sessionId: string }
  /** `counts`: a guess (a forged signature), as opposed to a session that ended. */
  | { kind: 'failed'; reason: string; email?: string; counts: boolean };

/**
 * OpenHIM core 8's sessions (koa-session in MongoDB, passport's user = the email): a request's
 * session cookie is checked as core checks it, at request time — signature, the `sessions`
 * document, its `_expire`, then the user by exact email — so a logout or a group change at core
 * applies here at once. On only when OPENHIM_SESSION_KEY is set.
 */
@Injectable()
export class SessionService {
  private readonly cookies?: SessionCookies;

  constructor(
    private readonly config: AppConfig,
    private readonly sessions: SessionsRepository,
    private readonly users: CredentialsRepository,
  ) {
    if (config.OPENHIM_SESSION_KEY?.length) {
      this.cookies = new SessionCookies(config.OPENHIM_SESSION_KEY, {
        maxAgeMs: config.OPENHIM_SESSION_MAX_AGE_MS,
        secure: config.OPENHIM_SESSION_SECURE_COOKIE,
      });
    }
  }

  get enabled(): boolean {
    return this.cookies !== undefined;
  }

  async check(cookieHeader: string | undefined, now = Date.now()): Promise<SessionCheck> {
    const id = this.signedId(cookieHeader);
    if (id === undefined) return { kind: 'none' };
    if (id === null) return { kind: 'failed', reason: 'session cookie with a forged signature', counts: true };
    const data = await this.sessions.find(id);
    if (!data) return { kind: 'failed', reason: 'unknown or ended session', counts: false };
    if (typeof data._expire !== 'number' || data._expire <= now) {
      return { kind: 'failed', reason: 'expired session', counts: false };
    }
    const email = data.passport?.user;
    if (typeof email !== 'string' || !email) return { kind: 'failed', reason: 'session without a user', counts: false };
    const profile = await this.users.findPublicUserByExactEmail(email);
    if (!profile) return { kind: 'failed', reason: "the session's user no longer exists", email, counts: false };
    return {
      kind: 'ok',
      user: toAuthenticatedUser({ email: profile.email, groups: stringGroups(profile.groups) }),
      profile,
      sessionId: id,
    };
  }

  /**
   * The session id of a correctly signed cookie; null for a forged signature; undefined when there
   * is no session cookie or sessions are off.
   */
  signedId(cookieHeader: string | undefined): string | null | undefined {
    const cookie = this.cookies?.read(cookieHeader) ?? { kind: 'none' as const };
    if (cookie.kind === 'none') return undefined;
    return cookie.kind === 'signed' ? cookie.id : null;
  }

  /**
   * A new session for the user of `email` as stored (core's login: always a new id): its
   * `Set-Cookie` values and the user as the login answer shows it.
   */
  async start(email: string, now = Date.now()): Promise<{ cookies: string[]; profile: PublicUser | null }> {
    const cookies = this.required();
    const id = randomUUID();
    const [profile] = await Promise.all([
      this.users.findPublicUserByExactEmail(email),
      this.sessions.create(id, email, this.config.OPENHIM_SESSION_MAX_AGE_MS, now),
    ]);
    return { cookies: cookies.issue(id, now), profile };
  }

  /** Ends the session of `id` (when there is one); returns the `Set-Cookie` values that clear it. */
  async end(id: string | undefined): Promise<string[]> {
    if (id) await this.sessions.destroy(id);
    return this.required().expire();
  }

  private required(): SessionCookies {
    if (!this.cookies) throw new Error('Sessions are off: OPENHIM_SESSION_KEY is not set');
    return this.cookies;
  }
}

function stringGroups(groups: unknown): string[] {
  return Array.isArray(groups) ? groups.filter((group): group is string => typeof group === 'string') : [];
}

import { Injectable, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { AuthenticatedUser } from './authenticated-user';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { clientIp, TOO_MANY_REQUESTS_BODY, UNAUTHORIZED_BODY } from './refusals';
import { RequestAuthenticator } from './request-authenticator.service';

export type AccessDecision =
  | { ok: true; user: AuthenticatedUser }
  | { ok: false; status: 401 | 403 | 429 | 503; body: string; headers: Record<string, string> };

/**
 * Admin-only access for what is not a Nest route guarded by the global AuthGuard (the Bull Board
 * mount) or is public unless configured otherwise (/metrics): the same OpenHIM credentials (token
 * headers or Basic, as AUTH_TYPES allows), the same failed-attempt limit per client IP, and the
 * `admin` group. Unlike the API, a 401 asks for Basic credentials (`WWW-Authenticate`) so a browser
 * prompts for them.
 */
@Injectable()
export class AdminAccess {
  private readonly logger = new Logger('Authentication');

  constructor(
    private readonly authenticator: RequestAuthenticator,
    private readonly limiter: FailedAuthLimiter,
  ) {}

  async check(request: Request, realm: string): Promise<AccessDecision> {
    const challenge = { 'WWW-Authenticate': `Basic realm="${realm}", charset="UTF-8"` };
    const ip = clientIp(request);
    const blockedFor = this.limiter.blockedFor(ip);
    if (blockedFor > 0) {
      return { ok: false, status: 429, body: TOO_MANY_REQUESTS_BODY, headers: { 'Retry-After': String(blockedFor) } };
    }
    let result: Awaited<ReturnType<RequestAuthenticator['authenticate']>>;
    try {
      result = await this.authenticator.authenticate(request.headers);
    } catch (error) {
      this.logger.error(`Could not verify credentials: ${(error as Error).message}`);
      return { ok: false, status: 503, body: 'Authentication is temporarily unavailable', headers: {} };
    }
    if (!result.ok) {
      // No credentials at all is a browser's first request, not an attack: only guesses count.
      if (result.counts) {
        this.logger.warn(
          `Authentication failed for ${JSON.stringify(result.email ?? '(none)')} from ${ip} on ${request.method} ${JSON.stringify(request.originalUrl.slice(0, 200))}: ${result.reason}`,
        );
        const nowBlockedFor = await this.limiter.recordFailure(ip);
        if (nowBlockedFor > 0) {
          return {
            ok: false,
            status: 429,
            body: TOO_MANY_REQUESTS_BODY,
            headers: { 'Retry-After': String(nowBlockedFor) },
          };
        }
      }
      return { ok: false, status: 401, body: UNAUTHORIZED_BODY, headers: challenge };
    }
    if (!result.user.isAdmin) {
      return {
        ok: false,
        status: 403,
        body: `User ${result.user.email} is not an admin, access to ${realm} denied.`,
        headers: {},
      };
    }
    return { ok: true, user: result.user };
  }

  /** Writes a refusal as the API does: text/plain. */
  static refuse(response: Response, decision: Extract<AccessDecision, { ok: false }>): void {
    response.status(decision.status).set(decision.headers).type('text/plain').send(decision.body);
  }
}

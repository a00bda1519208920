import { CanActivate, ExecutionContext, HttpException, HttpStatus, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { IS_PUBLIC_KEY } from '../common/decorators/public.decorator';
import { ADMIN_ONLY_KEY, AdminOperation } from './auth.decorators';
import type { AuthenticatedUser } from './authenticated-user';
import { AppConfig } from '../config/app-config';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { clientIp, tooManyRequests, UNAUTHORIZED_BODY } from './refusals';
import { RequestAuthenticator } from './request-authenticator.service';
import { sessionOriginRefusal } from './session/session-origin';

/**
 * The global guard: every route not marked `@Public()` needs OpenHIM credentials (core's session
 * cookie, token headers or Basic). Any failure is a 401 with the body `Unauthorized` and nothing else;
 * the reason goes to the log only. A session cookie changes nothing from an origin CORS_ORIGINS does
 * not list (403). `@Auth({adminOnly})` routes are then limited to the admin group.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger('Authentication');

  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: RequestAuthenticator,
    private readonly limiter: FailedAuthLimiter,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC_KEY, targets)) return true;

    const http = context.switchToHttp();
    const request = http.getRequest<Request & { user?: AuthenticatedUser }>();
    const response = http.getResponse<Response>();
    const ip = clientIp(request);

    const blockedFor = this.limiter.blockedFor(ip);
    if (blockedFor > 0) throw tooManyRequests(response, blockedFor);

    const result = await this.authenticator.authenticate(request.headers).catch((error: unknown) => {
      this.logger.error(`Could not verify credentials: ${(error as Error).message}`, (error as Error).stack);
      throw new HttpException('Authentication is temporarily unavailable', HttpStatus.SERVICE_UNAVAILABLE);
    });

    if (!result.ok) {
      this.logger.warn(
        `Authentication failed for ${printable(result.email)} from ${ip} on ${request.method} ${printable(request.path)}: ${result.reason}`,
      );
      const nowBlockedFor = result.counts ? await this.limiter.recordFailure(ip) : 0;
      if (nowBlockedFor > 0) {
        this.logger.warn(`Too many failed authentications from ${ip}: blocked for ${nowBlockedFor} s`);
        throw tooManyRequests(response, nowBlockedFor);
      }
      throw new HttpException(UNAUTHORIZED_BODY, HttpStatus.UNAUTHORIZED);
    }

    if (result.scheme === 'session') {
      const refusal = sessionOriginRefusal(request, this.config.CORS_ORIGINS);
      if (refusal) {
        this.logger.warn(
          `Refused ${request.method} ${printable(request.path)} of ${result.user.email} from ${ip}: ${refusal}`,
        );
        throw new HttpException(refusal, HttpStatus.FORBIDDEN);
      }
    }
    request.user = result.user;
    const adminOnly = this.reflector.getAllAndOverride<AdminOperation | undefined>(ADMIN_ONLY_KEY, targets);
    if (adminOnly && !result.user.isAdmin) {
      throw new HttpException(
        `User ${result.user.email} is not an admin, API access to ${adminOnly} denied.`,
        HttpStatus.FORBIDDEN,
      );
    }
    return true;
  }
}

/** Client-supplied text in a log line: quoted, escaped, bounded. */
function printable(text: string | undefined): string {
  if (text === undefined) return '(none)';
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

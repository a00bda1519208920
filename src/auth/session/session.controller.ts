import { Body, Controller, Get, HttpCode, HttpException, HttpStatus, Logger, Post, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '../../common/decorators/public.decorator';
import { DATABASE_UNAVAILABLE } from '../../common/filters/global-exception.filter';
import { Auth } from '../auth.decorators';
import { clientIp, tooManyRequests, UNAUTHORIZED_BODY } from '../refusals';
import type { PublicUser } from '../credentials.repository';
import { FailedAuthLimiter } from '../failed-auth-limiter';
import { RequestAuthenticator } from '../request-authenticator.service';
import { SessionService } from './session.service';

export const LOGIN_SUCCEEDED = 'User authenticated successfully';
export const NOT_AUTHENTICATED = 'Not authenticated';
export const SESSIONS_OFF = 'Session login is not enabled on this service (OPENHIM_SESSION_KEY is not set)';

/**
 * OpenHIM core 8's session endpoints, with its bodies, status codes and cookies. Sessions made here
 * are core's (same `sessions` documents, same signed cookies), so either side accepts them and a
 * logout on either side ends them on both.
 */
@ApiTags('authentication')
@Controller()
export class SessionController {
  private readonly logger = new Logger('Authentication');

  constructor(
    private readonly sessions: SessionService,
    private readonly authenticator: RequestAuthenticator,
    private readonly limiter: FailedAuthLimiter,
  ) {}

  @Post('authenticate/local')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: "Log in as OpenHIM 8's console does: a session cookie (koa.sess + koa.sess.sig)",
    description:
      'Checks the password as OpenHIM 8 does (bcrypt `local` passport, or the sha fields of users without one). ' +
      'Always a new session; the one the request carried, if any, ends. Needs OPENHIM_SESSION_KEY.',
  })
  @ApiBody({
    schema: {
      type: 'object',
      properties: { username: { type: 'string' }, password: { type: 'string' } },
      required: ['username', 'password'],
    },
    examples: { root: { value: { username: 'root@openhim.org', password: 'openhim-password' } } },
  })
  @ApiOkResponse({ description: `JSON {"result":"${LOGIN_SUCCEEDED}","user":{...}} and the session cookies` })
  @ApiBadRequestResponse({
    description: 'text/plain `Bad Request`: username or password missing; or `Malformed JSON body: ...`',
  })
  @ApiUnauthorizedResponse({ description: 'text/plain `Unauthorized`' })
  @ApiNotFoundResponse({ description: `text/plain \`${SESSIONS_OFF}\`` })
  @ApiPayloadTooLargeResponse({
    description: 'text/plain `Request body too large`: the body is larger than BODY_LIMIT',
  })
  @ApiUnsupportedMediaTypeResponse({
    description: 'text/plain: a JSON body in a charset or Content-Encoding that cannot be read (e.g. charset=latin1)',
  })
  @ApiTooManyRequestsResponse({
    description: 'text/plain `Too Many Requests`, with Retry-After (too many failed authentications from this IP)',
  })
  @ApiServiceUnavailableResponse({ description: `text/plain \`${DATABASE_UNAVAILABLE}\`, with Retry-After` })
  async login(@Body() body: unknown, @Req() request: Request, @Res() response: Response): Promise<void> {
    if (!this.sessions.enabled) throw new HttpException(SESSIONS_OFF, HttpStatus.NOT_FOUND);
    const ip = clientIp(request);
    const blockedFor = this.limiter.blockedFor(ip);
    if (blockedFor > 0) throw tooManyRequests(response, blockedFor);
    const { username, password } = (body ?? {}) as { username?: unknown; password?: unknown };
    // passport-local: both fields must be non-empty strings, else 400.
    if (typeof username !== 'string' || !username || typeof password !== 'string' || !password) {
      throw new HttpException('Bad Request', HttpStatus.BAD_REQUEST);
    }
    const result = await this.authenticator.verifyPassword(username, password);
    if (!result.ok) {
      this.logger.warn(`Login failed for ${JSON.stringify(username.slice(0, 200))} from ${ip}: ${result.reason}`);
      const nowBlockedFor = await this.limiter.recordFailure(ip);
      if (nowBlockedFor > 0) throw tooManyRequests(response, nowBlockedFor);
      throw new HttpException(UNAUTHORIZED_BODY, HttpStatus.UNAUTHORIZED);
    }
    const previous = this.sessions.signedId(request.headers.cookie);
    const [{ cookies, profile }] = await Promise.all([
      this.sessions.start(result.email),
      previous ? this.sessions.end(previous) : undefined,
    ]);
    this.logger.log(`User ${result.email} logged in from ${ip}`);
    response.status(200).append('Set-Cookie', cookies).json({ result: LOGIN_SUCCEEDED, user: profile });
  }

  @Get('me')
  @Public()
  @ApiOperation({ summary: "The session's user (OpenHIM 8's console asks it at start)" })
  @ApiOkResponse({ description: 'JSON {"user":{...}} (never password fields)' })
  @ApiNotFoundResponse({ description: `text/plain \`${NOT_AUTHENTICATED}\`` })
  @ApiServiceUnavailableResponse({ description: `text/plain \`${DATABASE_UNAVAILABLE}\`, with Retry-After` })
  async me(@Req() request: Request): Promise<{ user: PublicUser }> {
    const session = await this.sessions.check(request.headers.cookie);
    if (session.kind !== 'ok') throw new HttpException(NOT_AUTHENTICATED, HttpStatus.NOT_FOUND);
    return { user: session.profile };
  }

  @Get('logout')
  @Auth()
  @ApiOperation({ summary: 'End the session: its document is deleted (at core too) and the cookies expire' })
  @ApiOkResponse({ description: 'text/plain `OK`' })
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    if (this.sessions.enabled) {
      response.append(
        'Set-Cookie',
        await this.sessions.end(this.sessions.signedId(request.headers.cookie) ?? undefined),
      );
    }
    response.status(200).type('text/plain').send('OK');
  }
}

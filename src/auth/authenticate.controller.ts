import { Controller, Get, HttpException, HttpStatus, Logger, Param, Req, Res } from '@nestjs/common';
import {
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
} from '@nestjs/swagger';
import { DATABASE_UNAVAILABLE } from '../common/filters/global-exception.filter';
import type { Request, Response } from 'express';
import { Public } from '../common/decorators/public.decorator';
import { clientIp, tooManyRequests } from './refusals';
import { CredentialsService } from './credentials.service';
import { FailedAuthLimiter } from './failed-auth-limiter';

@ApiTags('authentication')
@Controller('authenticate')
export class AuthenticateController {
  private readonly logger = new Logger('Authentication');

  constructor(
    private readonly credentials: CredentialsService,
    private readonly limiter: FailedAuthLimiter,
  ) {}

  @Get(':email')
  @Public()
  @ApiOperation({
    summary: "The user's salt and the server time, to compute the token headers",
    description:
      'auth-token = sha512hex(sha512hex(salt + password) + auth-salt + auth-ts). The documented clients call it ' +
      'before every request: known users are never limited; unknown emails count as failed authentications ' +
      '(AUTH_FAILURE_LIMIT per client IP per minute, then 429).',
  })
  @ApiOkResponse({ description: 'Compact JSON `{"salt":"...","ts":"<ISO 8601>"}`' })
  @ApiNotFoundResponse({ description: 'text/plain `Could not find user by email <email>`' })
  @ApiTooManyRequestsResponse({
    description: 'text/plain `Too Many Requests`, with Retry-After (too many failed authentications from this IP)',
  })
  @ApiServiceUnavailableResponse({ description: `text/plain \`${DATABASE_UNAVAILABLE}\`, with Retry-After` })
  async authenticate(@Param('email') email: string, @Req() request: Request, @Res() response: Response): Promise<void> {
    const ip = clientIp(request);
    const blockedFor = this.limiter.blockedFor(ip);
    if (blockedFor > 0) throw tooManyRequests(response, blockedFor);
    const user = await this.credentials.findFresh(email);
    // A user without token credentials cannot log in either; answer as OpenHIM does for no user.
    if (!user?.salt) {
      // Guessing emails is what a limit must slow down; asking again for a known one is what the clients do.
      this.logger.warn(`Salt requested for unknown user ${JSON.stringify(email.slice(0, 200))} from ${ip}`);
      const nowBlockedFor = await this.limiter.recordFailure(ip);
      if (nowBlockedFor > 0) throw tooManyRequests(response, nowBlockedFor);
      throw new HttpException(`Could not find user by email ${email}`, HttpStatus.NOT_FOUND);
    }
    // Compact on purpose: the docs' bash client regex-parses `"salt":"`.
    response
      .status(HttpStatus.OK)
      .type('application/json')
      .send(JSON.stringify({ salt: user.salt, ts: new Date().toISOString() }));
  }
}

import { Controller, Get, HttpException, HttpStatus, Param, Res, UseGuards } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags, ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { ThrottlerGuard } from '@nestjs/throttler';
import type { Response } from 'express';
import { Public } from '../common/decorators/public.decorator';
import { CredentialsService } from './credentials.service';

@ApiTags('authentication')
@Controller('authenticate')
export class AuthenticateController {
  constructor(private readonly credentials: CredentialsService) {}

  @Get(':email')
  @Public()
  @UseGuards(ThrottlerGuard)
  @ApiOperation({
    summary: "The user's salt and the server time, to compute the token headers",
    description:
      'auth-token = sha512hex(sha512hex(salt + password) + auth-salt + auth-ts). Rate-limited per client IP.',
  })
  @ApiOkResponse({ description: 'Compact JSON `{"salt":"...","ts":"<ISO 8601>"}`' })
  @ApiNotFoundResponse({ description: 'text/plain `Could not find user by email <email>`' })
  @ApiTooManyRequestsResponse({ description: 'text/plain `Too Many Requests`' })
  async authenticate(@Param('email') email: string, @Res() response: Response): Promise<void> {
    const user = await this.credentials.findFresh(email);
    // A user without token credentials cannot log in either; answer as OpenHIM does for no user.
    if (!user?.salt) throw new HttpException(`Could not find user by email ${email}`, HttpStatus.NOT_FOUND);
    // Compact on purpose: the docs' bash client regex-parses `"salt":"`.
    response
      .status(HttpStatus.OK)
      .type('application/json')
      .send(JSON.stringify({ salt: user.salt, ts: new Date().toISOString() }));
  }
}

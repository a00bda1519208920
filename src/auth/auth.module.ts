import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { AppConfig } from '../config/app-config';
import { AuthGuard, TOO_MANY_REQUESTS_BODY } from './auth.guard';
import { AuthenticateController } from './authenticate.controller';
import { CredentialsRepository } from './credentials.repository';
import { CredentialsService } from './credentials.service';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { RequestAuthenticator } from './request-authenticator.service';
import { RerunPermissions } from './rerun-permissions';
import { RootUserBootstrap } from './root-user.bootstrap';

/** GET /authenticate/:email is rate-limited per client IP over this window. */
export const AUTHENTICATE_RATE_WINDOW_MS = 60_000;

/**
 * OpenHIM authentication (token headers and Basic) for every route of the API, the admin-only
 * restriction of `@Auth({adminOnly})`, the default root user, and `RerunPermissions` for the tasks API.
 * Imported by the API role only.
 */
@Global()
@Module({
  imports: [
    // Used by GET /authenticate only (through @UseGuards(ThrottlerGuard)); failed authentications
    // are counted by FailedAuthLimiter.
    ThrottlerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        throttlers: [
          {
            ttl: AUTHENTICATE_RATE_WINDOW_MS,
            limit: config.AUTHENTICATE_RATE_LIMIT,
            skipIf: () => config.AUTHENTICATE_RATE_LIMIT === 0,
          },
        ],
        errorMessage: TOO_MANY_REQUESTS_BODY,
      }),
    }),
  ],
  controllers: [AuthenticateController],
  providers: [
    CredentialsRepository,
    CredentialsService,
    RequestAuthenticator,
    FailedAuthLimiter,
    RerunPermissions,
    RootUserBootstrap,
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  exports: [RerunPermissions],
})
export class AuthModule {}

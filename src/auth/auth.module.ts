import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard } from './auth.guard';
import { AuthenticateController } from './authenticate.controller';
import { CredentialsRepository } from './credentials.repository';
import { CredentialsService } from './credentials.service';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { RequestAuthenticator } from './request-authenticator.service';
import { RerunPermissions } from './rerun-permissions';
import { RootUserBootstrap } from './root-user.bootstrap';

/**
 * OpenHIM authentication (core's session cookie, token headers and Basic) for every route of the
 * API, the admin-only restriction of `@Auth({adminOnly})`, the default root user, and
 * `RerunPermissions` for the tasks API. Imported by the API role only.
 */
@Global()
@Module({
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

import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthGuard } from './auth.guard';
import { AuthenticateController } from './authenticate.controller';
import { AuthCoreModule } from './auth-core.module';
import { RerunPermissions } from './rerun-permissions';
import { RootUserBootstrap } from './root-user.bootstrap';
import { SessionController } from './session/session.controller';

/**
 * OpenHIM authentication (core's session cookie, token headers and Basic) for every route of the
 * API, the admin-only restriction of `@Auth({adminOnly})`, the default root user, and
 * `RerunPermissions` for the tasks API. Imported by the API role only; the credential checks
 * themselves are `AuthCoreModule`'s, shared with the worker's admin-only /metrics.
 */
@Global()
@Module({
  imports: [AuthCoreModule],
  controllers: [AuthenticateController, SessionController],
  providers: [RerunPermissions, RootUserBootstrap, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [RerunPermissions],
})
export class AuthModule {}

import { Module } from '@nestjs/common';
import { AdminAccess } from './admin-access';
import { CredentialsRepository } from './credentials.repository';
import { CredentialsService } from './credentials.service';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { PasswordVerifier } from './password-verifier';
import { RequestAuthenticator } from './request-authenticator.service';
import { SessionService } from './session/session.service';
import { SessionsRepository } from './session/sessions.repository';

const AUTHENTICATION = [
  CredentialsRepository,
  CredentialsService,
  PasswordVerifier,
  SessionsRepository,
  SessionService,
  RequestAuthenticator,
  FailedAuthLimiter,
  AdminAccess,
];

/**
 * What verifies a request's credentials, for both roles: the users and sessions repositories, the
 * password verifier, the request authenticator, the failed-attempt limiter and `AdminAccess` (the
 * admin-only check of what the API's guard does not cover: /metrics, /queues). Imported by the
 * API's `AuthModule` and by the modules serving admin-only endpoints; one instance per application,
 * so the failed-attempt counts are shared by every entry point.
 */
@Module({ providers: AUTHENTICATION, exports: AUTHENTICATION })
export class AuthCoreModule {}

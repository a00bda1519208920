import type { Provider } from '@nestjs/common';
import { CredentialsRepository } from './credentials.repository';
import { CredentialsService } from './credentials.service';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { PasswordVerifier } from './password-verifier';
import { RequestAuthenticator } from './request-authenticator.service';
import { SessionService } from './session/session.service';
import { SessionsRepository } from './session/sessions.repository';

/** What verifies a request's credentials (the API's guard, and a worker serving protected metrics). */
export const AUTHENTICATION_PROVIDERS: Provider[] = [
  CredentialsRepository,
  CredentialsService,
  PasswordVerifier,
  SessionsRepository,
  SessionService,
  RequestAuthenticator,
  FailedAuthLimiter,
];

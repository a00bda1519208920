import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import {
  ApiForbiddenResponse,
  ApiSecurity,
  ApiServiceUnavailableResponse,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { BASIC_AUTH_SCHEME, SESSION_AUTH_SCHEME, TOKEN_AUTH_HEADERS } from '../common/swagger';
import type { AuthenticatedUser } from './authenticated-user';

export const ADMIN_ONLY_KEY = 'auth:adminOnly';

/** The OpenHIM operation names used in its "is not an admin" message. */
export type AdminOperation =
  | 'getTasks'
  | 'updateTask'
  | 'removeTask'
  | 'pauseAllTasks'
  | 'resumeAllTasks'
  | 'getRerunGuards'
  | 'updateRerunGuard'
  | 'removeRerunGuard';

/** The answers of every authenticated route (the global guard's), documented once by `Auth()`. */
export const AUTH_RESPONSES = {
  401: 'text/plain `Unauthorized`: no credentials, or wrong ones (token, Basic, or a session that ended or was forged)',
  429:
    'text/plain `Too Many Requests`, with Retry-After: too many failed authentications from this client IP ' +
    '(AUTH_FAILURE_LIMIT per minute); every request from it is refused until the block ends',
  503:
    'text/plain: MongoDB is unavailable: `Authentication is temporarily unavailable` (the credentials cannot be ' +
    'read), or `The database (MongoDB) is unavailable. Try again shortly.` (the route cannot reach it; mostly ' +
    'with Retry-After)',
} as const;

/**
 * The one auth decorator: documents the three schemes and the guard's answers (401, 429, 503) and,
 * with `adminOnly`, restricts the route to the `admin` group (403 `User <email> is not an admin, API
 * access to <op> denied.`). Every route is authenticated by the global guard unless marked `@Public()`.
 * A route's own description of the same status is kept (the descriptions are joined).
 */
export function Auth(options: { adminOnly?: AdminOperation } = {}) {
  return applyDecorators(
    SetMetadata(ADMIN_ONLY_KEY, options.adminOnly),
    ApiSecurity(Object.fromEntries(TOKEN_AUTH_HEADERS.map((header) => [header, []]))),
    ApiSecurity(BASIC_AUTH_SCHEME),
    ApiSecurity(SESSION_AUTH_SCHEME),
    ApiUnauthorizedResponse({ description: AUTH_RESPONSES[401] }),
    ApiTooManyRequestsResponse({ description: AUTH_RESPONSES[429] }),
    ApiServiceUnavailableResponse({ description: AUTH_RESPONSES[503] }),
  );
}

/**
 * The guard's 403 on routes that change something: a request authenticated by a session cookie is
 * refused from an origin that CORS_ORIGINS does not list (and that is not this service's own).
 */
export function ApiSessionOriginRefusal() {
  return ApiForbiddenResponse({
    description:
      'Or a session cookie sent from an origin CORS_ORIGINS does not list: text/plain `Requests that change ' +
      'tasks with a session cookie are not accepted from origin <origin>: it is not in CORS_ORIGINS. If the ' +
      'OpenHIM console is served from there, allow it with CORS_ORIGINS=<origin> (comma-separated with any ' +
      'others) and restart`',
  });
}

/** The authenticated user of the request (set by the global guard). */
export const CurrentUser = createParamDecorator(
  (_: unknown, context: ExecutionContext): AuthenticatedUser =>
    context.switchToHttp().getRequest<{ user: AuthenticatedUser }>().user,
);

import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiSecurity, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { BASIC_AUTH_SCHEME, SESSION_AUTH_SCHEME, TOKEN_AUTH_HEADERS } from '../common/swagger';
import type { AuthenticatedUser } from './authenticated-user';

export const ADMIN_ONLY_KEY = 'auth:adminOnly';

/** The OpenHIM operation names used in its "is not an admin" message. */
export type AdminOperation = 'getTasks' | 'updateTask' | 'removeTask';

/**
 * The one auth decorator: documents the three schemes and, with `adminOnly`, restricts the route to the
 * `admin` group (403 `User <email> is not an admin, API access to <op> denied.`).
 * Every route is authenticated by the global guard unless marked `@Public()`.
 */
export function Auth(options: { adminOnly?: AdminOperation } = {}) {
  return applyDecorators(
    SetMetadata(ADMIN_ONLY_KEY, options.adminOnly),
    ApiSecurity(Object.fromEntries(TOKEN_AUTH_HEADERS.map((header) => [header, []]))),
    ApiSecurity(BASIC_AUTH_SCHEME),
    ApiSecurity(SESSION_AUTH_SCHEME),
    ApiUnauthorizedResponse({ description: 'text/plain `Unauthorized`' }),
  );
}

/** The authenticated user of the request (set by the global guard). */
export const CurrentUser = createParamDecorator(
  (_: unknown, context: ExecutionContext): AuthenticatedUser =>
    context.switchToHttp().getRequest<{ user: AuthenticatedUser }>().user,
);

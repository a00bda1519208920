import { ExecutionContext, HttpException, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash } from 'node:crypto';
import { IS_PUBLIC_KEY } from '../common/decorators/public.decorator';
import { loadConfig } from '../config/app-config';
import { ADMIN_ONLY_KEY, AdminOperation } from './auth.decorators';
import { AuthGuard } from './auth.guard';
import type { CredentialsService, UserCredentials } from './credentials.service';
import { FailedAuthLimiter } from './failed-auth-limiter';
import { AppConfig } from '../config/app-config';
import { PasswordVerifier } from './password-verifier';
import { RequestAuthenticator } from './request-authenticator.service';
import { SessionService } from './session/session.service';

/** Sessions are off without OPENHIM_SESSION_KEY: its repositories are never reached. */
const authenticatorFor = (credentials: CredentialsService, config: AppConfig) =>
  new RequestAuthenticator(
    credentials,
    config,
    new PasswordVerifier(),
    new SessionService(config, {} as never, {} as never),
  );

const sha512 = (text: string) => createHash('sha512').update(text).digest('hex');

function user(email: string, groups: string[], password: string): UserCredentials {
  const salt = `salt-of-${email}`;
  return { email, groups, salt, password: { algorithm: 'sha512', hash: sha512(salt + password), salt } };
}

const users = new Map<string, UserCredentials>([
  ['root@openhim.org', user('root@openhim.org', ['admin'], 'openhim-password')],
  ['op@x.org', user('op@x.org', ['operators'], 'secret')],
]);

function tokenHeaders(email: string, password: string) {
  const stored = users.get(email)!;
  const ts = new Date().toISOString();
  const salt = 'abc123';
  const hash = sha512(stored.salt + password);
  return { 'auth-username': email, 'auth-ts': ts, 'auth-salt': salt, 'auth-token': sha512(hash + salt + ts) };
}

/** A handler with the metadata @Public() / @Auth({adminOnly}) would set. */
function contextFor(
  headers: Record<string, string>,
  metadata: { isPublic?: boolean; adminOnly?: AdminOperation } = {},
  ip = '10.0.0.1',
) {
  const handler = () => undefined;
  if (metadata.isPublic) Reflect.defineMetadata(IS_PUBLIC_KEY, true, handler);
  if (metadata.adminOnly) Reflect.defineMetadata(ADMIN_ONLY_KEY, metadata.adminOnly, handler);
  const request: Record<string, unknown> = { headers, ip, method: 'GET', path: '/tasks' };
  const responseHeaders: Record<string, string> = {};
  const response = { setHeader: (name: string, value: string) => (responseHeaders[name] = value) };
  const context = {
    getHandler: () => handler,
    getClass: () => class Controller {},
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }),
  } as unknown as ExecutionContext;
  return { context, request, responseHeaders };
}

async function statusOf(promise: Promise<unknown>): Promise<{ status: number; body: unknown } | 'allowed'> {
  try {
    await promise;
    return 'allowed';
  } catch (error) {
    if (!(error instanceof HttpException)) throw error;
    return { status: error.getStatus(), body: error.getResponse() };
  }
}

describe('AuthGuard', () => {
  let guard: AuthGuard;
  let limiter: FailedAuthLimiter;
  let warnings: string[];

  beforeEach(() => {
    const config = loadConfig({ AUTH_FAILURE_LIMIT: '3' });
    const credentials = { find: async (email: string) => users.get(email) ?? null } as unknown as CredentialsService;
    limiter = new FailedAuthLimiter(config);
    guard = new AuthGuard(new Reflector(), authenticatorFor(credentials, config), limiter, config);
    warnings = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
  });

  afterEach(() => {
    limiter.onApplicationShutdown();
    jest.restoreAllMocks();
  });

  it('lets @Public() routes through without credentials', async () => {
    expect(await statusOf(guard.canActivate(contextFor({}, { isPublic: true }).context))).toBe('allowed');
  });

  it('sets request.user for valid credentials', async () => {
    const { context, request } = contextFor(tokenHeaders('op@x.org', 'secret'));
    expect(await statusOf(guard.canActivate(context))).toBe('allowed');
    expect(request.user).toEqual({ email: 'op@x.org', groups: ['operators'], isAdmin: false });
  });

  it('answers 401 `Unauthorized` and logs the email, IP and reason, never the token', async () => {
    const headers = { ...tokenHeaders('op@x.org', 'wrong') };
    expect(await statusOf(guard.canActivate(contextFor(headers).context))).toEqual({
      status: 401,
      body: 'Unauthorized',
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('"op@x.org"');
    expect(warnings[0]).toContain('10.0.0.1');
    expect(warnings[0]).toContain('token does not match');
    expect(warnings[0]).not.toContain(headers['auth-token']);
  });

  it.each(['getTasks', 'updateTask', 'removeTask'] as const)(
    'denies a non-admin the admin-only %s with 403',
    async (operation) => {
      const { context } = contextFor(tokenHeaders('op@x.org', 'secret'), { adminOnly: operation });
      expect(await statusOf(guard.canActivate(context))).toEqual({
        status: 403,
        body: `User op@x.org is not an admin, API access to ${operation} denied.`,
      });
    },
  );

  it('lets the admin group use admin-only routes', async () => {
    const { context } = contextFor(tokenHeaders('root@openhim.org', 'openhim-password'), { adminOnly: 'removeTask' });
    expect(await statusOf(guard.canActivate(context))).toBe('allowed');
  });

  it('authenticates before authorising: bad credentials on an admin-only route are a 401', async () => {
    const { context } = contextFor(tokenHeaders('op@x.org', 'nope'), { adminOnly: 'getTasks' });
    expect(await statusOf(guard.canActivate(context))).toEqual({ status: 401, body: 'Unauthorized' });
  });

  it('blocks an IP with 429 after AUTH_FAILURE_LIMIT failures, even with good credentials; other IPs are not affected', async () => {
    for (let i = 0; i < 3; i++) {
      expect(await statusOf(guard.canActivate(contextFor({ 'auth-username': 'x' }).context))).toMatchObject({
        status: 401,
      });
    }
    const fourth = contextFor({ 'auth-username': 'x' });
    expect(await statusOf(guard.canActivate(fourth.context))).toEqual({ status: 429, body: 'Too Many Requests' });
    expect(Number(fourth.responseHeaders['Retry-After'])).toBeGreaterThan(0);

    const good = contextFor(tokenHeaders('op@x.org', 'secret'));
    expect(await statusOf(guard.canActivate(good.context))).toMatchObject({ status: 429 });
    const elsewhere = contextFor(tokenHeaders('op@x.org', 'secret'), {}, '10.0.0.2');
    expect(await statusOf(guard.canActivate(elsewhere.context))).toBe('allowed');
  });

  it('does not count successful requests', async () => {
    for (let i = 0; i < 10; i++) {
      expect(await statusOf(guard.canActivate(contextFor(tokenHeaders('op@x.org', 'secret')).context))).toBe('allowed');
    }
  });

  it('answers 503 (not 500, not 401) when the user store cannot be read', async () => {
    const config = loadConfig({});
    const broken = { find: () => Promise.reject(new Error('connection refused')) } as unknown as CredentialsService;
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const brokenGuard = new AuthGuard(new Reflector(), authenticatorFor(broken, config), limiter, config);
    expect(
      await statusOf(brokenGuard.canActivate(contextFor(tokenHeaders('op@x.org', 'secret')).context)),
    ).toMatchObject({
      status: 503,
    });
  });
});

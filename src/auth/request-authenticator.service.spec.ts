import bcryptjs from 'bcryptjs';
import { createHash } from 'node:crypto';
import { loadConfig } from '../config/app-config';
import { toStoredPassword } from './credentials';
import type { CredentialsService, UserCredentials } from './credentials.service';
import { PasswordVerifier } from './password-verifier';
import { RequestAuthenticator } from './request-authenticator.service';
import { SessionService } from './session/session.service';

const sha512 = (text: string) => createHash('sha512').update(text).digest('hex');
const NOW = Date.parse('2026-11-29T07:20:09.000Z');
// Cost 4: the check is the same at any cost, and fast.
const bcrypt = (password: string) => bcryptjs.hashSync(password, 4);

const stored = (salt: string, password: string, algorithm = 'sha512') =>
  toStoredPassword({ passwordAlgorithm: algorithm, passwordSalt: salt, passwordHash: sha512(salt + password) });

const users: Record<string, UserCredentials> = {
  'op@x.org': { email: 'op@x.org', groups: ['ops'], salt: 'u-salt', password: stored('u-salt', 'secret') },
  'nopass@x.org': { email: 'nopass@x.org', groups: [], password: 'no password set' },
  'md5@x.org': { email: 'md5@x.org', groups: [], salt: 's', password: stored('s', 'secret', 'md5') },
  // OpenHIM 8: a bcrypt `local` passport and no sha fields.
  'v8@x.org': {
    email: 'v8@x.org',
    groups: ['ops'],
    provider: 'local',
    bcryptHash: bcrypt('eight'),
    password: 'no password set',
  },
  // Both kinds of credentials: OpenHIM 8 follows `provider`; without one (releases before 8) the sha fields.
  'both@x.org': {
    email: 'both@x.org',
    groups: [],
    salt: 'b',
    password: stored('b', 'sha-pw'),
    bcryptHash: bcrypt('bcrypt-pw'),
  },
  'local-provider@x.org': {
    email: 'local-provider@x.org',
    groups: [],
    provider: 'local',
    salt: 'l',
    password: stored('l', 'sha-pw'),
    bcryptHash: bcrypt('bcrypt-pw'),
  },
  'token-provider@x.org': {
    email: 'token-provider@x.org',
    groups: [],
    provider: 'token',
    salt: 't',
    password: stored('t', 'sha-pw'),
    bcryptHash: bcrypt('bcrypt-pw'),
  },
  'local-only@x.org': {
    email: 'local-only@x.org',
    groups: [],
    password: 'no password set',
    bcryptHash: bcrypt('bcrypt-pw'),
  },
};
const credentials = { find: async (email: string) => users[email] ?? null } as unknown as CredentialsService;

function token(email: string, password: string, options: { ts?: string; salt?: string; userSalt?: string } = {}) {
  const ts = options.ts ?? new Date(NOW).toISOString();
  const salt = options.salt ?? 'r4nd0m';
  const hash = sha512((options.userSalt ?? 'u-salt') + password);
  return { 'auth-username': email, 'auth-ts': ts, 'auth-salt': salt, 'auth-token': sha512(hash + salt + ts) };
}
const basic = (email: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`,
});

describe('RequestAuthenticator', () => {
  const authenticator = (env: Record<string, string> = {}) => {
    const config = loadConfig(env);
    return new RequestAuthenticator(
      credentials,
      config,
      new PasswordVerifier(),
      new SessionService(config, {} as never, {} as never),
    );
  };
  const reason = async (headers: Record<string, string>, env: Record<string, string> = {}) => {
    const result = await authenticator(env).authenticate(headers, NOW);
    return result.ok ? 'ok' : result.reason;
  };

  it('accepts the token scheme with ISO and Date.toString() timestamps', async () => {
    expect(await reason(token('op@x.org', 'secret'))).toBe('ok');
    expect(await reason(token('op@x.org', 'secret', { ts: new Date(NOW).toString() }))).toBe('ok');
    const result = await authenticator().authenticate(token('op@x.org', 'secret'), NOW);
    expect(result).toEqual({ ok: true, scheme: 'token', user: { email: 'op@x.org', groups: ['ops'], isAdmin: false } });
  });

  it('names each token failure for the log', async () => {
    const good = token('op@x.org', 'secret');
    for (const name of Object.keys(good)) {
      const without = { ...good } as Record<string, string>;
      delete without[name];
      expect(await reason(without)).toBe(`missing or empty ${name}`);
      expect(await reason({ ...good, [name]: '' })).toBe(`missing or empty ${name}`);
    }
    expect(await reason(token('op@x.org', 'wrong'))).toBe('token does not match');
    expect(await reason({ ...good, 'auth-salt': 'other' })).toBe('token does not match');
    expect(await reason({ ...good, 'auth-token': good['auth-token'].toUpperCase() })).toBe('token does not match');
    expect(await reason(token('op@x.org', 'secret', { ts: 'yesterday' }))).toBe('auth-ts does not parse as a date');
    expect(await reason(token('op@x.org', 'secret', { ts: new Date(NOW - 11_000).toISOString() }))).toBe(
      'auth-ts is -11 s off the server clock',
    );
    expect(await reason(token('op@x.org', 'secret', { ts: new Date(NOW + 11_000).toISOString() }))).toBe(
      'auth-ts is 11 s off the server clock',
    );
    expect(await reason(token('op@x.org', 'secret', { ts: new Date(NOW + 10_000).toISOString() }))).toBe('ok');
    expect(await reason(token('ghost@x.org', 'secret'))).toBe('unknown user');
    expect(await reason(token('nopass@x.org', 'secret'))).toBe('no password set');
    expect(await reason(token('md5@x.org', 'secret', { userSalt: 's' }))).toBe('unsupported password algorithm');
  });

  it('checks Basic against the same records', async () => {
    expect(await reason(basic('op@x.org', 'secret'))).toBe('ok');
    expect(await reason(basic('op@x.org', 'wrong'))).toBe('wrong password');
    expect(await reason(basic('ghost@x.org', 'secret'))).toBe('unknown user');
    expect(await reason(basic('nopass@x.org', 'secret'))).toBe('no password set');
    expect(await reason({ authorization: 'Basic' })).toBe('malformed Basic credentials');
    expect(await reason({ authorization: 'Bearer x' })).toBe('no credentials');
    expect(await reason({})).toBe('no credentials');
  });

  it('only uses the schemes AUTH_TYPES enables', async () => {
    expect(await reason(basic('op@x.org', 'secret'), { AUTH_TYPES: 'token' })).toBe('basic authentication is disabled');
    expect(await reason(token('op@x.org', 'secret'), { AUTH_TYPES: 'basic' })).toBe('token authentication is disabled');
    expect(await reason(token('op@x.org', 'secret'), { AUTH_TYPES: 'token' })).toBe('ok');
    expect(await reason(basic('op@x.org', 'secret'), { AUTH_TYPES: 'basic' })).toBe('ok');
  });

  it('accepts a request when either of its schemes succeeds', async () => {
    expect(await reason({ ...token('op@x.org', 'wrong'), ...basic('op@x.org', 'secret') })).toBe('ok');
    expect(await reason({ ...token('op@x.org', 'wrong'), ...basic('op@x.org', 'wrong') })).toBe(
      'token does not match; wrong password',
    );
  });

  it("checks Basic against OpenHIM 8's bcrypt `local` passport by the user's provider", async () => {
    expect(await reason(basic('v8@x.org', 'eight'))).toBe('ok');
    expect(await reason(basic('v8@x.org', 'seven'))).toBe('wrong password');
    expect(await reason(basic('local-only@x.org', 'bcrypt-pw'))).toBe('ok');
    expect(await reason(basic('local-provider@x.org', 'bcrypt-pw'))).toBe('ok');
    expect(await reason(basic('local-provider@x.org', 'sha-pw'))).toBe('wrong password');
    expect(await reason(basic('token-provider@x.org', 'sha-pw'))).toBe('ok');
    expect(await reason(basic('token-provider@x.org', 'bcrypt-pw'))).toBe('wrong password');
    expect(await reason(basic('both@x.org', 'sha-pw'))).toBe('ok');
    expect(await reason(basic('both@x.org', 'bcrypt-pw'))).toBe('wrong password');
  });

  it('never checks the token scheme against a bcrypt passport (it has no salt to give out)', async () => {
    expect(await reason(token('v8@x.org', 'eight'))).toBe('no password set');
  });

  it('counts guesses, not requests without credentials', async () => {
    const none = await authenticator().authenticate({}, NOW);
    expect(none).toEqual({ ok: false, reason: 'no credentials', counts: false });
    const wrong = await authenticator().authenticate(basic('op@x.org', 'wrong'), NOW);
    expect(wrong).toMatchObject({ ok: false, counts: true });
    const anyAuthHeader = await authenticator().authenticate({ 'auth-foo': 'x' }, NOW);
    expect(anyAuthHeader).toMatchObject({
      ok: false,
      counts: true,
      reason: expect.stringMatching(/^missing or empty/),
    });
  });
});

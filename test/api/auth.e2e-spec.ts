import { rm } from 'node:fs/promises';
import request from 'supertest';
import {
  basicAuthorization,
  consoleHeaders,
  httpsRequest,
  nodeClientHeaders,
  runBashClient,
  SAMPLE_TASK_BODY,
  writeTempFile,
} from '../support/openhim-clients';
import {
  insertPassportUser,
  insertUser,
  passwordRecord,
  ROOT_EMAIL,
  ROOT_PASSWORD,
  sha512,
  tokenHeaders,
} from '../support/openhim-auth';
import { TestEnvironment } from '../support/test-environment';

const ROOT_SALT = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';
const CREATED = /^User (\S+) created task with id ([0-9a-f]{24})$/;

/**
 * OpenHIM authentication end to end: the real HTTPS API, the documented clients, every 401 and 403.
 * Protected requests go to the tasks API (GET /tasks is admin-only, POST /tasks is for anyone whose
 * groups the channels' txRerunAcl allows).
 */
describe('OpenHIM authentication', () => {
  let env: TestEnvironment;
  let baseUrl: string;
  const salts: Record<string, string> = {};

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ baseUrl } = await env.startApi({
      AUTH_WINDOW_SECONDS: '10',
      AUTH_FAILURE_LIMIT: '0',
    }));
    salts.legacy = (
      await insertUser(env.db, { email: 'legacy@example.org', password: 'legacy-pw', groups: ['operators'] })
    ).salt;
    salts.passport = (
      await insertPassportUser(env.db, {
        email: 'passport@example.org',
        password: 'passport-pw',
        groups: ['operators'],
      })
    ).salt;
    salts.mixed = (
      await insertUser(env.db, { email: 'Mixed.Case@Example.org', password: 'mixed-pw', groups: ['admin'] })
    ).salt;
    salts.regex = (await insertUser(env.db, { email: 'a+b.c(1)*@example.org', password: 'regex-pw', groups: [] })).salt;
    await env.db.collection('users').insertOne({ email: 'nopassword@example.org', groups: ['admin'] });
    await env.db.collection('users').insertOne({
      email: 'md5@example.org',
      groups: ['admin'],
      ...passwordRecord('md5-pw'),
      passwordAlgorithm: 'md5',
    });
  });
  afterAll(() => env?.stop());

  const getTasks = (headers: Record<string, string>) => request(baseUrl).get('/tasks').set(headers);

  describe('GET /authenticate/:email', () => {
    it("answers compact JSON with the user's salt and the server time", async () => {
      const before = Date.now();
      const response = await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.text).toMatch(
        /^\{"salt":"d9bcb40e-ae65-478f-962e-5e5e5e7d0a01","ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"\}$/,
      );
      const ts = Date.parse(response.body.ts);
      expect(ts).toBeGreaterThanOrEqual(before - 1000);
      expect(ts).toBeLessThanOrEqual(Date.now() + 1000);
    });

    it('answers 404 as text for an unknown user', async () => {
      const response = await request(baseUrl).get('/authenticate/nobody@example.org').expect(404);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toBe('Could not find user by email nobody@example.org');
    });

    it('matches the email case-insensitively', async () => {
      const response = await request(baseUrl).get('/authenticate/MIXED.case@example.ORG').expect(200);
      expect(response.body.salt).toBe(salts.mixed);
    });

    it('matches regex characters literally', async () => {
      const found = await request(baseUrl)
        .get(`/authenticate/${encodeURIComponent('A+B.C(1)*@example.org')}`)
        .expect(200);
      expect(found.body.salt).toBe(salts.regex);
      for (const probe of [
        'a+bXc(1)*@example.org',
        'aab.c(1)*@example.org',
        '.*',
        '.*@example.org',
        'a+b.c(1)*@example.org.uk',
      ]) {
        await request(baseUrl)
          .get(`/authenticate/${encodeURIComponent(probe)}`)
          .expect(404);
      }
    });

    it("hands out the token passport's salt when the user has one (OpenHIM ≥ 7.2)", async () => {
      const response = await request(baseUrl).get('/authenticate/passport@example.org').expect(200);
      expect(response.body.salt).toBe(salts.passport);
    });

    it('answers 404 for a user without a password', async () => {
      await request(baseUrl).get('/authenticate/nopassword@example.org').expect(404);
    });
  });

  describe('the documented clients', () => {
    it('the bash client (curl -k + shasum) creates a task with the seed sample', async () => {
      const file = await writeTempFile(SAMPLE_TASK_BODY);
      try {
        const result = await runBashClient(ROOT_EMAIL, ROOT_PASSWORD, [
          `${baseUrl}/tasks`,
          '-d',
          `@${file}`,
          '-H',
          'Content-Type:application/json',
        ]);
        expect(result.status).toBe(201);
        expect(result.body).toMatch(CREATED);
        expect(CREATED.exec(result.body)![1]).toBe(ROOT_EMAIL);
      } finally {
        await rm(file, { force: true });
      }
    });

    it('the bash client with a wrong password gets 401 Unauthorized', async () => {
      const result = await runBashClient(ROOT_EMAIL, 'not-the-password', [`${baseUrl}/tasks`]);
      expect(result).toEqual({ status: 401, body: 'Unauthorized' });
    });

    it("the Node client (a Date object as auth-ts, the user's salt, the client's clock)", async () => {
      const headers = await nodeClientHeaders(baseUrl, ROOT_EMAIL, ROOT_PASSWORD);
      expect(headers['auth-ts']).toBeInstanceOf(Date);
      expect(headers['auth-salt']).toBe(ROOT_SALT);
      const response = await httpsRequest(baseUrl, {
        method: 'POST',
        path: '/tasks',
        headers: { ...headers, 'content-type': 'application/json' },
        body: SAMPLE_TASK_BODY,
      });
      expect(response.status).toBe(201);
      expect(response.body).toMatch(CREATED);
    });

    it('the Node client with a client clock 8 s off still authenticates (window 10 s)', async () => {
      for (const clockOffsetMs of [-8000, 8000]) {
        const headers = await nodeClientHeaders(baseUrl, ROOT_EMAIL, ROOT_PASSWORD, { clockOffsetMs });
        expect((await httpsRequest(baseUrl, { path: '/tasks', headers })).status).toBe(200);
      }
    });

    it('the classic console (random hex salt per request, ISO ts corrected by a clock offset)', async () => {
      for (const clockOffsetMs of [-9000, 0, 9000]) {
        const headers = consoleHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { clockOffsetMs });
        expect(headers['auth-salt']).toMatch(/^[0-9a-f]{32}$/);
        expect(headers['auth-salt']).not.toBe(ROOT_SALT);
        const response = await getTasks(headers).expect(200);
        expect(Array.isArray(response.body)).toBe(true);
      }
    });

    it('the same salt and ts may be replayed within the window (the docs clients reuse the user salt)', async () => {
      const headers = tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { salt: ROOT_SALT });
      await getTasks(headers).expect(200);
      await getTasks(headers).expect(200);
    });
  });

  describe('users', () => {
    it('a user with only legacy password fields authenticates (OpenHIM < 7.2)', async () => {
      const response = await httpsRequest(baseUrl, {
        method: 'POST',
        path: '/tasks',
        headers: {
          ...tokenHeaders('legacy@example.org', 'legacy-pw', salts.legacy),
          'content-type': 'application/json',
        },
        body: SAMPLE_TASK_BODY,
      });
      expect(response.status).toBe(201);
      expect(CREATED.exec(response.body)![1]).toBe('legacy@example.org');
    });

    it('a user whose credentials are only in its token passport authenticates (OpenHIM ≥ 7.2)', async () => {
      const headers = tokenHeaders('passport@example.org', 'passport-pw', salts.passport);
      const response = await request(baseUrl).get('/tasks').set(headers);
      expect(response.status).toBe(403); // authenticated, but not an admin
      expect(response.text).toBe('User passport@example.org is not an admin, API access to getTasks denied.');
    });

    it('the token passport wins over legacy fields', async () => {
      const { salt } = await insertPassportUser(env.db, {
        email: 'both@example.org',
        password: 'new-pw',
        groups: ['admin'],
        legacy: passwordRecord('old-pw'),
      });
      await getTasks(tokenHeaders('both@example.org', 'new-pw', salt)).expect(200);
      const legacySalt = (await env.db.collection('users').findOne({ email: 'both@example.org' }))!
        .passwordSalt as string;
      await getTasks(tokenHeaders('both@example.org', 'old-pw', legacySalt)).expect(401);
    });

    it('a mixed-case email authenticates in any case, as the stored user', async () => {
      const response = await httpsRequest(baseUrl, {
        method: 'POST',
        path: '/tasks',
        headers: {
          ...tokenHeaders('mixed.CASE@example.org', 'mixed-pw', salts.mixed),
          'content-type': 'application/json',
        },
        body: SAMPLE_TASK_BODY,
      });
      expect(response.status).toBe(201);
      expect(CREATED.exec(response.body)![1]).toBe('Mixed.Case@Example.org');
    });
  });

  describe('every failure is 401 `Unauthorized` and nothing else', () => {
    const valid = () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT);
    const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
    const cases: Array<[string, () => Record<string, string>]> = [
      ...(['auth-username', 'auth-ts', 'auth-salt', 'auth-token'] as const).flatMap(
        (name): Array<[string, () => Record<string, string>]> => [
          [`${name} missing`, () => omit(valid(), name)],
          [`${name} empty`, () => ({ ...valid(), [name]: '' })],
        ],
      ),
      ['no credentials at all', () => ({})],
      ['a wrong token', () => ({ ...valid(), 'auth-token': sha512('something else') })],
      ['the token in upper case', () => ({ ...valid(), 'auth-token': valid()['auth-token'].toUpperCase() })],
      ['a token computed with the wrong password', () => tokenHeaders(ROOT_EMAIL, 'wrong', ROOT_SALT)],
      ['a token for another salt than auth-salt', () => ({ ...valid(), 'auth-salt': 'another-salt' })],
      ['a token computed from the wrong user salt', () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, 'not-the-user-salt')],
      [
        'auth-ts 11 s in the past (window 10 s)',
        () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { ts: at(-11000) }),
      ],
      [
        'auth-ts 11 s in the future (window 10 s)',
        () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { ts: at(11000) }),
      ],
      ['an unparseable auth-ts', () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { ts: 'not a date' })],
      ['an unknown user', () => tokenHeaders('ghost@example.org', ROOT_PASSWORD, ROOT_SALT)],
      ['a user without password fields', () => tokenHeaders('nopassword@example.org', '', '')],
      ['a user whose password algorithm is unknown', () => tokenHeaders('md5@example.org', 'md5-pw', 'x')],
      ['bad Basic credentials', () => ({ authorization: basicAuthorization(ROOT_EMAIL, 'wrong') })],
      ['Basic for an unknown user', () => ({ authorization: basicAuthorization('ghost@example.org', ROOT_PASSWORD) })],
      ['malformed Basic credentials', () => ({ authorization: 'Basic not-base64-at-all!' })],
      ['another Authorization scheme', () => ({ authorization: 'Bearer abc' })],
    ];

    it.each(cases)('%s', async (_name, headers) => {
      const response = await getTasks(headers());
      expect(response.status).toBe(401);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toBe('Unauthorized');
    });

    it('auth-ts inside the window on either side is accepted', async () => {
      await getTasks(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { ts: at(-9000) })).expect(200);
      await getTasks(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT, { ts: at(9000) })).expect(200);
    });

    it('a user whose password algorithm is unknown gets 401, not 500, with the right password too', async () => {
      const user = (await env.db.collection('users').findOne({ email: 'md5@example.org' }))!;
      await getTasks(tokenHeaders('md5@example.org', 'md5-pw', user.passwordSalt as string)).expect(401);
    });
  });

  describe('Basic', () => {
    it('authenticates with the email and password', async () => {
      await getTasks({ authorization: basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD) }).expect(200);
      await getTasks({ authorization: basicAuthorization('passport@example.org', 'passport-pw') }).expect(403);
    });
  });

  describe('AUTH_TYPES', () => {
    it('token only: Basic is refused, tokens work', async () => {
      const { baseUrl: url } = await env.startApi({ AUTH_TYPES: 'token', AUTH_FAILURE_LIMIT: '0' });
      await request(url)
        .get('/tasks')
        .set({ authorization: basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD) })
        .expect(401, 'Unauthorized');
      await request(url)
        .get('/tasks')
        .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
        .expect(200);
    });

    it('basic only: tokens are refused, Basic works', async () => {
      const { baseUrl: url } = await env.startApi({ AUTH_TYPES: 'basic', AUTH_FAILURE_LIMIT: '0' });
      await request(url)
        .get('/tasks')
        .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
        .expect(401, 'Unauthorized');
      await request(url)
        .get('/tasks')
        .set({ authorization: basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD) })
        .expect(200);
    });
  });

  describe('authorisation', () => {
    const operator = () => tokenHeaders('legacy@example.org', 'legacy-pw', salts.legacy);
    const someId = '5bb777777bbb66cc5d4444ee';

    it.each([
      ['GET', '/tasks', 'getTasks'],
      ['PUT', `/tasks/${someId}`, 'updateTask'],
      ['DELETE', `/tasks/${someId}`, 'removeTask'],
    ])('%s %s is admin-only: 403 naming %s', async (method, path, operation) => {
      const response = await request(baseUrl)
        [method.toLowerCase() as 'get' | 'put' | 'delete'](path)
        .set(operator())
        .send(method === 'PUT' ? { status: 'Paused' } : undefined);
      expect(response.status).toBe(403);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toBe(`User legacy@example.org is not an admin, API access to ${operation} denied.`);
    });

    it("a non-admin may rerun only transactions whose channels' txRerunAcl lists one of its groups", async () => {
      const channels = env.db.collection('channels');
      const transactions = env.db.collection('transactions');
      const { insertedId: allowed } = await channels.insertOne({ name: 'allowed', txRerunAcl: ['operators'] });
      const { insertedId: denied } = await channels.insertOne({ name: 'denied', txRerunAcl: ['others'] });
      const request1 = { method: 'GET', path: '/x', headers: {}, timestamp: new Date() };
      const { insertedId: txAllowed } = await transactions.insertOne({
        channelID: allowed,
        request: request1,
        status: 'Failed',
      });
      const { insertedId: txDenied } = await transactions.insertOne({
        channelID: denied,
        request: request1,
        status: 'Failed',
      });

      const create = (tids: unknown[]) =>
        request(baseUrl)
          .post('/tasks')
          .set(operator())
          .send({ tids: tids.map(String), paused: true });

      const ok = await create([txAllowed]);
      expect(ok.status).toBe(201);
      expect(ok.text).toMatch(/^User legacy@example.org created task with id [0-9a-f]{24}$/);

      const refused = await create([txAllowed, txDenied]);
      expect(refused.status).toBe(403);
      expect(refused.text).toBe('Insufficient permissions prevents this rerun task from being created');

      // An admin may rerun anything.
      await request(baseUrl)
        .post('/tasks')
        .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
        .send({ tids: [String(txDenied)], paused: true })
        .expect(201);
    });
  });
});

function omit(headers: Record<string, string>, name: string): Record<string, string> {
  const copy = { ...headers };
  delete copy[name];
  return copy;
}

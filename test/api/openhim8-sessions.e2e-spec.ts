import bcryptjs from 'bcryptjs';
import { ObjectId } from 'mongodb';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { insertUser, ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from '../support/openhim-auth';
import { basicAuthorization } from '../support/openhim-clients';
import {
  CORE_DEFAULT_SESSION_KEY,
  coreAcceptsCookies,
  coreReadsSession,
  coreSessionCookie,
  insertCoreSession,
  insertV8User,
} from '../support/openhim8';
import { TestEnvironment } from '../support/test-environment';

const CONSOLE = 'https://console.example.org';
const SAMPLE = { tids: ['5bb777777bbb66cc5d4444ee'], batchSize: 1, paused: true };
const ROOT_SALT = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';

/**
 * The OpenHIM 8 console behind a reverse proxy reaches this service with core's session cookie
 * only. Sessions here are core's: cookies signed with core's api.sessionKey (keygrip), documents in
 * `sessions` as core's store writes them, the user read at request time.
 */
describe('OpenHIM 8 sessions', () => {
  let env: TestEnvironment;
  let baseUrl: string;
  let ownOrigin: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ baseUrl } = await env.startApi({
      // Core's default key, with a newer one first: what a deployment rotating its key has.
      OPENHIM_SESSION_KEY: JSON.stringify(['rotated-key', CORE_DEFAULT_SESSION_KEY]),
      CORS_ORIGINS: `${CONSOLE}, http://localhost:9000`,
      AUTH_FAILURE_LIMIT: '0',
    }));
    ownOrigin = baseUrl;
    await insertUser(env.db, { email: 'operator@example.org', password: 'op-pw', groups: ['operators'] });
    await insertV8User(env.db, { email: 'eight@example.org', password: 'eight-pw', groups: ['admin'] });
  });
  afterAll(() => env?.stop());

  const sessionFor = async (email: string, options: { expiresInMs?: number } = {}) =>
    coreSessionCookie(await insertCoreSession(env.db, email, options));
  const tasks = () => env.db.collection('tasks');

  describe("a session made by core's login", () => {
    it('authenticates every tasks route with the cookie alone, as the console sends it', async () => {
      const cookie = await sessionFor(ROOT_EMAIL);
      await request(baseUrl).get('/tasks').set('Cookie', cookie).expect(200);
      const created = await request(baseUrl).post('/tasks').set('Cookie', cookie).send(SAMPLE).expect(201);
      const id = /created task with id ([0-9a-f]{24})$/.exec(created.text)?.[1];
      expect(created.text).toBe(`User ${ROOT_EMAIL} created task with id ${id}`);
      expect(await tasks().findOne({}, { sort: { created: -1 } })).toMatchObject({ user: ROOT_EMAIL });
      await request(baseUrl)
        .get(`/tasks/${id}?filterPage=0&filterLimit=0&filters={}`)
        .set('Cookie', cookie)
        .expect(200);
      await request(baseUrl)
        .put(`/tasks/${id}`)
        .set('Cookie', cookie)
        .send({ _id: id, status: 'Cancelled' })
        .expect(200);
      await request(baseUrl).delete(`/tasks/${id}`).set('Cookie', cookie).expect(200);
    });

    it('accepts a cookie signed with any key of OPENHIM_SESSION_KEY', async () => {
      const id = await insertCoreSession(env.db, ROOT_EMAIL);
      await request(baseUrl).get('/tasks').set('Cookie', coreSessionCookie(id, 'rotated-key')).expect(200);
      await request(baseUrl).get('/tasks').set('Cookie', coreSessionCookie(id, CORE_DEFAULT_SESSION_KEY)).expect(200);
    });

    it("reads the user's groups at request time: a group change at core applies at once", async () => {
      const email = 'demoted-eight@example.org';
      await insertV8User(env.db, { email, password: 'x', groups: ['admin'] });
      const cookie = await sessionFor(email);
      await request(baseUrl).get('/tasks').set('Cookie', cookie).expect(200);
      await env.db.collection('users').updateOne({ email }, { $set: { groups: ['operators'] } });
      await request(baseUrl)
        .get('/tasks')
        .set('Cookie', cookie)
        .expect(403, `User ${email} is not an admin, API access to getTasks denied.`);
    });

    it.each([
      ['a forged signature', async () => `koa.sess=${await insertCoreSession(env.db, ROOT_EMAIL)}; koa.sess.sig=AAAA`],
      [
        'a key that is not ours',
        async () => coreSessionCookie(await insertCoreSession(env.db, ROOT_EMAIL), 'someone-elses-key'),
      ],
      ['an expired session (_expire past)', () => sessionFor(ROOT_EMAIL, { expiresInMs: -1000 })],
      ['a session id core never stored', async () => coreSessionCookie(randomUUID())],
      ['a session whose user is gone', () => sessionFor('ghost@example.org')],
      ['the id without its signature cookie', async () => `koa.sess=${await insertCoreSession(env.db, ROOT_EMAIL)}`],
    ])('refuses %s: 401 Unauthorized', async (_, cookie) => {
      await request(baseUrl)
        .get('/tasks')
        .set('Cookie', await cookie())
        .expect(401, 'Unauthorized');
    });

    it('refuses the cookie at once once the user logged out at core (its document deleted)', async () => {
      const id = await insertCoreSession(env.db, ROOT_EMAIL);
      await request(baseUrl).get('/tasks').set('Cookie', coreSessionCookie(id)).expect(200);
      await env.db.collection<{ _id: string }>('sessions').deleteOne({ _id: id });
      await request(baseUrl).get('/tasks').set('Cookie', coreSessionCookie(id)).expect(401);
    });

    it('checks other credentials when the session is dead, in core order (session, token, Basic)', async () => {
      const dead = coreSessionCookie(randomUUID());
      await request(baseUrl)
        .get('/tasks')
        .set('Cookie', dead)
        .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
        .expect(200);
      await request(baseUrl)
        .get('/tasks')
        .set('Cookie', dead)
        .set('Authorization', basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD))
        .expect(200);
      // A live session wins over wrong token headers.
      await request(baseUrl)
        .get('/tasks')
        .set('Cookie', await sessionFor(ROOT_EMAIL))
        .set(tokenHeaders(ROOT_EMAIL, 'wrong', ROOT_SALT))
        .expect(200);
    });
  });

  describe('changes with a session cookie come only from the console origins (CSRF)', () => {
    const create = async (headers: Record<string, string>) => {
      const before = await tasks().countDocuments();
      const response = await request(baseUrl)
        .post('/tasks')
        .set('Cookie', await sessionFor(ROOT_EMAIL))
        .set(headers)
        .send(SAMPLE);
      return { status: response.status, text: response.text, created: (await tasks().countDocuments()) - before };
    };

    it('refuses POST, PUT and DELETE from another origin with 403, and writes nothing', async () => {
      expect(await create({ Origin: 'https://evil.example' })).toEqual({
        status: 403,
        text:
          'Requests that change tasks with a session cookie are not accepted from origin https://evil.example: it is ' +
          'not in CORS_ORIGINS. If the OpenHIM console is served from there, allow it with ' +
          'CORS_ORIGINS=https://evil.example (comma-separated with any others) and restart',
        created: 0,
      });
      expect((await create({ Origin: 'null' })).status).toBe(403);
      expect((await create({ 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
      // A sibling subdomain is another origin too, unless listed.
      expect((await create({ Origin: 'https://other.example.org', 'Sec-Fetch-Site': 'same-site' })).status).toBe(403);

      const id = String(
        (await tasks().insertOne({ status: 'Paused', user: ROOT_EMAIL, created: new Date() })).insertedId,
      );
      const cookie = await sessionFor(ROOT_EMAIL);
      await request(baseUrl)
        .put(`/tasks/${id}`)
        .set({ Cookie: cookie, Origin: 'https://evil.example' })
        .send({ _id: id, status: 'Cancelled' })
        .expect(403);
      await request(baseUrl).delete(`/tasks/${id}`).set({ Cookie: cookie, Origin: 'https://evil.example' }).expect(403);
      expect(await tasks().findOne({ _id: new ObjectId(id) })).toMatchObject({
        status: 'Paused',
      });
    });

    it('accepts them from a listed console origin, from its own origin, and from clients that send no origin', async () => {
      expect(await create({ Origin: CONSOLE })).toMatchObject({ status: 201, created: 1 });
      expect(await create({ Origin: 'HTTPS://CONSOLE.EXAMPLE.ORG/' })).toMatchObject({ status: 201, created: 1 });
      expect(await create({ Origin: 'http://localhost:9000', 'Sec-Fetch-Site': 'same-site' })).toMatchObject({
        status: 201,
      });
      expect(await create({ Origin: ownOrigin, 'Sec-Fetch-Site': 'same-origin' })).toMatchObject({ status: 201 });
      expect(await create({})).toMatchObject({ status: 201, created: 1 });
    });

    it('lets reads through from anywhere (the browser withholds the answer from unlisted origins)', async () => {
      await request(baseUrl)
        .get('/tasks')
        .set({ Cookie: await sessionFor(ROOT_EMAIL), Origin: 'https://evil.example' })
        .expect(200);
    });

    it('keeps token and Basic requests from any origin as they were', async () => {
      const token = await request(baseUrl)
        .post('/tasks')
        .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
        .set('Origin', 'https://elsewhere.example')
        .send(SAMPLE);
      expect(token.status).toBe(201);
      await request(baseUrl)
        .post('/tasks')
        .set('Authorization', basicAuthorization(ROOT_EMAIL, ROOT_PASSWORD))
        .set('Origin', 'https://elsewhere.example')
        .send(SAMPLE)
        .expect(201);
    });
  });

  describe('CORS', () => {
    const preflight = (origin: string) =>
      request(baseUrl).options('/tasks').set({
        Origin: origin,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      });

    it('allows credentials only to the listed console origins', async () => {
      const listed = await preflight(CONSOLE).expect(204);
      expect(listed.headers['access-control-allow-origin']).toBe(CONSOLE);
      expect(listed.headers['access-control-allow-credentials']).toBe('true');
      expect(listed.headers['access-control-allow-methods']).toBe('GET,HEAD,PUT,POST,DELETE');

      const other = await preflight('https://evil.example').expect(204);
      // As OpenHIM: every origin may use token headers from a browser...
      expect(other.headers['access-control-allow-origin']).toBe('https://evil.example');
      // ...but no website other than the console may read answers to a logged-in browser's cookies.
      expect(other.headers['access-control-allow-credentials']).toBeUndefined();

      const get = await request(baseUrl)
        .get('/tasks')
        .set({ Origin: CONSOLE, Cookie: await sessionFor(ROOT_EMAIL) })
        .expect(200);
      expect(get.headers['access-control-allow-origin']).toBe(CONSOLE);
      expect(get.headers['access-control-allow-credentials']).toBe('true');
    });
  });

  describe('users as OpenHIM 8 stores them (bcrypt local passport, no sha fields)', () => {
    it('work by cookie and by Basic; the token scheme has no salt to give them', async () => {
      await request(baseUrl)
        .get('/tasks')
        .set('Cookie', await sessionFor('eight@example.org'))
        .expect(200);
      await request(baseUrl)
        .get('/tasks')
        .set('Authorization', basicAuthorization('eight@example.org', 'eight-pw'))
        .expect(200);
      await request(baseUrl)
        .get('/tasks')
        .set('Authorization', basicAuthorization('eight@example.org', 'wrong'))
        .expect(401, 'Unauthorized');
      await request(baseUrl)
        .get('/authenticate/eight@example.org')
        .expect(404, 'Could not find user by email eight@example.org');
    });
  });

  describe('POST /authenticate/local, GET /me, GET /logout (core 8.5 bodies, codes and cookies)', () => {
    const login = (body: object, cookie?: string) => {
      const req = request(baseUrl).post('/authenticate/local').send(body);
      return cookie ? req.set('Cookie', cookie) : req;
    };
    const cookieHeader = (setCookie: string[]) => setCookie.map((cookie) => cookie.split(';')[0]).join('; ');

    it('logs in with a session core accepts: its document, its cookies, its body', async () => {
      const before = Date.now();
      const response = await login({ username: 'eight@example.org', password: 'eight-pw' }).expect(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toEqual({
        result: 'User authenticated successfully',
        user: {
          _id: expect.any(String),
          firstname: 'eight',
          surname: 'Eight',
          email: 'eight@example.org',
          groups: ['admin'],
          provider: 'local',
          settings: {},
        },
      });
      const setCookie = response.headers['set-cookie'] as unknown as string[];
      expect(setCookie).toHaveLength(2);
      for (const cookie of setCookie) {
        expect(cookie).toMatch(
          /^koa\.sess(\.sig)?=[^;]+; path=\/; expires=\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT; samesite=none; secure; httponly$/,
        );
      }
      // Signed with the newest key, as keygrip signs; core holding that key accepts it.
      expect(coreAcceptsCookies(setCookie, CORE_DEFAULT_SESSION_KEY)).toBeNull();
      const id = coreAcceptsCookies(setCookie, 'rotated-key');
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const expires = Date.parse(/expires=([^;]+)/.exec(setCookie[0])![1]);
      expect(expires).toBeGreaterThanOrEqual(Math.floor((before + 7_200_000) / 1000) * 1000);
      expect(expires).toBeLessThanOrEqual(Date.now() + 7_200_000);

      const document = await env.db.collection<{ _id: string }>('sessions').findOne({ _id: id! });
      expect(document).toEqual({
        _id: id,
        data: { passport: { user: 'eight@example.org' }, _expire: expect.any(Number), _maxAge: 7_200_000 },
        updatedAt: expect.any(Date),
      });
      expect(await coreReadsSession(env.db, id!)).toEqual({ email: 'eight@example.org' });

      await request(baseUrl).get('/tasks').set('Cookie', cookieHeader(setCookie)).expect(200);
      const me = await request(baseUrl).get('/me').set('Cookie', cookieHeader(setCookie)).expect(200);
      expect(me.body).toEqual({ user: response.body.user });
    });

    it('checks legacy users against their sha fields, and never shows password fields', async () => {
      const response = await login({ username: ROOT_EMAIL, password: ROOT_PASSWORD }).expect(200);
      expect(response.body.user).toMatchObject({ email: ROOT_EMAIL, groups: ['admin'] });
      for (const secret of ['passwordHash', 'passwordSalt', 'passwordAlgorithm', 'password']) {
        expect(response.body.user).not.toHaveProperty(secret);
      }
    });

    it('always starts a new session and ends the one the request carried', async () => {
      const first = await login({ username: 'eight@example.org', password: 'eight-pw' }).expect(200);
      const firstCookies = first.headers['set-cookie'] as unknown as string[];
      const firstId = coreAcceptsCookies(firstCookies, 'rotated-key')!;
      const second = await login({ username: 'eight@example.org', password: 'eight-pw' }, cookieHeader(firstCookies));
      const secondId = coreAcceptsCookies(second.headers['set-cookie'] as unknown as string[], 'rotated-key')!;
      expect(secondId).not.toBe(firstId);
      expect(await coreReadsSession(env.db, firstId)).toBeNull();
      expect(await coreReadsSession(env.db, secondId)).toEqual({ email: 'eight@example.org' });
      await request(baseUrl).get('/tasks').set('Cookie', cookieHeader(firstCookies)).expect(401);
    });

    it('answers 401 Unauthorized to a wrong password or an unknown user, 400 Bad Request without credentials', async () => {
      const sessionsBefore = await env.db.collection('sessions').countDocuments();
      await login({ username: 'eight@example.org', password: 'nope' }).expect(401, 'Unauthorized');
      await login({ username: 'nobody@example.org', password: 'nope' }).expect(401, 'Unauthorized');
      await login({ username: 'eight@example.org' }).expect(400, 'Bad Request');
      await login({ username: '', password: 'x' }).expect(400, 'Bad Request');
      await login({}).expect(400, 'Bad Request');
      expect(await env.db.collection('sessions').countDocuments()).toBe(sessionsBefore);
    });

    it('GET /me answers 404 Not authenticated without a live session (token headers do not count)', async () => {
      await request(baseUrl).get('/me').expect(404, 'Not authenticated');
      await request(baseUrl).get('/me').set('Cookie', coreSessionCookie(randomUUID())).expect(404, 'Not authenticated');
      await request(baseUrl)
        .get('/me')
        .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
        .expect(404, 'Not authenticated');
      const me = await request(baseUrl)
        .get('/me')
        .set('Cookie', await sessionFor('operator@example.org'))
        .expect(200);
      expect(me.body.user).toMatchObject({ email: 'operator@example.org', groups: ['operators'] });
      expect(me.body.user).not.toHaveProperty('passwordHash');
    });

    it('GET /logout ends the session on both sides: the document is deleted and the cookies expire', async () => {
      const id = await insertCoreSession(env.db, ROOT_EMAIL);
      const cookie = coreSessionCookie(id, 'rotated-key');
      const response = await request(baseUrl).get('/logout').set('Cookie', cookie).expect(200, 'OK');
      expect(response.headers['set-cookie']).toEqual([
        'koa.sess=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=none; secure; httponly',
        expect.stringMatching(
          /^koa\.sess\.sig=[\w-]+; path=\/; expires=Thu, 01 Jan 1970 00:00:00 GMT; samesite=none; secure; httponly$/,
        ),
      ]);
      expect(await env.db.collection<{ _id: string }>('sessions').findOne({ _id: id })).toBeNull();
      await request(baseUrl).get('/tasks').set('Cookie', cookie).expect(401);
      await request(baseUrl).get('/logout').set('Cookie', cookie).expect(401, 'Unauthorized');
    });
  });

  it('is off without OPENHIM_SESSION_KEY: cookies are ignored and /authenticate/local says why', async () => {
    const { baseUrl: plain } = await env.startApi({ AUTH_FAILURE_LIMIT: '0' });
    await request(plain)
      .get('/tasks')
      .set('Cookie', await sessionFor(ROOT_EMAIL))
      .expect(401);
    await request(plain)
      .post('/authenticate/local')
      .send({ username: ROOT_EMAIL, password: ROOT_PASSWORD })
      .expect(404, 'Session login is not enabled on this service (OPENHIM_SESSION_KEY is not set)');
    await request(plain).get('/me').expect(404, 'Not authenticated');
  });

  it('counts forged signatures and wrong passwords toward AUTH_FAILURE_LIMIT, not sessions that ended', async () => {
    const { baseUrl: limited } = await env.startApi({
      OPENHIM_SESSION_KEY: CORE_DEFAULT_SESSION_KEY,
      AUTH_FAILURE_LIMIT: '3',
    });
    const expired = await sessionFor(ROOT_EMAIL, { expiresInMs: -1 });
    for (let i = 0; i < 10; i++) await request(limited).get('/tasks').set('Cookie', expired).expect(401);
    await request(limited)
      .get('/tasks')
      .set('Cookie', await sessionFor(ROOT_EMAIL))
      .expect(200);
    const forged = `koa.sess=${randomUUID()}; koa.sess.sig=forged`;
    await request(limited).get('/tasks').set('Cookie', forged).expect(401);
    await request(limited).post('/authenticate/local').send({ username: ROOT_EMAIL, password: 'guess' }).expect(401);
    await request(limited).post('/authenticate/local').send({ username: ROOT_EMAIL, password: 'guess2' }).expect(401);
    // The limit (3) is reached: the fourth failure is refused, and so is everything after it.
    await request(limited).post('/authenticate/local').send({ username: ROOT_EMAIL, password: 'guess3' }).expect(429);
    await request(limited)
      .post('/authenticate/local')
      .send({ username: ROOT_EMAIL, password: ROOT_PASSWORD })
      .expect(429);
  });

  it('checks bcrypt hashes made by OpenHIM (bcryptjs 2, $2a$, cost 10)', async () => {
    const email = 'cost10@example.org';
    await insertV8User(env.db, { email, password: 'ten', groups: ['admin'] });
    await env.db
      .collection('passports')
      .updateOne({ email }, { $set: { password: bcryptjs.hashSync('ten', 10).replace(/^\$2b\$/, '$2a$') } });
    await request(baseUrl).get('/tasks').set('Authorization', basicAuthorization(email, 'ten')).expect(200);
  });
});

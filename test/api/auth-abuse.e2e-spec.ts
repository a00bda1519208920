import request from 'supertest';
import { insertUser, passwordRecord, ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from '../support/openhim-auth';
import { TestEnvironment } from '../support/test-environment';

const ROOT_SALT = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';

/** Rate limits, the failure log and the credential cache, against the real API. */
describe('authentication abuse and caching', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await TestEnvironment.start();
  });
  afterAll(() => env?.stop());

  it('GET /authenticate: known users are never limited; unknown emails count as failures (429 with Retry-After)', async () => {
    const { baseUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '3' });
    // The documented clients ask before every request: far more than the failure limit, all answered.
    for (let i = 0; i < 30; i++) await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(200);
    for (let i = 0; i < 3; i++) {
      await request(baseUrl)
        .get(`/authenticate/probe${i}@example.org`)
        .expect(404, `Could not find user by email probe${i}@example.org`);
    }
    const limited = await request(baseUrl).get('/authenticate/probe3@example.org').expect(429);
    expect(limited.text).toBe('Too Many Requests');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Blocked everywhere, known users included, until the block ends.
    await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(429);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .expect(429);
  });

  it('after AUTH_FAILURE_LIMIT failures an IP gets 429 for every request, good credentials included', async () => {
    const { baseUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '3' });
    const good = () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT);

    // Successful requests are not counted.
    for (let i = 0; i < 5; i++) await request(baseUrl).get('/tasks').set(good()).expect(200);
    for (let i = 0; i < 3; i++) {
      await request(baseUrl)
        .get('/tasks')
        .set(tokenHeaders(ROOT_EMAIL, 'guess' + i, ROOT_SALT))
        .expect(401, 'Unauthorized');
    }
    const blocked = await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders(ROOT_EMAIL, 'guess', ROOT_SALT))
      .expect(429);
    expect(blocked.text).toBe('Too Many Requests');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    await request(baseUrl).get('/tasks').set(good()).expect(429);
    await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(429);
  });

  it('logs each failure at warn with email, IP and reason, never the token or password', async () => {
    const { baseUrl } = await env.startApi({ LOG_LEVEL: 'warn', AUTH_FAILURE_LIMIT: '0' });
    const lines: string[] = [];
    const spies = [process.stdout, process.stderr].map((stream) =>
      jest.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
        lines.push(String(chunk));
        return true;
      }) as typeof stream.write),
    );
    const headers = tokenHeaders(ROOT_EMAIL, 'a-wrong-password', ROOT_SALT);
    try {
      await request(baseUrl).get('/tasks').set(headers).expect(401);
      await request(baseUrl)
        .get('/tasks')
        .set({ authorization: `Basic ${Buffer.from('eve@example.org:hunter2').toString('base64')}` })
        .expect(401);
    } finally {
      spies.forEach((spy) => spy.mockRestore());
    }
    const log = lines.join('');
    // Logs are JSON lines (pino).
    const warnings = log
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; msg: string })
      .filter((line) => line.level === 'warn')
      .map((line) => line.msg);
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^Authentication failed for "root@openhim.org" from \S*127\.0\.0\.1 on GET "\/tasks": token does not match/,
      ),
    );
    expect(warnings).toContainEqual(
      expect.stringMatching(
        /^Authentication failed for "eve@example.org" from \S*127\.0\.0\.1 on GET "\/tasks": unknown user/,
      ),
    );
    expect(log).not.toContain(headers['auth-token']);
    expect(log).not.toContain('hunter2');
    expect(log).not.toContain('a-wrong-password');
  });

  it('a changed password takes effect within AUTH_CACHE_MS; a login (GET /authenticate) refreshes it at once', async () => {
    const { baseUrl } = await env.startApi({ AUTH_CACHE_MS: '60000', AUTH_FAILURE_LIMIT: '0' });
    const { salt } = await insertUser(env.db, { email: 'cached@example.org', password: 'first', groups: ['admin'] });
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('cached@example.org', 'first', salt))
      .expect(200);

    const second = passwordRecord('second');
    await env.db.collection('users').updateOne({ email: 'cached@example.org' }, { $set: second });
    // Still cached: the old password works, the new one not yet.
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('cached@example.org', 'first', salt))
      .expect(200);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('cached@example.org', 'second', second.passwordSalt))
      .expect(401);

    const login = await request(baseUrl).get('/authenticate/cached@example.org').expect(200);
    expect(login.body.salt).toBe(second.passwordSalt);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('cached@example.org', 'second', second.passwordSalt))
      .expect(200);
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('cached@example.org', 'first', salt))
      .expect(401);
  });

  it('AUTH_CACHE_MS=0 reads the user on every request (a removed admin group takes effect at once)', async () => {
    const { baseUrl } = await env.startApi({ AUTH_CACHE_MS: '0', AUTH_FAILURE_LIMIT: '0' });
    const { salt } = await insertUser(env.db, { email: 'demoted@example.org', password: 'pw', groups: ['admin'] });
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('demoted@example.org', 'pw', salt))
      .expect(200);
    await env.db.collection('users').updateOne({ email: 'demoted@example.org' }, { $set: { groups: ['operators'] } });
    await request(baseUrl)
      .get('/tasks')
      .set(tokenHeaders('demoted@example.org', 'pw', salt))
      .expect(403);
  });
});

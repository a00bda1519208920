import fc from 'fast-check';
import { ObjectId } from 'mongodb';
import { Agent } from 'node:https';
import request from 'supertest';
import { ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { TestEnvironment } from '../support/test-environment';

const ROOT_BASIC = `Basic ${Buffer.from(`${ROOT_EMAIL}:${ROOT_PASSWORD}`).toString('base64')}`;
const RUNS = 500; // per property; 4 properties = 2000 cases per run
const TID = '5bb777777bbb66cc5d4444ee';

/** JSON values with the keys and shapes attackers and broken clients send. */
const nastyKey = fc.oneof(
  fc.constantFrom(
    'tids',
    'batchSize',
    'paused',
    'status',
    '_id',
    '__proto__',
    'constructor',
    'prototype',
    '$where',
    '$gt',
    '$ne',
    'ratePerSecond',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.constant(TID),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(nastyKey, tie('value'), { maxKeys: 5 }),
  ),
})).value;
const taskBody = fc.oneof(
  jsonValue,
  fc.record(
    {
      tids: fc.oneof(
        jsonValue,
        fc.array(
          fc.oneof(
            fc.constant(TID),
            fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), maxLength: 30 }),
            jsonValue,
          ),
          {
            maxLength: 8,
          },
        ),
      ),
      batchSize: jsonValue,
      paused: jsonValue,
    },
    { requiredKeys: [] },
  ),
);

/**
 * Property-based checks over what clients can send: every request gets a 2xx or a 4xx (never a
 * 5xx, a hang or a crash), and a rejected request changes nothing in the database.
 */
describe('fuzzing the API', () => {
  let env: TestEnvironment;
  let baseUrl: string;
  let taskId: string;
  const agent = new Agent({ keepAlive: true, rejectUnauthorized: false });

  const databaseState = async () => ({
    tasks: await env.db.collection('tasks').countDocuments(),
    items: await env.db.collection('taskitems').countDocuments(),
    task: await env.db.collection('tasks').findOne({}, { sort: { created: 1 } }),
  });

  beforeAll(async () => {
    env = await TestEnvironment.start();
    // No failed-authentication lock-out: the auth property would otherwise lock out the others.
    ({ baseUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '0', LOG_LEVEL: 'fatal' }));
    const created = await request(baseUrl)
      .post('/tasks')
      .set('Authorization', ROOT_BASIC)
      .send({ tids: [TID], paused: true })
      .expect(201);
    taskId = /([0-9a-f]{24})$/.exec(created.text)![1];
  });
  afterAll(async () => {
    agent.destroy();
    await env?.stop();
  });

  it('POST /tasks: any JSON body gets 201 or a 4xx; a rejected one writes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(taskBody, async (body) => {
        const before = await databaseState();
        const response = await request(baseUrl)
          .post('/tasks')
          .agent(agent)
          .set('Authorization', ROOT_BASIC)
          .set('Content-Type', 'application/json')
          .send(JSON.stringify(body));
        expect(response.status).toBeLessThan(500);
        if (response.status !== 201) {
          expect(response.status).toBeGreaterThanOrEqual(400);
          const after = await databaseState();
          expect(after.tasks).toBe(before.tasks);
          expect(after.items).toBe(before.items);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('PUT /tasks/:id: any JSON body gets 200 or a 4xx; a rejected one changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          jsonValue,
          fc.record({ _id: fc.oneof(fc.constant(taskId), jsonValue), status: jsonValue }, { requiredKeys: [] }),
        ),
        async (body) => {
          const before = await env.db.collection('tasks').findOne({ _id: new ObjectId(taskId) });
          const response = await request(baseUrl)
            .put(`/tasks/${taskId}`)
            .agent(agent)
            .set('Authorization', ROOT_BASIC)
            .set('Content-Type', 'application/json')
            .send(JSON.stringify(body));
          expect(response.status).toBeLessThan(500);
          if (response.status >= 400) {
            const after = await env.db.collection('tasks').findOne({ _id: before!._id });
            expect(after).toEqual(before);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('GET /tasks and /tasks/:id: any query string (including Mongo operators) gets 200 or a 4xx', async () => {
    const filters = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      jsonValue.map((value) => JSON.stringify(value)),
      fc
        .record(
          {
            status: fc.oneof(jsonValue, fc.constantFrom('Paused', { $ne: null }, { $in: ['Queued'] }, { $where: '1' })),
            created: fc.oneof(jsonValue, fc.constant('{"$gte":"2020-01-01T00:00:00Z"}'), fc.constant({ $regex: '.*' })),
            tstatus: jsonValue,
            hasErrors: jsonValue,
          },
          { requiredKeys: [] },
        )
        .map((value) => JSON.stringify(value)),
    );
    const paging = fc.oneof(fc.constantFrom('0', '10', '-1', '1e9', 'abc', ''), fc.string({ maxLength: 6 }));
    await fc.assert(
      fc.asyncProperty(filters, paging, paging, fc.boolean(), async (filter, page, limit, one) => {
        const response = await request(baseUrl)
          .get(one ? `/tasks/${taskId}` : '/tasks')
          .agent(agent)
          .set('Authorization', ROOT_BASIC)
          .query({ filters: filter, filterPage: page, filterLimit: limit });
        expect(response.status).toBeLessThan(500);
        expect([200, 400]).toContain(response.status);
      }),
      { numRuns: RUNS },
    );
  });

  it('POST /bulkrerun: any filters get 200 or a 4xx, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          jsonValue,
          fc.record({ filters: jsonValue, batchSize: jsonValue, pauseQueue: jsonValue }, { requiredKeys: [] }),
        ),
        async (body) => {
          const dryRun =
            body !== null && typeof body === 'object' && !Array.isArray(body) ? { ...body, dryRun: true } : body;
          const response = await request(baseUrl)
            .post('/bulkrerun')
            .agent(agent)
            .set('Authorization', ROOT_BASIC)
            .set('Content-Type', 'application/json')
            .send(JSON.stringify(dryRun));
          expect(response.status).toBeLessThan(500);
        },
      ),
      { numRuns: RUNS / 2 },
    );
  });

  it('the four auth headers and Basic credentials: anything gets a 4xx (or 2xx when right), never a 5xx', async () => {
    const header = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.constantFrom(
        ROOT_EMAIL,
        '',
        ' ',
        'root@openhim.org\u0000',
        new Date().toString(),
        new Date().toISOString(),
        'sha512',
      ),
    );
    // Header values must be valid Latin-1 without control characters for the HTTP client to send them.
    const sendable = (value: string) => value.replace(/[^\x20-\x7e]/g, '');
    await fc.assert(
      fc.asyncProperty(
        fc.record({ user: header, ts: header, salt: header, token: header, basic: fc.option(header) }),
        async ({ user, ts, salt, token, basic }) => {
          let call = request(baseUrl)
            .get('/tasks')
            .agent(agent)
            .set('auth-username', sendable(user))
            .set('auth-ts', sendable(ts))
            .set('auth-salt', sendable(salt))
            .set('auth-token', sendable(token));
          if (basic !== null) call = call.set('Authorization', `Basic ${Buffer.from(basic).toString('base64')}`);
          const response = await call;
          expect(response.status).toBeLessThan(500);
          expect([200, 401, 403]).toContain(response.status);
          if (response.status === 401) expect(response.text).toBe('Unauthorized');
        },
      ),
      { numRuns: RUNS },
    );
  });
});

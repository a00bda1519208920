import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { TaskCreator } from '../../src/tasks/task-creator.service';
import { laneJobs, legacyTaskDoc, transactionDoc, UserName, USERS } from '../support/fixtures';
import { insertTransactions } from '../support/database-fixtures';
import { ROOT_EMAIL } from '../support/openhim-auth';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';

const CREATED = /^User (\S+) created task with id ([0-9a-f]{24})$/;
const SEED_SAMPLE = {
  tids: ['5bb777777bbb66cc5d4444ee', '5ceec0bb3ca344f9a30df633', '5af732d1cbf94ba88b8f0bc0'],
  batchSize: 2,
  paused: true,
};
const DISABLED = 'Cannot queue task as there are transactions with disabled or deleted channels';
const INSUFFICIENT = 'Insufficient permissions prevents this rerun task from being created';
/** What list items may contain: OpenHIM's fields (plus our task options), nothing internal. */
const PUBLIC_KEYS = [
  '_id',
  'status',
  'created',
  'completedDate',
  'user',
  'remainingTransactions',
  'totalTransactions',
  'batchSize',
  'ratePerSecond',
  'pauseAfterFailures',
  'startAt',
  'rerunOf',
  '__v',
];

/**
 * POST /tasks, GET /tasks and GET /tasks/:id through HTTPS with real authentication, against the
 * embedded MongoDB-compatible server and a real Redis. No worker runs: items stay Queued and lane
 * jobs stay waiting, so what was queued can be read back.
 */
describe('Tasks API: create, list, read', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite());
  });
  afterAll(() => env?.stop());

  const tasks = () => env.db.collection('tasks');
  const items = () => env.db.collection('taskitems');
  const post = (user: UserName, body: unknown) =>
    request(baseUrl)
      .post('/tasks')
      .set(as(user))
      .send(body as object);
  const taskIdOf = (response: { text: string }) => CREATED.exec(response.text)?.[2] as string;
  const counts = async () => ({ tasks: await tasks().countDocuments(), items: await items().countDocuments() });
  const settled = () => app.get(TaskCreator).settled();

  describe('POST /tasks', () => {
    it("creates the seed document's sample task: 201 text, Location, OpenHIM's document plus our fields", async () => {
      const before = Date.now();
      const response = await post('root', SEED_SAMPLE).expect(201);
      expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(response.text).toMatch(CREATED);
      const id = taskIdOf(response);
      expect(response.text).toBe(`User ${ROOT_EMAIL} created task with id ${id}`);
      expect(response.headers.location).toBe(`/tasks/${id}`);

      const task = await tasks().findOne({ _id: new ObjectId(id) });
      expect(task).toEqual({
        _id: new ObjectId(id),
        status: 'Paused',
        transactions: [],
        created: expect.any(Date),
        user: ROOT_EMAIL,
        remainingTransactions: 3,
        totalTransactions: 3,
        batchSize: 2,
        itemsStore: 'items',
        nextSeq: 0,
        leases: [],
        asyncPending: 0,
        pauseAfterFailures: 20,
        failureStreak: 0,
        history: [{ at: task!.created, action: 'created', user: ROOT_EMAIL }],
        __v: 0,
      });
      expect(task!.created.getTime()).toBeGreaterThanOrEqual(before - 1000);
      const stored = await items()
        .find({ taskId: new ObjectId(id) }, { projection: { _id: 0 } })
        .sort({ seq: 1 })
        .toArray();
      expect(stored).toEqual(
        SEED_SAMPLE.tids.map((tid, seq) => ({ taskId: new ObjectId(id), seq, tid, tstatus: 'Queued' })),
      );
      // Paused: nothing handed to the workers.
      expect(await laneJobs(app, id)).toEqual([]);
    });

    it('queues one lane job per batch slot; repeated ids are rerun once; transactions leave auto-retry', async () => {
      const [a, b, c, other] = await insertTransactions(env.db, [
        transactionDoc(),
        transactionDoc(),
        transactionDoc({ channel: 'noAcl' }),
        transactionDoc(),
      ]);
      const response = await post('admin', { tids: [a, b, a.toUpperCase(), c, b], batchSize: 3 }).expect(201);
      const id = taskIdOf(response);
      expect(response.text).toBe(`User ${USERS.admin.email} created task with id ${id}`);

      const task = await tasks().findOne({ _id: new ObjectId(id) });
      expect(task).toMatchObject({ status: 'Queued', remainingTransactions: 3, totalTransactions: 3, batchSize: 3 });
      expect(task!.ratePerSecond).toBeUndefined();
      const stored = await items()
        .find({ taskId: new ObjectId(id) })
        .sort({ seq: 1 })
        .toArray();
      expect(stored.map(({ seq, tid, tstatus }) => ({ seq, tid, tstatus }))).toEqual([
        { seq: 0, tid: a, tstatus: 'Queued' },
        { seq: 1, tid: b, tstatus: 'Queued' },
        { seq: 2, tid: c, tstatus: 'Queued' },
      ]);
      expect(await laneJobs(app, id)).toEqual([`lane:${id}:0`, `lane:${id}:1`, `lane:${id}:2`]);

      await settled();
      const transactions = await env.db
        .collection('transactions')
        .find({ _id: { $in: [a, b, c, other].map((tid) => new ObjectId(tid)) } })
        .toArray();
      const byId = new Map(transactions.map((doc) => [doc._id.toHexString(), doc]));
      for (const tid of [a, b, c]) expect(byId.get(tid)).toMatchObject({ autoRetry: false, autoRetryAttempt: 0 });
      expect(byId.get(other)).toMatchObject({ autoRetry: true, autoRetryAttempt: 2 });
      const retries = await env.db.collection('autoretries').find({}).toArray();
      const retried = retries.map((entry) => entry.transactionID.toHexString());
      expect(retried).toContain(other);
      for (const tid of [a, b, c]) expect(retried).not.toContain(tid);
    });

    it('stores ratePerSecond for the engine and defaults batchSize to 1', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const id = taskIdOf(await post('admin', { tids: [tid], ratePerSecond: 2.5 }).expect(201));
      expect(await tasks().findOne({ _id: new ObjectId(id) })).toMatchObject({
        batchSize: 1,
        ratePerSecond: 2.5,
        status: 'Queued',
      });
      expect(await laneJobs(app, id)).toEqual([`lane:${id}:0`]);
    });

    it('accepts unknown transaction ids (they fail later, as in OpenHIM), also from non-admins', async () => {
      const unknown = new ObjectId().toHexString();
      const response = await post('viewer', { tids: [unknown] }).expect(201);
      expect(response.text).toBe(`User ${USERS.viewer.email} created task with id ${taskIdOf(response)}`);
    });

    describe('permissions (non-admin: every channel must list one of their groups in txRerunAcl)', () => {
      it('lets a user whose group the channel ACL lists create the task', async () => {
        const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc()]);
        const response = await post('rerunner', { tids }).expect(201);
        expect(response.text).toBe(`User ${USERS.rerunner.email} created task with id ${taskIdOf(response)}`);
      });

      it.each([
        ['a channel without ACL', 'rerunner', 'noAcl'],
        ['a channel whose ACL does not name the user', 'viewer', 'acl'],
        ['a transaction without channel', 'rerunner', null],
      ] as const)('403 for %s, and nothing is written', async (_, user, channel) => {
        const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc({ channel })]);
        const before = await counts();
        const response = await post(user, { tids }).expect(403);
        expect(response.headers['content-type']).toMatch(/^text\/plain/);
        expect(response.text).toBe(INSUFFICIENT);
        expect(await counts()).toEqual(before);
        const flags = await env.db
          .collection('transactions')
          .find({ _id: { $in: tids.map((tid) => new ObjectId(tid)) } })
          .toArray();
        for (const doc of flags) expect(doc.autoRetry).toBe(true);
      });

      it('403 for a channel that no longer exists', async () => {
        const doc = { ...transactionDoc(), channelID: new ObjectId() };
        const tids = await insertTransactions(env.db, [doc]);
        expect((await post('rerunner', { tids }).expect(403)).text).toBe(INSUFFICIENT);
      });
    });

    it.each([
      ['disabled', 'admin'],
      ['deleted', 'admin'],
      ['disabled', 'rerunner'],
    ] as const)('400 for a transaction on a %s channel (as %s), and nothing is written', async (channel, user) => {
      const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc({ channel })]);
      const before = await counts();
      const response = await post(user, { tids, batchSize: 1 }).expect(400);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toBe(DISABLED);
      expect(await counts()).toEqual(before);
    });

    describe('validation: a text 400 naming what is wrong, nothing written', () => {
      const ID = '5bb777777bbb66cc5d4444ee';
      it.each([
        [{ tids: [ID], batchSize: 0 }, 'Invalid batch size specified'],
        [{ tids: [ID], batchSize: -5 }, 'Invalid batch size specified'],
        [{ tids: [ID], batchSize: 'x' }, 'batchSize must be a positive integer (got "x")'],
        [{ tids: [ID], batchSize: 2.5 }, 'batchSize must be a positive integer (got 2.5)'],
        [{ tids: [ID], batchSize: 1001 }, 'batchSize must be at most 1000 (got 1001)'],
        [{ tids: [ID], paused: 'true' }, 'paused must be true or false (got "true")'],
        [{ tids: [ID], ratePerSecond: -1 }, 'ratePerSecond must be a positive number (got -1)'],
        [{}, 'tids must be an array of transaction ids (got undefined)'],
        [{ tids: [] }, 'tids must contain at least one transaction id'],
        [{ tids: 'abc' }, 'tids must be an array of transaction ids (got "abc")'],
        [
          { tids: [ID, 'nope', 42, null, `${ID}0`, 'a', 'b', 'c'] },
          'tids must contain only 24-character hex transaction ids: 7 invalid entries ' +
            `(tids[1] = "nope", tids[2] = 42, tids[3] = null, tids[4] = "${ID}0", tids[5] = "a", and 2 more)`,
        ],
        [
          { tids: [ID], extra: true },
          'Unknown field "extra" (allowed: tids, batchSize, paused, ratePerSecond, dryRun, previewLimit, pauseAfterFailures, startAt, autoResume, notify, transform, edits)',
        ],
        [[ID], 'The request body must be a JSON object'],
        [{ tids: [ID], batchSize: 0, paused: 1 }, 'Invalid batch size specified; paused must be true or false (got 1)'],
      ])('%j -> %s', async (body, message) => {
        const before = await counts();
        const response = await post('root', body).expect(400);
        expect(response.headers['content-type']).toMatch(/^text\/plain/);
        expect(response.text).toBe(message);
        expect(await counts()).toEqual(before);
      });

      it('refuses more than MAX_TASK_TIDS ids', async () => {
        const tids = Array.from({ length: 100001 }, () => new ObjectId().toHexString());
        const response = await post('root', { tids }).expect(400);
        expect(response.text).toBe('tids may contain at most 100000 transaction ids (got 100001)');
      });

      it('415 for a body that is not JSON, 400 for malformed JSON', async () => {
        const headers = as('root');
        const text = await request(baseUrl)
          .post('/tasks')
          .set(headers)
          .set('Content-Type', 'text/plain')
          .send(JSON.stringify(SEED_SAMPLE))
          .expect(415);
        expect(text.text).toBe('Content-Type must be application/json');
        const form = await request(baseUrl).post('/tasks').set(as('root')).type('form').send({ tids: 'x' }).expect(415);
        expect(form.text).toBe('Content-Type must be application/json');
        const none = await request(baseUrl).post('/tasks').set(as('root')).expect(415);
        expect(none.text).toBe('Content-Type must be application/json');
        const malformed = await request(baseUrl)
          .post('/tasks')
          .set(as('root'))
          .set('Content-Type', 'application/json')
          .send('{"tids": [')
          .expect(400);
        expect(malformed.headers['content-type']).toMatch(/^text\/plain/);
        expect(malformed.text).toMatch(/^Malformed JSON body/);
      });

      it('401 without credentials, before looking at the body', async () => {
        const response = await request(baseUrl).post('/tasks').send(SEED_SAMPLE).expect(401);
        expect(response.text).toBe('Unauthorized');
      });
    });

    it('413 for a body over BODY_LIMIT', async () => {
      const small = await env.startApi({ BODY_LIMIT: '2kb' });
      const tids = Array.from({ length: 200 }, () => new ObjectId().toHexString());
      const response = await request(small.baseUrl).post('/tasks').set(as('root')).send({ tids }).expect(413);
      expect(response.text).toBe('Request body too large');
    });
  });

  describe('GET /tasks', () => {
    const ids: Record<string, string> = {};
    beforeAll(async () => {
      // Six tasks on 2024-03-01..06, oldest first; one created by OpenHIM core (embedded transactions).
      const day = (n: number) => new Date(`2024-03-0${n}T12:00:00Z`);
      const docs = [
        { name: 'd1', status: 'Completed', user: ROOT_EMAIL },
        { name: 'd2', status: 'Paused', user: USERS.admin.email },
        { name: 'd3', status: 'Queued', user: ROOT_EMAIL },
        { name: 'd4', status: 'Paused', user: ROOT_EMAIL },
        { name: 'd5', status: 'Processing', user: USERS.admin.email },
      ].map(({ name, status, user }, index) => {
        const _id = new ObjectId();
        ids[name] = _id.toHexString();
        return {
          _id,
          status,
          transactions: [],
          created: day(index + 1),
          user,
          remainingTransactions: 1,
          totalTransactions: 1,
          batchSize: 1,
          itemsStore: 'items',
          nextSeq: 0,
          leases: [{ id: 'l1', owner: 'w1', until: new Date(), seq: 0 }],
          asyncPending: 0,
          __v: 0,
        };
      });
      const legacy = legacyTaskDoc({
        status: 'Paused',
        created: day(6),
        items: [{ tid: new ObjectId().toHexString() }],
      });
      ids.legacy = legacy._id.toHexString();
      await env.db.collection('tasks').insertMany([...docs, legacy]);
    });

    const list = (query: string, user: UserName = 'admin') => request(baseUrl).get(`/tasks${query}`).set(as(user));
    const inMarch = (body: Array<{ _id: string; created: string }>) =>
      body.filter((task) => task.created.startsWith('2024-03-')).map((task) => task._id);

    it('answers every task newest first without params (the console polls that way), without transactions or internals', async () => {
      const response = await list('').expect(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      const body = response.body as Array<Record<string, unknown>>;
      expect(inMarch(body as never)).toEqual([ids.legacy, ids.d5, ids.d4, ids.d3, ids.d2, ids.d1]);
      const created = body.map((task) => Date.parse(task.created as string));
      expect(created).toEqual([...created].sort((x, y) => y - x));
      for (const task of body) {
        expect(task.transactions).toBeUndefined();
        for (const key of Object.keys(task)) expect(PUBLIC_KEYS).toContain(key);
      }
      expect(body.find((task) => task._id === ids.d2)).toEqual({
        _id: ids.d2,
        status: 'Paused',
        created: '2024-03-02T12:00:00.000Z',
        user: USERS.admin.email,
        remainingTransactions: 1,
        totalTransactions: 1,
        batchSize: 1,
        __v: 0,
      });
      expect(body.find((task) => task._id === ids.legacy)).toMatchObject({ status: 'Paused', totalTransactions: 1 });
    });

    it("answers the console's exact query string (status + created as a JSON string, paged)", async () => {
      const filters = JSON.stringify({
        status: 'Paused',
        created: JSON.stringify({ $gte: '2024-03-01T00:00:00+00:00', $lte: '2024-03-06T23:59:59+00:00' }),
      });
      const response = await list(`?filterPage=0&filterLimit=10&filters=${encodeURIComponent(filters)}`).expect(200);
      expect(response.body.map((task: { _id: string }) => task._id)).toEqual([ids.legacy, ids.d4, ids.d2]);
    });

    it("answers the console's poll for new tasks (created $gte only, no page or limit)", async () => {
      const filters = JSON.stringify({ created: JSON.stringify({ $gte: '2024-03-05T00:00:00+00:00' }) });
      const response = await list(`?filters=${encodeURIComponent(filters)}`).expect(200);
      expect(inMarch(response.body)).toEqual([ids.legacy, ids.d5]);
    });

    it('filters by user, by status with $in, and by created given as an object', async () => {
      const march = { $gte: '2024-03-01T00:00:00Z', $lt: '2024-04-01T00:00:00Z' };
      const byUser = await list(
        `?filters=${encodeURIComponent(JSON.stringify({ user: USERS.admin.email, created: march }))}`,
      );
      expect(byUser.body.map((task: { _id: string }) => task._id)).toEqual([ids.d5, ids.d2]);
      const byStatus = await list(
        `?filters=${encodeURIComponent(JSON.stringify({ status: { $in: ['Queued', 'Completed'] }, created: march }))}`,
      );
      expect(byStatus.body.map((task: { _id: string }) => task._id)).toEqual([ids.d3, ids.d1]);
    });

    it('pages: full pages, the last partial page, a page past the end', async () => {
      const march = encodeURIComponent(JSON.stringify({ created: { $gte: '2024-03-01', $lt: '2024-04-01' } }));
      const page = async (n: number) =>
        (await list(`?filters=${march}&filterPage=${n}&filterLimit=4`).expect(200)).body.map(
          (task: { _id: string }) => task._id,
        );
      expect(await page(0)).toEqual([ids.legacy, ids.d5, ids.d4, ids.d3]);
      expect(await page(1)).toEqual([ids.d2, ids.d1]);
      expect(await page(2)).toEqual([]);
      expect(await page(99)).toEqual([]);
      // filterLimit=0 was "no limit" in OpenHIM: the most we give.
      expect(inMarch((await list('?filterLimit=0').expect(200)).body)).toHaveLength(6);
    });

    it.each([
      ['?filters=%7B%22foo%22%3A1%7D', 'Unknown filter "foo" (allowed: status, user, created)'],
      [
        '?filters=%7B%22status%22%3A%7B%22%24ne%22%3A%22Paused%22%7D%7D',
        'Unknown operator in status: "$ne" (allowed: $in)',
      ],
      [
        `?filters=${encodeURIComponent('{"created":"{\\"$where\\":\\"1\\"}"}')}`,
        'Unknown operator in created: "$where" (allowed: $gte, $gt, $lte, $lt)',
      ],
      [
        `?filters=${encodeURIComponent('{"created":{"$gte":"last week"}}')}`,
        'created.$gte must be an ISO 8601 date (got "last week")',
      ],
      [
        `?filters=${encodeURIComponent('{"status":"Sleeping"}')}`,
        expect.stringMatching(/^status must be one of Queued, /),
      ],
      ['?filters=%7Bnot-json', expect.stringMatching(/^filters must be a JSON object: /)],
      ['?filterPage=-1', 'filterPage must be an integer from 0 to 9007199254740991 (got "-1")'],
      ['?filterLimit=ten', 'filterLimit must be an integer from 0 to 9007199254740991 (got "ten")'],
      ['?filterLimit=1e3', 'filterLimit must be an integer from 0 to 9007199254740991 (got "1e3")'],
      ['?filterLimit=1&filterLimit=2', 'Query parameter filterLimit must be given once'],
      ['?status=Paused', 'Unknown query parameter "status" (allowed: filters, filterPage, filterLimit)'],
    ])('400 for %s', async (query, message) => {
      const response = await list(query).expect(400);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toEqual(message);
    });

    it('serves pages of any size, as OpenHIM (no maximum): streamed, newest first', async () => {
      // 1500 tasks of 2020 (older than every other task here).
      const base = Date.UTC(2020, 0, 1);
      const docs = Array.from({ length: 1500 }, (_, n) => ({
        _id: new ObjectId(),
        status: 'Completed',
        transactions: [],
        created: new Date(base + n * 60_000),
        user: ROOT_EMAIL,
        remainingTransactions: 0,
        totalTransactions: 1,
        batchSize: 1,
        itemsStore: 'items',
        __v: 0,
      }));
      await tasks().insertMany(docs);
      const newestFirst = docs.map((doc) => doc._id.toHexString()).reverse();
      const in2020 = encodeURIComponent(
        JSON.stringify({ created: JSON.stringify({ $gte: '2020-01-01T00:00:00Z', $lt: '2021-01-01T00:00:00Z' }) }),
      );
      const page = await list(`?filterPage=0&filterLimit=1200&filters=${in2020}`).expect(200);
      expect(page.headers['content-type']).toBe('application/json; charset=utf-8');
      // Larger than one chunk: streamed (no Content-Length), the same JSON.
      expect(page.headers['content-length']).toBeUndefined();
      expect(page.body.map((task: { _id: string }) => task._id)).toEqual(newestFirst.slice(0, 1200));
      expect(page.body[0]).toEqual({
        _id: newestFirst[0],
        status: 'Completed',
        created: new Date(base + 1499 * 60_000).toISOString(),
        user: ROOT_EMAIL,
        remainingTransactions: 0,
        totalTransactions: 1,
        batchSize: 1,
        __v: 0,
      });
      const second = await list(`?filterPage=1&filterLimit=1200&filters=${in2020}`).expect(200);
      expect(second.body.map((task: { _id: string }) => task._id)).toEqual(newestFirst.slice(1200));
      // filterLimit=0: every task (OpenHIM's MongoDB limit(0)), no longer capped at 1000.
      const all = await list(`?filterPage=0&filterLimit=0&filters=${in2020}`).expect(200);
      expect(all.body).toHaveLength(1500);
      expect((await list('?filterLimit=0').expect(200)).body.length).toBeGreaterThan(1500);
      // A small page is still sent in one piece, with its length.
      const small = await list(`?filterPage=0&filterLimit=2&filters=${in2020}`).expect(200);
      expect(small.headers['content-length']).toBe(String(Buffer.byteLength(small.text)));
      expect(small.body.map((task: { _id: string }) => task._id)).toEqual(newestFirst.slice(0, 2));
      await tasks().deleteMany({ _id: { $in: docs.map((doc) => doc._id) } });
    });

    it("403 for a non-admin with OpenHIM's text", async () => {
      const response = await list('', 'rerunner').expect(403);
      expect(response.text).toBe(`User ${USERS.rerunner.email} is not an admin, API access to getTasks denied.`);
    });
  });

  describe('GET /tasks/:id', () => {
    let ours: string;
    let legacyId: string;
    const states = [
      { tstatus: 'Completed', rerunStatus: 'Successful', rerunID: '65f0c0ffee0000000000b001' },
      { tstatus: 'Completed', rerunStatus: 'Failed', rerunID: '65f0c0ffee0000000000b002' },
      { tstatus: 'Failed', error: 'Transaction x could not be found' },
      { tstatus: 'Completed', rerunStatus: 'Successful', rerunID: '65f0c0ffee0000000000b004' },
      { tstatus: 'Processing' },
      { tstatus: 'Queued' },
      { tstatus: 'Queued' },
    ];
    const tids = states.map(() => new ObjectId().toHexString());

    beforeAll(async () => {
      ours = taskIdOf(await post('admin', { tids, batchSize: 2 }).expect(201));
      // What the engine would have recorded so far.
      for (const [seq, state] of states.entries()) {
        await items().updateOne({ taskId: new ObjectId(ours), seq }, { $set: { ...state, leaseId: 'lease-1' } });
      }
      await tasks().updateOne(
        { _id: new ObjectId(ours) },
        { $set: { status: 'Processing', remainingTransactions: 3, nextSeq: 5 } },
      );
      const legacy = legacyTaskDoc({
        status: 'Processing',
        items: states.map((state, index) => ({ tid: tids[index], ...state })),
      });
      legacyId = legacy._id.toHexString();
      await tasks().insertOne(legacy);
    });

    const read = (id: string, query = '', user: UserName = 'viewer') =>
      request(baseUrl).get(`/tasks/${id}${query}`).set(as(user));
    const filters = (value: object) => `filters=${encodeURIComponent(JSON.stringify(value))}`;

    it('answers any authenticated user with the task and its transactions in task order, without internals', async () => {
      const response = await read(ours).expect(200);
      const { transactions, ...task } = response.body;
      expect(task).toEqual({
        _id: ours,
        status: 'Processing',
        created: expect.any(String),
        user: USERS.admin.email,
        remainingTransactions: 3,
        totalTransactions: 7,
        batchSize: 2,
        pauseAfterFailures: 20,
        history: [{ at: expect.any(String), action: 'created', user: USERS.admin.email }],
        __v: 0,
        totalFilteredTransactions: 7,
      });
      expect(transactions).toEqual(
        states.map((state, index) => ({ _id: expect.stringMatching(/^[0-9a-f]{24}$/), tid: tids[index], ...state })),
      );
    });

    describe.each([
      ['created by this service (taskitems)', () => ours],
      ['created by OpenHIM core (embedded transactions)', () => legacyId],
    ])('a task %s', (_, id) => {
      const tidsOf = (body: { transactions: Array<{ tid: string }> }) => body.transactions.map((item) => item.tid);

      it.each([
        [{ tstatus: 'Completed' }, [0, 1, 3]],
        [{ tstatus: 'Completed', rerunStatus: 'Successful' }, [0, 3]],
        [{ rerunStatus: 'Failed' }, [1]],
        [{ hasErrors: 'yes' }, [2]],
        [{ hasErrors: 'no' }, [0, 1, 3, 4, 5, 6]],
        [{ tstatus: 'Queued', hasErrors: 'no' }, [5, 6]],
        [{ tstatus: '' }, [0, 1, 2, 3, 4, 5, 6]],
        [{}, [0, 1, 2, 3, 4, 5, 6]],
      ])('filters %j', async (filter, expected) => {
        const response = await read(id(), `?filterPage=0&filterLimit=100&${filters(filter)}`).expect(200);
        expect(tidsOf(response.body)).toEqual(expected.map((index) => tids[index]));
        expect(response.body.totalFilteredTransactions).toBe(expected.length);
      });

      it('filters, then pages (last partial page, past the end)', async () => {
        const page = async (n: number, filter: object = {}) =>
          (await read(id(), `?filterPage=${n}&filterLimit=3&${filters(filter)}`).expect(200)).body;
        expect(tidsOf(await page(0))).toEqual(tids.slice(0, 3));
        expect(tidsOf(await page(2))).toEqual(tids.slice(6));
        const past = await page(3);
        expect(past.transactions).toEqual([]);
        expect(past.totalFilteredTransactions).toBe(7);
        const filtered = await page(1, { hasErrors: 'no' });
        expect(tidsOf(filtered)).toEqual([tids[4], tids[5], tids[6]]);
        expect(filtered.totalFilteredTransactions).toBe(6);
      });

      it("answers the console's progress poll (filterLimit=0) without transactions", async () => {
        const response = await read(id(), '?filterPage=0&filterLimit=0&filters=%7B%7D').expect(200);
        expect(response.body.transactions).toEqual([]);
        expect(response.body).toMatchObject({
          status: 'Processing',
          remainingTransactions: 3,
          totalFilteredTransactions: 7,
        });
      });
    });

    it('404 with text for a missing task, 400 for a malformed id or filter', async () => {
      const missing = new ObjectId().toHexString();
      const notFound = await read(missing).expect(404);
      expect(notFound.headers['content-type']).toMatch(/^text\/plain/);
      expect(notFound.text).toBe(`We could not find a Task with this ID: ${missing}.`);
      expect((await read('not-an-id').expect(400)).text).toBe(
        'Invalid task id "not-an-id": expected a 24-character hex id',
      );
      expect((await read(ours, `?${filters({ status: 'Queued' })}`).expect(400)).text).toBe(
        'Unknown filter "status" (allowed: tstatus, rerunStatus, hasErrors)',
      );
      expect((await read(ours, `?${filters({ hasErrors: 'sometimes' })}`).expect(400)).text).toBe(
        'hasErrors must be "yes" or "no" (got "sometimes")',
      );
      expect((await read(ours, '?filterLimit=-1').expect(400)).text).toBe(
        'filterLimit must be an integer from 0 to 9007199254740991 (got "-1")',
      );
    });

    it('has no maximum page size (as OpenHIM): a page larger than the task gives all of it', async () => {
      for (const id of [ours, legacyId]) {
        const response = await read(id, '?filterPage=0&filterLimit=10001&filters=%7B%7D').expect(200);
        expect(response.body.transactions.map((item: { tid: string }) => item.tid)).toEqual(tids);
        expect(response.body.totalFilteredTransactions).toBe(7);
        const huge = await read(id, `?filterPage=0&filterLimit=${Number.MAX_SAFE_INTEGER}`).expect(200);
        expect(huge.body.transactions).toHaveLength(7);
        const past = await read(id, '?filterPage=3&filterLimit=1000000').expect(200);
        expect(past.body).toMatchObject({ transactions: [], totalFilteredTransactions: 7 });
      }
    });
  });

  it('answers CORS preflights as OpenHIM does', async () => {
    const response = await request(baseUrl)
      .options('/tasks')
      .set('Origin', 'https://console.example.org')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'auth-username,auth-ts,auth-salt,auth-token,content-type');
    expect(response.status).toBeLessThan(300);
    expect(response.headers['access-control-allow-origin']).toBe('https://console.example.org');
    expect(response.headers['access-control-allow-methods']).toBe('GET,HEAD,PUT,POST,DELETE');
  });
});

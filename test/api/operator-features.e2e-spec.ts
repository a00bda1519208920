import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { BulkRerunService } from '../../src/tasks/bulk-rerun.service';
import { insertTransactions } from '../support/database-fixtures';
import { legacyTaskDoc, transactionDoc, UserName, USERS } from '../support/fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';

const createdId = (text: string) => /created task with id ([0-9a-f]{24})$/.exec(text)![1];

/**
 * What operators get beyond OpenHIM, through the API: a task's history, rerunning the failed
 * transactions of a task, and the options of a new task (auto-pause threshold, scheduled start).
 * The engine's side (auto-pause, waiting for startAt, `started`/`completed`) is in
 * test/engine/operator-features-engine.e2e-spec.ts.
 */
describe('operator features (API)', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({ AUTO_PAUSE_AFTER_FAILURES: '7' }));
  });
  afterAll(() => env?.stop());

  const tasks = () => env.db.collection('tasks');
  const create = async (body: object, user: UserName = 'admin') => {
    const response = await request(baseUrl).post('/tasks').set(as(user)).send(body).expect(201);
    return createdId(response.text);
  };
  const read = async (id: string) =>
    (await request(baseUrl).get(`/tasks/${id}?filterLimit=1000`).set(as('admin')).expect(200)).body;
  const put = (id: string, status: string, user: UserName = 'admin') =>
    request(baseUrl).put(`/tasks/${id}`).set(as(user)).send({ _id: id, status });

  describe('history', () => {
    it('records who created, paused, resumed and cancelled a task, and when, newest last', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const before = Date.now();
      const id = await create({ tids: [tid], paused: true }, 'rerunner');
      await put(id, 'Queued').expect(200);
      await put(id, 'Paused').expect(200);
      await put(id, 'Cancelled').expect(200);
      const { history } = await read(id);
      expect(history.map((entry: { action: string; user?: string }) => [entry.action, entry.user])).toEqual([
        ['created', USERS.rerunner.email],
        ['resumed', USERS.admin.email],
        ['paused', USERS.admin.email],
        ['cancelled', USERS.admin.email],
      ]);
      const times = history.map((entry: { at: string }) => Date.parse(entry.at));
      expect(times[0]).toBeGreaterThanOrEqual(before - 1000);
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      expect(times[3]).toBeLessThanOrEqual(Date.now());
    });

    it('writes nothing for a change the API refuses, nor for setting the current status again', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const id = await create({ tids: [tid], paused: true });
      await put(id, 'Paused').expect(200);
      await put(id, 'Completed').expect(400);
      await put(id, 'Queued', 'rerunner').expect(403);
      await put(id, 'Cancelled').expect(200);
      await put(id, 'Queued').expect(400);
      expect((await read(id)).history.map((entry: { action: string }) => entry.action)).toEqual([
        'created',
        'cancelled',
      ]);
    });

    it('keeps the last 200 entries', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const id = await create({ tids: [tid], paused: true });
      const old = Array.from({ length: 199 }, (_, index) => ({
        at: new Date(Date.UTC(2026, 0, 1, 0, index)),
        action: index % 2 ? 'paused' : 'resumed',
        user: `old-${index}@example.org`,
      }));
      await tasks().updateOne({ _id: new ObjectId(id) }, { $push: { history: { $each: old } } } as never);
      await put(id, 'Queued').expect(200);
      await put(id, 'Paused').expect(200);
      const { history } = await read(id);
      expect(history).toHaveLength(200);
      // The oldest two went: the `created` entry and the first old one.
      expect(history[0].user).toBe('old-1@example.org');
      expect(history.slice(-2).map((entry: { action: string }) => entry.action)).toEqual(['resumed', 'paused']);
    });

    it('is shown by GET /tasks/:id, not by the task list', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const id = await create({ tids: [tid], paused: true });
      const list = await request(baseUrl).get('/tasks?filterLimit=0').set(as('admin')).expect(200);
      const listed = list.body.find((task: { _id: string }) => task._id === id);
      expect(listed).toBeDefined();
      expect(listed).not.toHaveProperty('history');
      expect(listed).toMatchObject({ pauseAfterFailures: 7 });
    });
  });

  describe('options of a new task', () => {
    it('stores pauseAfterFailures (default AUTO_PAUSE_AFTER_FAILURES) and startAt, and shows them', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const byDefault = await read(await create({ tids: [tid], paused: true }));
      expect(byDefault.pauseAfterFailures).toBe(7);
      expect(byDefault).not.toHaveProperty('startAt');
      const own = await read(
        await create({ tids: [tid], paused: true, pauseAfterFailures: 0, startAt: '2030-01-02T03:04:05+02:00' }),
      );
      expect(own).toMatchObject({ pauseAfterFailures: 0, startAt: '2030-01-02T01:04:05.000Z' });
      expect(byDefault).not.toHaveProperty('autoResume');
      expect(await read(await create({ tids: [tid], paused: true, autoResume: true }))).toMatchObject({
        autoResume: true,
      });
    });

    it.each([
      [{ startAt: 'tomorrow' }, 'startAt must be an ISO 8601 date and time with a time zone'],
      [{ startAt: '2030-01-02T03:04:05' }, 'startAt must be an ISO 8601 date and time with a time zone'],
      [{ startAt: '2030-02-31T00:00:00Z' }, 'startAt must be an ISO 8601 date and time with a time zone'],
      [{ startAt: 1767225600000 }, 'startAt must be an ISO 8601 date and time with a time zone'],
      [{ pauseAfterFailures: -1 }, 'pauseAfterFailures must be a whole number, 0 or more (got -1)'],
      [{ pauseAfterFailures: 2.5 }, 'pauseAfterFailures must be a whole number, 0 or more (got 2.5)'],
      [{ pauseAfterFailures: 'many' }, 'pauseAfterFailures must be a whole number, 0 or more (got "many")'],
      [{ autoResume: 'yes' }, 'autoResume must be true or false'],
    ])('refuses %j with a 400 naming the field, and creates nothing', async (options, message) => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const before = await tasks().countDocuments();
      const response = await request(baseUrl)
        .post('/tasks')
        .set(as('admin'))
        .send({ tids: [tid], ...options })
        .expect(400);
      expect(response.text).toContain(message);
      const bulk = await request(baseUrl)
        .post('/bulkrerun')
        .set(as('admin'))
        .send({ filters: {}, ...options })
        .expect(400);
      expect(bulk.text).toContain(message);
      expect(await tasks().countDocuments()).toBe(before);
    });

    it('POST /bulkrerun gives its tasks startAt and pauseAfterFailures', async () => {
      const channel = new ObjectId();
      await env.db.collection('channels').insertOne({ _id: channel, name: 'Bulk', txRerunAcl: [] });
      const docs = [transactionDoc(), transactionDoc()].map((doc) => ({ ...doc, channelID: channel }));
      await insertTransactions(env.db, docs);
      const before = new Set((await tasks().find().toArray()).map((task) => String(task._id)));
      await request(baseUrl)
        .post('/bulkrerun')
        .set(as('admin'))
        .send({
          filters: JSON.stringify({ channelID: channel.toHexString() }),
          pauseQueue: true,
          startAt: '2030-01-01T00:00:00Z',
          pauseAfterFailures: 3,
        })
        .expect(200);
      await app.get(BulkRerunService).idle();
      const created = (await tasks().find().toArray()).filter((task) => !before.has(String(task._id)));
      expect(created).toHaveLength(1);
      expect(created[0]).toMatchObject({
        startAt: new Date('2030-01-01T00:00:00Z'),
        pauseAfterFailures: 3,
        totalTransactions: 2,
        history: [expect.objectContaining({ action: 'created', user: USERS.admin.email, reason: 'bulk rerun' })],
      });
    });
  });

  describe('POST /tasks/:id/rerun-failed', () => {
    /** A finished task of ours with items in every end state (inserted as the engine leaves them). */
    const finishedTask = async (options: { status?: string; channel?: 'acl' | 'noAcl' } = {}) => {
      const tids = await insertTransactions(
        env.db,
        Array.from({ length: 6 }, () => transactionDoc({ channel: options.channel ?? 'acl' })),
      );
      const id = new ObjectId();
      const states = [
        { tstatus: 'Completed', rerunStatus: 'Successful' },
        { tstatus: 'Completed', rerunStatus: 'Failed', rerunID: new ObjectId().toHexString() },
        { tstatus: 'Failed', error: `Transaction ${tids[2]} could not be found` },
        { tstatus: 'Completed', rerunStatus: 'Completed' },
        { tstatus: 'Completed', rerunStatus: 'Failed', error: 'socket hang up' },
        { tstatus: 'Completed', rerunStatus: 'Completed with error(s)' },
      ];
      await env.db
        .collection('taskitems')
        .insertMany(states.map((state, seq) => ({ taskId: id, seq, tid: tids[seq], ...state })));
      await tasks().insertOne({
        _id: id,
        status: options.status ?? 'Completed',
        transactions: [],
        created: new Date(),
        user: USERS.admin.email,
        remainingTransactions: 0,
        totalTransactions: 6,
        batchSize: 3,
        itemsStore: 'items',
        nextSeq: 6,
        leases: [],
        asyncPending: 0,
        pauseAfterFailures: 4,
        history: [],
      });
      return { id: id.toHexString(), failed: [tids[1], tids[2], tids[4]] };
    };
    const itemsOf = async (id: string) =>
      (
        await env.db
          .collection('taskitems')
          .find({ taskId: new ObjectId(id) })
          .sort({ seq: 1 })
          .toArray()
      ).map((item) => item.tid);

    it('creates a task of the failed items, in order, with the source batchSize, naming its source', async () => {
      const source = await finishedTask();
      const response = await request(baseUrl).post(`/tasks/${source.id}/rerun-failed`).set(as('rerunner')).expect(201);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      const id = createdId(response.text);
      expect(response.text).toBe(`User ${USERS.rerunner.email} created task with id ${id}`);
      expect(response.headers.location).toBe(`/tasks/${id}`);
      expect(await itemsOf(id)).toEqual(source.failed);
      const task = await read(id);
      expect(task).toMatchObject({
        status: 'Queued',
        batchSize: 3,
        totalTransactions: 3,
        rerunOf: source.id,
        pauseAfterFailures: 4,
        user: USERS.rerunner.email,
      });
      expect(task.history).toEqual([
        {
          at: expect.any(String),
          action: 'created',
          user: USERS.rerunner.email,
          reason: `rerun of the failed transactions of task ${source.id}`,
        },
      ]);
      // The source is left as it was.
      expect((await read(source.id)).history).toEqual([]);
    });

    it('takes batchSize and paused from an optional JSON body', async () => {
      const source = await finishedTask({ status: 'Cancelled' });
      const response = await request(baseUrl)
        .post(`/tasks/${source.id}/rerun-failed`)
        .set(as('admin'))
        .send({ batchSize: 5, paused: true })
        .expect(201);
      expect(await read(createdId(response.text))).toMatchObject({ status: 'Paused', batchSize: 5 });
      await request(baseUrl)
        .post(`/tasks/${source.id}/rerun-failed`)
        .set(as('admin'))
        .send({ batchSize: 0 })
        .expect(400, 'Invalid batch size specified');
      await request(baseUrl)
        .post(`/tasks/${source.id}/rerun-failed`)
        .set(as('admin'))
        .send({ tids: [] })
        .expect(400, 'Unknown field "tids" (allowed: batchSize, paused)');
      await request(baseUrl)
        .post(`/tasks/${source.id}/rerun-failed`)
        .set(as('admin'))
        .set('Content-Type', 'text/plain')
        .send('paused')
        .expect(415);
    });

    it('reruns the failed entries of a task created by OpenHIM core (embedded items)', async () => {
      const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc(), transactionDoc()]);
      const legacy = legacyTaskDoc({
        status: 'Completed',
        items: [
          { tid: tids[0], tstatus: 'Completed', rerunStatus: 'Failed' },
          { tid: tids[1], tstatus: 'Completed', rerunStatus: 'Successful' },
          { tid: tids[2], tstatus: 'Failed', error: 'Transaction could not be found' },
        ],
      });
      await tasks().insertOne(legacy);
      const response = await request(baseUrl)
        .post(`/tasks/${legacy._id.toHexString()}/rerun-failed`)
        .set(as('admin'))
        .expect(201);
      expect(await itemsOf(createdId(response.text))).toEqual([tids[0], tids[2]]);
    });

    it.each(['Queued', 'Processing', 'Pending Async'])(
      'refuses a source task that is still %s: 409',
      async (status) => {
        const source = await finishedTask({ status });
        await request(baseUrl)
          .post(`/tasks/${source.id}/rerun-failed`)
          .set(as('admin'))
          .expect(
            409,
            `Task ${source.id} is still running (${status}): rerun its failed transactions once it has finished, or pause or cancel it first`,
          );
      },
    );

    it('refuses a task with nothing failed (400), an unknown task (404), a malformed id (400)', async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      const id = await create({ tids: [tid], paused: true });
      await tasks().updateOne({ _id: new ObjectId(id) }, { $set: { status: 'Completed' } });
      await request(baseUrl)
        .post(`/tasks/${id}/rerun-failed`)
        .set(as('admin'))
        .expect(400, `Task ${id} has no failed transactions to rerun`);
      const unknown = new ObjectId().toHexString();
      await request(baseUrl)
        .post(`/tasks/${unknown}/rerun-failed`)
        .set(as('admin'))
        .expect(404, `We could not find a Task with this ID: ${unknown}.`);
      await request(baseUrl).post('/tasks/abc/rerun-failed').set(as('admin')).expect(400);
    });

    it("applies POST /tasks's permission checks to each transaction: 403, nothing created", async () => {
      const source = await finishedTask({ channel: 'noAcl' });
      const before = await tasks().countDocuments();
      await request(baseUrl)
        .post(`/tasks/${source.id}/rerun-failed`)
        .set(as('rerunner'))
        .expect(403, 'Insufficient permissions prevents this rerun task from being created');
      await request(baseUrl).post(`/tasks/${source.id}/rerun-failed`).expect(401);
      expect(await tasks().countDocuments()).toBe(before);
    });
  });
});

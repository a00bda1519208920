import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { TaskCreator } from '../../src/tasks/task-creator.service';
import { DATABASE_UNAVAILABLE } from '../../src/common/filters/global-exception.filter';
import { insertTransactions } from '../support/database-fixtures';
import { transactionDoc, UserName } from '../support/fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

const CREATED = /^User (\S+) created task with id ([0-9a-f]{24})$/;

/**
 * The tasks API on a replica set (as OpenHIM 8 deployments run MongoDB) through a primary's
 * step-down: requests wait for the new primary instead of failing, what the driver cannot retry is
 * repeated, and what still fails is a 503 with Retry-After, never a 500 or half a task.
 */
describe('Tasks API on a replica set, through a step-down', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({}, { mongo: { replSet: 'rs0', enableTestCommands: true } }));
  });
  afterAll(async () => {
    env?.mongo.stepUp();
    await env?.stop();
    // The driver (6.20) leaves the server-selection timer of an operation it retried running until it
    // expires (10 s, the API's serverSelectionTimeoutMS): harmless in a service, but it holds jest.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastRetryAt + 10500 - Date.now())));
  });
  let lastRetryAt = 0;

  const admin = () => env.client.db('admin');
  const failNext = (commands: string[], times: number, errorCode = 10107) => {
    lastRetryAt = Date.now() + 2000;
    return admin().command({
      configureFailPoint: 'failCommand',
      mode: { times },
      data: { failCommands: commands, errorCode },
    });
  };
  const post = (body: object) => request(baseUrl).post('/tasks').set(as('admin')).send(body);
  const itemsOf = (taskId: string) => env.db.collection('taskitems').countDocuments({ taskId: new ObjectId(taskId) });

  it('runs on a one-member replica set (the driver sees a primary)', async () => {
    expect(env.mongoUri).toContain('replicaSet=rs0');
    // isMaster: `hello` is a 4.4 command, and CI runs this suite against 4.2 too.
    expect(await admin().command({ isMaster: 1 })).toMatchObject({ setName: 'rs0', ismaster: true });
  });

  it('POST /tasks during a 2 s step-down waits for the new primary: 201, the task once, with its items', async () => {
    const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc(), transactionDoc()]);
    const before = await env.db.collection('tasks').countDocuments();
    env.mongo.stepDown(2);
    lastRetryAt = Date.now() + 3000;
    const startedAt = Date.now();
    const response = await post({ tids, batchSize: 2, paused: true });
    expect(response.status).toBe(201);
    expect(Date.now() - startedAt).toBeGreaterThan(1000);
    const taskId = CREATED.exec(response.text)![2];
    expect(await env.db.collection('tasks').countDocuments()).toBe(before + 1);
    expect(await itemsOf(taskId)).toBe(3);
    await app.get(TaskCreator).settled();
    const flags = await env.db
      .collection('transactions')
      .find({ _id: { $in: tids.map((tid) => new ObjectId(tid)) } })
      .toArray();
    expect(flags.map((doc) => doc.autoRetry)).toEqual([false, false, false]);
  });

  it("repeats the multi-document writes the driver does not retry (auto-retry flags, a task's items)", async () => {
    const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc()]);
    await env.db
      .collection('autoretries')
      .insertMany(tids.map((tid) => ({ transactionID: new ObjectId(tid), channelID: new ObjectId() })));
    // updateMany and deleteMany are not retryable writes: the driver hands their 10107 over at once.
    await failNext(['update', 'delete'], 2);
    const response = await post({ tids, batchSize: 1, paused: true });
    expect(response.status).toBe(201);
    await app.get(TaskCreator).settled();
    const ids = tids.map((tid) => new ObjectId(tid));
    expect(
      (
        await env.db
          .collection('transactions')
          .find({ _id: { $in: ids } })
          .toArray()
      ).map((doc) => doc.autoRetry),
    ).toEqual([false, false]);
    expect(await env.db.collection('autoretries').countDocuments({ transactionID: { $in: ids } })).toBe(0);

    // A delete that still fails after the driver's retry: 503, and nothing half-deleted.
    const taskId = CREATED.exec(response.text)![2];
    await failNext(['delete'], 2);
    const refused = await request(baseUrl).delete(`/tasks/${taskId}`).set(as('admin'));
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(await env.db.collection('tasks').countDocuments({ _id: new ObjectId(taskId) })).toBe(1);
    expect(await itemsOf(taskId)).toBe(2);
    await request(baseUrl).delete(`/tasks/${taskId}`).set(as('admin')).expect(200);
    expect(await env.db.collection('tasks').countDocuments({ _id: new ObjectId(taskId) })).toBe(0);
    expect(await itemsOf(taskId)).toBe(0);
  });

  it('answers 503 with Retry-After, not 500, when a read still finds no primary after the driver retried it', async () => {
    await failNext(['find', 'aggregate'], 2);
    const response = await request(baseUrl).get('/tasks').set(as('admin'));
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.text).toBe(DATABASE_UNAVAILABLE);
    // And the next request is served.
    await waitFor(
      'GET /tasks to answer 200',
      async () => (await request(baseUrl).get('/tasks').set(as('admin'))).status === 200,
    );
  });
});

import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { TaskCreator } from '../../src/tasks/task-creator.service';
import { insertTransactions } from '../support/database-fixtures';
import { laneJobs, transactionDoc, UserName } from '../support/fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';

const SIZE = 100_000;
/**
 * A task of 100k transactions: created in one request, read page by page, paused and deleted.
 * Times are printed, not asserted (a shared 2-core machine makes wall-clock budgets flaky); the
 * create's speed is held by `npm run bench` (POST 100k tids).
 */
describe('Tasks API at 100k transactions', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;
  let tids: string[];
  let id: string;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite());
    const started = Date.now();
    tids = await insertTransactions(
      env.db,
      Array.from({ length: SIZE }, () => transactionDoc()),
    );
    console.log(`fixtures: ${SIZE} transactions (+ autoretries) inserted in ${Date.now() - started} ms`);
  }, 120_000);
  afterAll(() => env?.stop());

  const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await work();
    console.log(`${label}: ${Date.now() - started} ms`);
    return result;
  };

  it('creates the task in one request (non-admin, so the ACL of every channel is checked)', async () => {
    const response = await timed(`POST /tasks with ${SIZE} ids`, () =>
      request(baseUrl).post('/tasks').set(as('rerunner')).send({ tids, batchSize: 10 }).expect(201),
    );
    id = /with id ([0-9a-f]{24})$/.exec(response.text)![1];

    const task = await env.db.collection('tasks').findOne({ _id: new ObjectId(id) });
    expect(task).toMatchObject({
      status: 'Queued',
      totalTransactions: SIZE,
      remainingTransactions: SIZE,
      transactions: [],
    });
    const items = env.db.collection('taskitems');
    expect(await items.countDocuments({ taskId: new ObjectId(id) })).toBe(SIZE);
    const last = await items.findOne({ taskId: new ObjectId(id), seq: SIZE - 1 });
    expect(last).toMatchObject({ tid: tids[SIZE - 1], tstatus: 'Queued' });
    expect(await laneJobs(app, id)).toHaveLength(10);

    await timed('side effects (autoRetry off, autoretries removed) after the answer', () =>
      app.get(TaskCreator).settled(),
    );
    expect(await env.db.collection('transactions').countDocuments({ autoRetry: false, autoRetryAttempt: 0 })).toBe(
      SIZE,
    );
    expect(await env.db.collection('autoretries').countDocuments()).toBe(0);
  }, 120_000);

  it('reads any page quickly, filtered or not', async () => {
    const page = await timed('GET last page (unfiltered)', () =>
      request(baseUrl).get(`/tasks/${id}?filterPage=999&filterLimit=100`).set(as('viewer')).expect(200),
    );
    expect(page.body.transactions.map((item: { tid: string }) => item.tid)).toEqual(tids.slice(SIZE - 100));
    expect(page.body.totalFilteredTransactions).toBe(SIZE);
    const past = await request(baseUrl)
      .get(`/tasks/${id}?filterPage=1000&filterLimit=100`)
      .set(as('viewer'))
      .expect(200);
    expect(past.body.transactions).toEqual([]);

    const filters = encodeURIComponent(JSON.stringify({ tstatus: 'Queued', hasErrors: 'no' }));
    const filtered = await timed('GET a filtered page in the middle', () =>
      request(baseUrl)
        .get(`/tasks/${id}?filterPage=500&filterLimit=100&filters=${filters}`)
        .set(as('viewer'))
        .expect(200),
    );
    expect(filtered.body.transactions.map((item: { tid: string }) => item.tid)).toEqual(tids.slice(50_000, 50_100));
    expect(filtered.body.totalFilteredTransactions).toBe(SIZE);

    // The whole task in one page (no maximum, as in OpenHIM), streamed as it is read.
    const whole = await timed(`GET one page of ${SIZE}`, () =>
      request(baseUrl).get(`/tasks/${id}?filterPage=0&filterLimit=${SIZE}`).set(as('viewer')).expect(200),
    );
    expect(whole.headers['transfer-encoding']).toBe('chunked');
    expect(whole.body.totalFilteredTransactions).toBe(SIZE);
    expect(whole.body.transactions.map((item: { tid: string }) => item.tid)).toEqual(tids);
  }, 60_000);

  it('pauses and deletes it', async () => {
    await request(baseUrl).put(`/tasks/${id}`).set(as('admin')).send({ _id: id, status: 'Paused' }).expect(200);
    expect(await laneJobs(app, id)).toEqual([]);
    await timed('DELETE the task and its items', () =>
      request(baseUrl).delete(`/tasks/${id}`).set(as('admin')).expect(200),
    );
    expect(await env.db.collection('taskitems').countDocuments({ taskId: new ObjectId(id) })).toBe(0);
  }, 60_000);
});

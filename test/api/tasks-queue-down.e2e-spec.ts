import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { insertTransactions } from '../support/database-fixtures';
import { laneJobs, rerunQueue, transactionDoc, UserName } from '../support/fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

const CREATED = /^User (\S+) created task with id ([0-9a-f]{24})$/;
const UNAVAILABLE = 'The rerun queue (Redis) is unavailable, so nothing was changed. Try again when it is back.';

/**
 * With Redis down, what needs the queue answers 503 and leaves nothing half-written (no task
 * without queued work); what does not need it (paused creates, pause, cancel, delete) still works.
 */
describe('Tasks API while Redis is down', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({ QUEUE_TIMEOUT_MS: '1000' }));
  });
  afterAll(() => env?.stop());

  const post = (body: object) => request(baseUrl).post('/tasks').set(as('admin')).send(body);
  const put = (id: string, status: string) =>
    request(baseUrl).put(`/tasks/${id}`).set(as('admin')).send({ _id: id, status });
  const tid = () => new ObjectId().toHexString();
  const counts = async () => ({
    tasks: await env.db.collection('tasks').countDocuments(),
    items: await env.db.collection('taskitems').countDocuments(),
  });
  const statusOf = async (id: string) => (await env.db.collection('tasks').findOne({ _id: new ObjectId(id) }))?.status;

  it('503 where the queue is needed, nothing half-written; the rest works; all well once Redis is back', async () => {
    const paused = CREATED.exec((await post({ tids: [tid()], paused: true }).expect(201)).text)![2];
    const queued = CREATED.exec((await post({ tids: [tid()] }).expect(201)).text)![2];
    const doomed = CREATED.exec((await post({ tids: [tid()] }).expect(201)).text)![2];

    await env.redis.stop();
    try {
      const before = await counts();
      const refused = await post({ tids: [tid(), tid()], batchSize: 2 }).expect(503);
      expect(refused.headers['content-type']).toMatch(/^text\/plain/);
      expect(refused.text).toBe(UNAVAILABLE);
      expect(await counts()).toEqual(before);

      // Resuming needs the queue: refused, and the task stays Paused.
      expect((await put(paused, 'Queued').expect(503)).text).toBe(UNAVAILABLE);
      expect(await statusOf(paused)).toBe('Paused');

      // Bulk reruns check the queue before answering.
      expect(
        (await request(baseUrl).post('/bulkrerun').set(as('admin')).send({ filters: {} }).expect(200)).body,
      ).toEqual({
        success: true,
        message: 'Tasks created for bulk rerun of transactions',
      });
      await insertTransactions(env.db, [transactionDoc()]);
      const tasksBefore = await counts();
      expect((await request(baseUrl).post('/bulkrerun').set(as('admin')).send({ filters: {} }).expect(503)).text).toBe(
        UNAVAILABLE,
      );
      expect(await counts()).toEqual(tasksBefore);

      // No queue needed: paused creates, pause, cancel and delete (running lanes stop on the status).
      expect((await post({ tids: [tid()], paused: true }).expect(201)).text).toMatch(CREATED);
      expect((await put(queued, 'Paused').expect(200)).text).toBe('The Task was successfully updated');
      expect(await statusOf(queued)).toBe('Paused');
      expect((await put(queued, 'Cancelled').expect(200)).text).toBe('The Task was successfully updated');
      expect((await request(baseUrl).delete(`/tasks/${doomed}`).set(as('admin')).expect(200)).text).toBe(
        'The Task was successfully deleted',
      );
      expect(await statusOf(doomed)).toBeUndefined();
    } finally {
      await env.redis.start();
    }
    // Bull's client reconnects on its own schedule (up to 2 s between attempts).
    await waitFor(
      'the rerun queue to reconnect to Redis',
      async () => (rerunQueue(app).client.status === 'ready' ? true : undefined),
      {
        until: 'defined',
        failFast: true,
      },
    );

    expect((await put(paused, 'Queued').expect(200)).text).toBe('The Task was successfully updated');
    expect(await laneJobs(app, paused)).toEqual([`lane:${paused}:0`]);
    const fresh = CREATED.exec((await post({ tids: [tid()], batchSize: 2 }).expect(201)).text)![2];
    expect(await laneJobs(app, fresh)).toEqual([`lane:${fresh}:0`, `lane:${fresh}:1`]);
  });
});

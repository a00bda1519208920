import type { INestApplicationContext } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { MetricsRegistry } from '../../src/common/metrics/metrics.registry';
import request from 'supertest';
import { ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { insertTransactions, readTask, waitForTaskStatus } from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { TestEnvironment } from '../support/test-environment';

const ROOT_BASIC = `Basic ${Buffer.from(`${ROOT_EMAIL}:${ROOT_PASSWORD}`).toString('base64')}`;
/** Core 8.5 while the channel's downstream is down: the child stored Failed, 500 without its id. */
const DOWNSTREAM_DOWN = { status: 500, withoutTransactionId: true } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type History = Array<{ at: string; action: string; user?: string; reason?: string }>;

/**
 * The engine's side of the operator features, end to end from the API with real workers, Redis,
 * the embedded database and a stub of core's rerun port: auto-pause when the downstream keeps
 * failing, scheduled starts, and the `started` / `completed` history entries.
 */
describe('operator features (engine)', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let baseUrl: string;
  let secondWorker: INestApplicationContext;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    const engine = {
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      SWEEP_INTERVAL_MS: '300',
      WORKER_FLUSH_MS: '50',
      RERUN_RETRY_SETTLE_MS: '300',
      METRICS_CACHE_MS: '0',
    };
    ({ baseUrl } = await env.startApi(engine, { withWorker: true }));
    // A second worker: the failure streak and the start time are the task's, not a worker's.
    secondWorker = await env.startWorker(engine);
  });
  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });
  beforeEach(() => stub.behave({}));

  const create = async (body: object) => {
    const response = await request(baseUrl).post('/tasks').set('Authorization', ROOT_BASIC).send(body).expect(201);
    return /created task with id ([0-9a-f]{24})$/.exec(response.text)![1];
  };
  const read = async (id: string) =>
    (await request(baseUrl).get(`/tasks/${id}?filterLimit=1000`).set('Authorization', ROOT_BASIC).expect(200)).body;
  const put = (id: string, status: string) =>
    request(baseUrl).put(`/tasks/${id}`).set('Authorization', ROOT_BASIC).send({ status }).expect(200);
  const actions = (history: History) => history.map((entry) => entry.action);
  const metric = async (name: string) => {
    const text = (await request(baseUrl).get('/metrics').expect(200)).text;
    const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  /** The metric is per process: the API's worker (its /metrics) plus the second worker's registry. */
  const autoPauses = async () => {
    const name = 'openhim_rerun_tasks_auto_paused_total';
    const second = await secondWorker.get(MetricsRegistry).getSingleMetric(name)?.get();
    return ((await metric(name)) ?? 0) + (second?.values[0]?.value ?? 0);
  };

  describe('auto-pause when the downstream keeps failing', () => {
    it('pauses the task after pauseAfterFailures failed reruns in a row; in-flight reruns are recorded, nothing new starts', async () => {
      stub.behave(DOWNSTREAM_DOWN);
      const before = await autoPauses();
      const tids = await insertTransactions(env.db, 40);
      const id = await create({ tids, batchSize: 4, pauseAfterFailures: 6 });
      const paused = await waitForTaskStatus(env.db, id, 'Paused', 'tasks', 30000);

      // In-flight reruns finish and are recorded; then nothing more reaches core.
      await sleep(1500);
      const sent = stub.forTask(id).length;
      await sleep(1000);
      expect(stub.forTask(id).length).toBe(sent);
      // Six failures in a row, plus at most what the four lanes had in flight and the last flush held.
      expect(sent).toBeGreaterThanOrEqual(6);
      expect(sent).toBeLessThan(40);
      const task = await read(id);
      expect(task.status).toBe('Paused');
      expect(task.transactions.filter((item: { tstatus: string }) => item.tstatus === 'Processing')).toEqual([]);
      const done = task.transactions.filter((item: { tstatus: string }) => item.tstatus === 'Completed');
      expect(done).toHaveLength(sent);
      expect(done.every((item: { rerunStatus: string }) => item.rerunStatus === 'Failed')).toBe(true);
      expect(task.remainingTransactions).toBe(40 - sent);

      const autoPaused = (task.history as History).find((entry) => entry.action === 'auto-paused')!;
      expect(autoPaused).toEqual({
        at: expect.any(String),
        action: 'auto-paused',
        reason: expect.stringMatching(
          /^\d+ reruns in a row failed \(pauseAfterFailures 6\); the last: rerun [0-9a-f]{24} Failed$/,
        ),
      });
      expect(Number(/^(\d+)/.exec(autoPaused.reason!)![1])).toBeGreaterThanOrEqual(6);
      expect(actions(task.history)).toEqual(['created', 'started', 'auto-paused']);
      expect(paused.failureStreak).toBeGreaterThanOrEqual(6);
      expect(await autoPauses()).toBe(before + 1);

      // The downstream is back: a resume resets the count and the task completes, each tid sent once.
      stub.behave({});
      await put(id, 'Queued');
      expect((await readTask(env.db, id))!.failureStreak).toBe(0);
      const completed = await waitForTaskStatus(env.db, id, 'Completed', 'tasks', 30000);
      expect(completed.remainingTransactions).toBe(0);
      expect([...stub.countsByTid(id).values()].every((count) => count === 1)).toBe(true);
      expect(stub.countsByTid(id).size).toBe(40);
      expect(actions((await read(id)).history)).toEqual(['created', 'started', 'auto-paused', 'resumed', 'completed']);
    });

    it('counts failures in a row only: a success in between starts the count again', async () => {
      const tids = await insertTransactions(env.db, 30);
      // Every third rerun succeeds: never three failures in a row.
      stub.behave((req) => (tids.indexOf(req.parentId!) % 3 === 2 ? {} : DOWNSTREAM_DOWN));
      const id = await create({ tids, batchSize: 1, pauseAfterFailures: 3 });
      const task = await waitForTaskStatus(env.db, id, 'Completed', 'tasks', 30000);
      expect(actions(task.history)).toEqual(['created', 'started', 'completed']);
    });

    it('never pauses with pauseAfterFailures 0', async () => {
      stub.behave(DOWNSTREAM_DOWN);
      const tids = await insertTransactions(env.db, 25);
      const id = await create({ tids, batchSize: 5, pauseAfterFailures: 0 });
      const task = await waitForTaskStatus(env.db, id, 'Completed', 'tasks', 30000);
      expect(task.failureStreak).toBe(25);
      expect(actions(task.history)).toEqual(['created', 'started', 'completed']);
    });
  });

  describe('scheduled start', () => {
    it('starts nothing before startAt, then runs the task', async () => {
      const tids = await insertTransactions(env.db, 6);
      const startAt = new Date(Date.now() + 2500);
      const id = await create({ tids, batchSize: 2, startAt: startAt.toISOString() });
      expect((await read(id)).startAt).toBe(startAt.toISOString());
      const task = await waitForTaskStatus(env.db, id, 'Completed', 'tasks', 30000);
      const first = Math.min(...stub.forTask(id).map((req) => req.arrivedAt));
      expect(first).toBeGreaterThanOrEqual(startAt.getTime());
      const started = (task.history as Array<{ action: string; at: Date }>).find(
        (entry) => entry.action === 'started',
      )!;
      expect(started.at.getTime()).toBeGreaterThanOrEqual(startAt.getTime());
      expect(stub.countsByTid(id).size).toBe(6);
    });

    it('starts at once when startAt is past', async () => {
      const tids = await insertTransactions(env.db, 3);
      const id = await create({ tids, startAt: '2020-01-01T00:00:00Z' });
      await waitForTaskStatus(env.db, id, 'Completed', 'tasks', 15000);
    });

    it('can be paused, resumed and cancelled before it starts', async () => {
      const tids = await insertTransactions(env.db, 4);
      const startAt = new Date(Date.now() + 3000);
      const resumed = await create({ tids: tids.slice(0, 2), startAt: startAt.toISOString() });
      const cancelled = await create({ tids: tids.slice(2), startAt: startAt.toISOString() });
      await put(resumed, 'Paused');
      await put(resumed, 'Queued');
      await put(cancelled, 'Cancelled');
      await waitForTaskStatus(env.db, resumed, 'Completed', 'tasks', 30000);
      expect(Math.min(...stub.forTask(resumed).map((req) => req.arrivedAt))).toBeGreaterThanOrEqual(startAt.getTime());
      await sleep(Math.max(0, startAt.getTime() + 1000 - Date.now()));
      expect(stub.forTask(cancelled)).toEqual([]);
      expect((await readTask(env.db, cancelled))!.status).toBe('Cancelled');
    });

    it('keeps its time when Redis loses every job (the time is in MongoDB; the sweeper brings the lanes back)', async () => {
      const tids = await insertTransactions(env.db, 3);
      const startAt = new Date(Date.now() + 2000);
      const id = await create({ tids, startAt: startAt.toISOString() });
      // Redis loses every job (a restart without persistence); the task is still there.
      await env.redis.stop();
      await env.redis.start();
      const task = await waitForTaskStatus(env.db, id, 'Completed', 'tasks', 30000);
      expect(Math.min(...stub.forTask(id).map((req) => req.arrivedAt))).toBeGreaterThanOrEqual(startAt.getTime());
      expect(task.startedAt.getTime()).toBeGreaterThanOrEqual(startAt.getTime());
    });
  });

  it('keeps a task of ours not yet started out of the gate even when a lane is scheduled for it', async () => {
    // A lane job for a task whose startAt is ahead (the sweeper, a resume): it takes no item.
    const tids = await insertTransactions(env.db, 2);
    const id = await create({ tids, paused: true, startAt: new Date(Date.now() + 60_000).toISOString() });
    await env.db.collection('tasks').updateOne({ _id: new ObjectId(id) }, { $set: { status: 'Queued' } });
    await sleep(1500);
    expect(stub.forTask(id)).toEqual([]);
    expect((await readTask(env.db, id))!).toMatchObject({ status: 'Queued', nextSeq: 0 });
    expect(secondWorker).toBeDefined();
  });

  it('keeps its time across restarts of the workers: one stopped before startAt, the next started after it', async () => {
    const own = await TestEnvironment.start();
    const ownStub = await OpenhimCoreStub.start(own.db);
    try {
      const settings = {
        RERUN_HOST: '127.0.0.1',
        RERUN_HTTP_PORT: String(ownStub.port),
        SWEEP_INTERVAL_MS: '300',
      };
      const api = await own.startApi(settings);
      const tids = await insertTransactions(own.db, 3);
      const startAt = new Date(Date.now() + 2000);
      const response = await request(api.baseUrl)
        .post('/tasks')
        .set('Authorization', ROOT_BASIC)
        .send({ tids, startAt: startAt.toISOString() })
        .expect(201);
      const id = /([0-9a-f]{24})$/.exec(response.text)![1];
      const first = await own.startWorker(settings);
      await sleep(500);
      await first.close();
      await sleep(Math.max(0, startAt.getTime() + 500 - Date.now()));
      expect(ownStub.forTask(id)).toEqual([]);
      await own.startWorker(settings);
      await waitForTaskStatus(own.db, id, 'Completed', 'tasks', 30000);
      expect(Math.min(...ownStub.forTask(id).map((req) => req.arrivedAt))).toBeGreaterThanOrEqual(startAt.getTime());
    } finally {
      await own.stop();
      await ownStub.close();
    }
  });
});

import { getQueueToken } from '@nestjs/bull';
import type { INestApplicationContext } from '@nestjs/common';
import type { Queue } from 'bull';
import { ObjectId } from 'mongodb';
import { laneJobId, RERUN_QUEUE } from '../../src/rerun/rerun.constants';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import { WorkerLifecycle } from '../../src/rerun/engine/worker-lifecycle';
import {
  insertCoreTask,
  insertTask,
  insertTransactions,
  readItems,
  readTask,
  waitForTaskStatus,
} from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';
import { TaskItemsRepository } from '../../src/database/repositories/task-items.repository';
import { TasksRepository } from '../../src/database/repositories/tasks.repository';

const ENGINE = {
  RERUN_TIMEOUT_MS: '5000',
  WORKER_LEASE_MS: '2000',
  // The stub stores each child as the request arrives: a short settle before a takeover resends.
  RERUN_RETRY_SETTLE_MS: '1000',
  SWEEP_INTERVAL_MS: '300',
  RERUN_ASYNC_POLL_MS: '100',
  WORKER_FLUSH_MS: '50',
  LOG_LEVEL: 'fatal',
};

/** Pause, resume, cancel, delete, adoption, Redis outages and shutdown, with in-process workers. */
describe('Rerun engine: task lifecycle', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let worker: INestApplicationContext;
  let scheduler: RerunScheduler;
  const engine = () => ({ ...ENGINE, RERUN_HOST: '127.0.0.1', RERUN_HTTP_PORT: String(stub.port) });

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    worker = await env.startWorker(engine());
    scheduler = worker.get(RerunScheduler);
  });

  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  beforeEach(() => stub.behave({ latencyMs: 20 }));

  const setStatus = async (taskId: string, status: string) =>
    env.db.collection('tasks').updateOne({ _id: new ObjectId(taskId) }, { $set: { status } });

  /** Lanes are gone when no lease is held and no item is in flight. */
  const idle = (taskId: string) =>
    waitFor(`task ${taskId} lanes to stop`, async () => {
      const task = await readTask(env.db, taskId);
      const items = await readItems(env.db, taskId);
      return task && task.leases.length === 0 && !items.some((item) => item.tstatus === 'Processing') ? task : null;
    });

  /** Every request of a task arrived for a distinct tid. */
  function expectOncePerTid(taskId: string, tids: string[]) {
    const counts = stub.countsByTid(taskId);
    expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    expect([...counts.keys()].sort()).toEqual([...tids].sort());
  }

  it('pause stops new reruns at once, resume continues where it stopped: every tid reaches core exactly once', async () => {
    const tids = await insertTransactions(env.db, 60);
    const taskId = await insertTask(env.db, tids, { batchSize: 4 });
    await scheduler.schedule(taskId, 4);
    await waitFor('20 reruns', () => stub.forTask(taskId).length >= 20);

    await setStatus(taskId, 'Paused');
    const pausedAt = Date.now();
    const paused = await idle(taskId);
    expect(paused.status).toBe('Paused');
    const sent = stub.forTask(taskId);
    // Only reruns that passed the gate before the pause may still arrive (one per slot at most).
    expect(sent.filter((request) => request.arrivedAt > pausedAt).length).toBeLessThanOrEqual(4);
    expect(sent.length).toBe(paused.nextSeq);
    expect(sent.length).toBeLessThan(60);
    const items = await readItems(env.db, taskId);
    expect(
      items
        .filter((item) => item.tstatus === 'Completed')
        .map((item) => item.tid)
        .sort(),
    ).toEqual(sent.map((r) => r.parentId).sort());
    expect(paused.remainingTransactions).toBe(60 - sent.length);

    await setStatus(taskId, 'Queued');
    await scheduler.schedule(taskId, 4);
    await waitForTaskStatus(env.db, taskId, 'Completed');
    expectOncePerTid(taskId, tids);
    // Items start in tids order: when one reaches core, at most batchSize - 1 earlier ones are still on their way.
    stub
      .forTask(taskId)
      .forEach((request, position) => expect(tids.indexOf(request.parentId!) - position).toBeLessThan(4));
  });

  it('cancel stops new reruns at once and sticks', async () => {
    const tids = await insertTransactions(env.db, 60);
    const taskId = await insertTask(env.db, tids, { batchSize: 3 });
    await scheduler.schedule(taskId, 3);
    await waitFor('10 reruns', () => stub.forTask(taskId).length >= 10);

    await setStatus(taskId, 'Cancelled');
    const cancelledAt = Date.now();
    const cancelled = await idle(taskId);
    const sent = stub.forTask(taskId);
    expect(sent.filter((request) => request.arrivedAt > cancelledAt).length).toBeLessThanOrEqual(3);
    expect(sent.length).toBe(cancelled.nextSeq);
    // The sweeper (every 300 ms) and a re-delivered job must not bring it back.
    await scheduler.schedule(taskId, 3);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await readTask(env.db, taskId)).toMatchObject({ status: 'Cancelled', nextSeq: cancelled.nextSeq });
    expect(stub.forTask(taskId)).toHaveLength(sent.length);
    expectOncePerTid(
      taskId,
      sent.map((request) => request.parentId!),
    );
  });

  it('delete mid-task: the lanes stop and nothing is written back', async () => {
    const tids = await insertTransactions(env.db, 60);
    const taskId = await insertTask(env.db, tids, { batchSize: 3 });
    await scheduler.schedule(taskId, 3);
    await waitFor('10 reruns', () => stub.forTask(taskId).length >= 10);

    await env.db.collection('tasks').deleteOne({ _id: new ObjectId(taskId) });
    await env.db.collection('taskitems').deleteMany({ taskId: new ObjectId(taskId) });
    const deletedAt = Date.now();
    await waitFor('in-flight reruns to end', async () => {
      await stub.settled();
      return stub.forTask(taskId).every((request) => request.arrivedAt + 500 < Date.now());
    });
    expect(stub.forTask(taskId).filter((request) => request.arrivedAt > deletedAt).length).toBeLessThanOrEqual(3);
    expect(await readTask(env.db, taskId)).toBeNull();
    expect(await readItems(env.db, taskId)).toEqual([]);
  });

  it('adopts a Queued task created by OpenHIM core (items embedded) through the sweeper and completes it', async () => {
    const tids = await insertTransactions(env.db, 8);
    const earlierRerun = new ObjectId().toHexString();
    const taskId = await insertCoreTask(
      env.db,
      tids.map((tid, index) =>
        index < 2 ? { tid, tstatus: 'Completed', rerunID: earlierRerun, rerunStatus: 'Successful' } : { tid },
      ),
      { batchSize: 2 },
    );
    const embedded = (await readTask(env.db, taskId))!.transactions as Array<{ _id: ObjectId }>;

    const task = await waitForTaskStatus(env.db, taskId, 'Completed');
    expect(task).toMatchObject({
      itemsStore: 'items',
      transactions: [],
      totalTransactions: 8,
      remainingTransactions: 0,
    });
    expectOncePerTid(taskId, tids.slice(2));
    const items = await readItems(env.db, taskId);
    expect(items.map((item) => String(item._id))).toEqual(embedded.map((entry) => String(entry._id)));
    expect(items.slice(0, 2).map(({ tstatus, rerunID }) => ({ tstatus, rerunID }))).toEqual([
      { tstatus: 'Completed', rerunID: earlierRerun },
      { tstatus: 'Completed', rerunID: earlierRerun },
    ]);
    expect(items.slice(2).every((item) => item.tstatus === 'Completed' && item.rerunStatus === 'Successful')).toBe(
      true,
    );
  });

  it('leaves a Paused task created by OpenHIM core alone', async () => {
    const tids = await insertTransactions(env.db, 2);
    const taskId = await insertCoreTask(
      env.db,
      tids.map((tid) => ({ tid })),
      { status: 'Paused' },
    );
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(await readTask(env.db, taskId)).toMatchObject({
      status: 'Paused',
      transactions: [{ tid: tids[0] }, { tid: tids[1] }],
    });
    expect(stub.forTask(taskId)).toEqual([]);
  });

  it('shows progress while the task runs', async () => {
    stub.behave({ latencyMs: 40 });
    const tids = await insertTransactions(env.db, 40);
    const taskId = await insertTask(env.db, tids, { batchSize: 2 });
    await scheduler.schedule(taskId, 2);
    const midway = await waitFor('progress to show', async () => {
      const task = await readTask(env.db, taskId);
      return task && task.status === 'Processing' && task.remainingTransactions < 30 ? task : null;
    });
    const completedItems = (await readItems(env.db, taskId)).filter((item) => item.tstatus === 'Completed').length;
    expect(completedItems).toBeGreaterThanOrEqual(10);
    expect(midway.remainingTransactions).toBeGreaterThan(0);
    await waitForTaskStatus(env.db, taskId, 'Completed');
  });

  it('runs many tasks at once: a long task does not hold every worker slot', async () => {
    const fair = await env.startWorker({
      ...engine(),
      WORKER_CONCURRENCY: '3',
      WORKER_SLICE_MS: '200',
      TASKS_COLLECTION: 'tasks_fair',
      QUEUE_PREFIX: 'fair',
    });
    const fairScheduler = fair.get(RerunScheduler);
    const longTask = await insertTask(env.db, await insertTransactions(env.db, 80), {
      batchSize: 3,
      collection: 'tasks_fair',
    });
    await fairScheduler.schedule(longTask, 3);
    await waitFor('the long task to start', () => stub.forTask(longTask).length >= 3);
    const shortTask = await insertTask(env.db, await insertTransactions(env.db, 3), {
      batchSize: 3,
      collection: 'tasks_fair',
    });
    await fairScheduler.schedule(shortTask, 3);
    await waitForTaskStatus(env.db, shortTask, 'Completed', 'tasks_fair');
    expect((await readTask(env.db, longTask, 'tasks_fair'))!.status).toBe('Processing');
    await waitForTaskStatus(env.db, longTask, 'Completed', 'tasks_fair');
    await fair.close();
  });

  it('carries on through a Redis restart: the sweeper restores the lost jobs and no item is lost or doubled', async () => {
    // Short time slices: lanes keep handing their jobs back to Redis, so the restart loses them for sure.
    const own = { TASKS_COLLECTION: 'tasks_redis', QUEUE_PREFIX: 'redis-restart' };
    const sliced = await env.startWorker({ ...engine(), ...own, WORKER_SLICE_MS: '150' });
    const tids = await insertTransactions(env.db, 80);
    const taskId = await insertTask(env.db, tids, { batchSize: 3, collection: own.TASKS_COLLECTION });
    await sliced.get(RerunScheduler).schedule(taskId, 3);
    await waitFor('15 reruns', () => stub.forTask(taskId).length >= 15);
    await env.redis.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const duringOutage = stub.forTask(taskId).length;
    await env.redis.start();
    await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION, 40000);
    expect(duringOutage).toBeLessThan(80);
    expectOncePerTid(taskId, tids);
    await sliced.close();
  });

  it("is not stuck by the empty job hashes a Redis restart can leave under its lanes' ids: the sweeper removes them and adds the lanes", async () => {
    // Bull takes a job id with BRPOPLPUSH, then runs its moveToActive script on another connection.
    // When Redis restarts in between, that script reaches the new, empty Redis and leaves a lock and
    // `processedOn` on a hash of its own: no job, in no list, and every later add of a job under
    // that id (the sweeper's, a lane's next slice) does nothing. Seen in the Redis restart test above:
    // "Unknown job __default__ (lane:...) dropped", then the task Processing with no lease, forever.
    const own = { TASKS_COLLECTION: 'tasks_husk', QUEUE_PREFIX: 'husk' };
    const tids = await insertTransactions(env.db, 20);
    const taskId = await insertTask(env.db, tids, { batchSize: 2, collection: own.TASKS_COLLECTION });
    const laneWorker = await env.startWorker({ ...engine(), ...own });
    const queue = laneWorker.get<Queue>(getQueueToken(RERUN_QUEUE));
    const husks = [0, 1].map((lane) => queue.toKey(laneJobId(taskId, lane)));
    for (const key of husks) {
      await queue.client.set(`${key}:lock`, 'a-lost-token', 'PX', 60000);
      await queue.client.hset(key, 'processedOn', Date.now());
    }
    await laneWorker.get(RerunScheduler).schedule(taskId, 2);

    await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION);
    expectOncePerTid(taskId, tids);
    // Whatever is under those ids now is a job (it has data: a lane still finishing), not a husk.
    for (const key of husks) {
      const [exists, hasData] = await Promise.all([queue.client.exists(key), queue.client.hexists(key, 'data')]);
      expect({ key, husk: exists === 1 && hasData === 0 }).toEqual({ key, husk: false });
    }
    await laneWorker.close();
  });

  it("finishes a task whose last lane died: in-flight items are matched to core's child transactions, the rest sent once", async () => {
    const [done, stored, lost, ungated] = await insertTransactions(env.db, 4);
    const taskId = new ObjectId();
    const startedAt = new Date(Date.now() - 5000);
    const storedChild = new ObjectId();
    await env.db.collection('transactions').insertMany([
      // Core received the in-flight rerun of `stored` before the worker died.
      {
        _id: storedChild,
        parentID: new ObjectId(stored),
        status: 'Successful',
        request: { timestamp: new Date(startedAt.getTime() + 20) },
      },
      // An older rerun of `lost`, from before the item started: not this item's.
      {
        _id: new ObjectId(),
        parentID: new ObjectId(lost),
        status: 'Failed',
        request: { timestamp: new Date(startedAt.getTime() - 60000) },
      },
    ]);
    await env.db.collection('taskitems').insertMany([
      { taskId, seq: 0, tid: done, tstatus: 'Completed', rerunStatus: 'Successful' },
      { taskId, seq: 1, tid: stored, tstatus: 'Processing', leaseId: 'dead-lease', startedAt },
      { taskId, seq: 2, tid: lost, tstatus: 'Processing', leaseId: 'dead-lease', startedAt },
      // The worker died between the gate and the claim.
      { taskId, seq: 3, tid: ungated, tstatus: 'Queued' },
    ]);
    await env.db.collection('tasks').insertOne({
      _id: taskId,
      status: 'Processing',
      transactions: [],
      created: new Date(),
      user: 'root@openhim.org',
      remainingTransactions: 3,
      totalTransactions: 4,
      batchSize: 2,
      itemsStore: 'items',
      nextSeq: 4,
      leases: [{ id: 'dead-lease', owner: 'gone:1:abc', until: new Date(Date.now() - 1000) }],
      asyncPending: 0,
    });

    // Nothing schedules it: the sweeper finds the expired lease.
    const task = await waitForTaskStatus(env.db, taskId.toHexString(), 'Completed');
    expect(task).toMatchObject({ remainingTransactions: 0, leases: [] });
    const requests = stub.forTask(taskId.toHexString());
    expect(requests.map((request) => request.parentId).sort()).toEqual([lost, ungated].sort());
    const items = await readItems(env.db, taskId.toHexString());
    const byTid = new Map(requests.map((request) => [request.parentId, request.childId]));
    expect(items.map(({ tstatus, rerunID, rerunStatus }) => ({ tstatus, rerunID, rerunStatus }))).toEqual([
      { tstatus: 'Completed', rerunID: undefined, rerunStatus: 'Successful' },
      { tstatus: 'Completed', rerunID: storedChild.toHexString(), rerunStatus: 'Successful' },
      { tstatus: 'Completed', rerunID: byTid.get(lost), rerunStatus: 'Successful' },
      { tstatus: 'Completed', rerunID: byTid.get(ungated), rerunStatus: 'Successful' },
    ]);
  });

  it('waits out a MongoDB outage mid-task: nothing is lost, doubled or miscounted', async () => {
    const tids = await insertTransactions(env.db, 60);
    const taskId = await insertTask(env.db, tids, { batchSize: 3 });
    await scheduler.schedule(taskId, 3);
    await waitFor('15 reruns', () => stub.forTask(taskId).length >= 15);
    await env.mongo.pause();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await env.mongo.resume();
    const task = await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks', 40000);
    expect(task).toMatchObject({ remainingTransactions: 0, leases: [] });
    expectOncePerTid(taskId, tids);
    const items = await readItems(env.db, taskId);
    expect(items.filter((item) => item.tstatus !== 'Completed' || item.rerunStatus !== 'Successful')).toEqual([]);
  });

  /**
   * The first call of any of `methods` of the worker's `repository` for `taskId` does its write but
   * its answer never comes, as the driver loses one issued on a connection the server has just
   * closed (src/database/driver/bounded.ts). Returns whether that happened and a restore.
   */
  function loseFirstAnswer<T extends object>(repository: T, methods: Array<keyof T>, taskId: string) {
    const state = { lost: false };
    for (const method of methods) {
      const real = repository[method] as (...args: unknown[]) => Promise<unknown>;
      (repository as Record<keyof T, unknown>)[method] = function (this: T, ...args: unknown[]) {
        const answer = real.apply(this, args);
        if (state.lost || String(args[0]) !== taskId) return answer;
        state.lost = true;
        answer.catch(() => undefined);
        return new Promise(() => undefined);
      };
    }
    const restore = () => methods.forEach((method) => delete (repository as Record<keyof T, unknown>)[method]);
    return { state, restore };
  }

  it('is not held by a gate whose answer never comes: the items it took are run when the task finishes, once each', async () => {
    const tids = await insertTransactions(env.db, 30);
    const taskId = await insertTask(env.db, tids, { batchSize: 3 });
    const { state, restore } = loseFirstAnswer(worker.get(TasksRepository), ['gate', 'gateMany'], taskId);
    try {
      await scheduler.schedule(taskId, 3);
      const task = await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks', 40000);
      expect(state.lost).toBe(true);
      expect(task).toMatchObject({ remainingTransactions: 0, leases: [] });
    } finally {
      restore();
    }
    expectOncePerTid(taskId, tids);
    const items = await readItems(env.db, taskId);
    expect(items.filter((item) => item.tstatus !== 'Completed' || item.rerunStatus !== 'Successful')).toEqual([]);
  });

  it('is not held by a claim whose answer never comes: its items are reconciled and sent once each', async () => {
    const tids = await insertTransactions(env.db, 30);
    const taskId = await insertTask(env.db, tids, { batchSize: 3 });
    const { state, restore } = loseFirstAnswer(worker.get(TaskItemsRepository), ['claim', 'claimMany'], taskId);
    try {
      await scheduler.schedule(taskId, 3);
      const task = await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks', 40000);
      expect(state.lost).toBe(true);
      expect(task).toMatchObject({ remainingTransactions: 0, leases: [] });
    } finally {
      restore();
    }
    expectOncePerTid(taskId, tids);
    const items = await readItems(env.db, taskId);
    expect(items.filter((item) => item.tstatus !== 'Completed' || item.rerunStatus !== 'Successful')).toEqual([]);
  });

  it('holds a task to batchSize slots however many lanes run for it', async () => {
    const tids = await insertTransactions(env.db, 40);
    const taskId = await insertTask(env.db, tids, { batchSize: 3 });
    // Ten lane jobs for three slots (takeover lanes for leases that never existed).
    await scheduler.schedule(taskId, 3);
    await Promise.all(Array.from({ length: 7 }, (_, i) => scheduler.takeover(taskId, `extra-${i}`)));
    let maxLeases = 0;
    await waitFor(
      'the task to complete',
      async () => {
        const task = await readTask(env.db, taskId);
        maxLeases = Math.max(maxLeases, task!.leases.length);
        return task!.status === 'Completed';
      },
      30000,
      5,
    );
    expect(maxLeases).toBeLessThanOrEqual(3);
    expect(stub.maxInFlight(taskId)).toBeLessThanOrEqual(3);
    expectOncePerTid(taskId, tids);
  });

  it('on close (SIGTERM), a worker finishes its reruns and hands its slots back to another worker at once', async () => {
    stub.behave({ latencyMs: 60 });
    // Its own queue and collection: the leaving worker surely holds the slots before the other starts.
    const own = { TASKS_COLLECTION: 'tasks_leaving', QUEUE_PREFIX: 'leaving' };
    const leaving = await env.startWorker({ ...engine(), ...own, WORKER_SHUTDOWN_MS: '5000' });
    const owner = leaving.get(WorkerLifecycle).owner;
    const tids = await insertTransactions(env.db, 60);
    const taskId = await insertTask(env.db, tids, { batchSize: 4, collection: own.TASKS_COLLECTION });
    await leaving.get(RerunScheduler).schedule(taskId, 4);
    await waitFor('the leaving worker to hold the slots', async () => {
      const task = await readTask(env.db, taskId, own.TASKS_COLLECTION);
      return task!.leases.length === 4 && stub.forTask(taskId).length >= 4;
    });
    const staying = await env.startWorker({ ...engine(), ...own });

    const closing = Date.now();
    await leaving.close();
    expect(Date.now() - closing).toBeLessThan(5000);
    const after = await readTask(env.db, taskId, own.TASKS_COLLECTION);
    expect(after!.leases.filter((lease: { owner: string }) => lease.owner === owner)).toEqual([]);
    await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION);
    expectOncePerTid(taskId, tids);
    await staying.close();
  });
});

import type { INestApplicationContext } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import { insertTask, insertTransactions, readItems, readTask, waitForTaskStatus } from '../support/database-fixtures';
import { OpenhimCoreStub, type StubBehaviour, type StubRequest } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';

/** How long a rerun answered without X-OpenHIM-TransactionID waits for its child to appear. */
const SETTLE_MS = 2000;

/**
 * Reruns OpenHIM core answers without `X-OpenHIM-TransactionID` although it stored their child
 * (core 8.5: the channel's primary route is down, a mediator's answer, its rerun authorisation
 * refusing): the item is linked to that child, as core's own task runner links it, and never sent
 * again. Only when no child appears within RERUN_RETRY_SETTLE_MS of the send did the rerun never
 * reach core.
 */
describe('Rerun engine: reruns answered without X-OpenHIM-TransactionID (outage linking)', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let worker: INestApplicationContext;
  let scheduler: RerunScheduler;

  const engine = (port: number) => ({
    RERUN_HOST: '127.0.0.1',
    RERUN_HTTP_PORT: String(port),
    RERUN_TIMEOUT_MS: '5000',
    RERUN_RETRY_WINDOW_MS: '30000',
    RERUN_RETRY_DELAY_MS: '100',
    RERUN_RETRY_SETTLE_MS: String(SETTLE_MS),
    WORKER_LEASE_MS: '2000',
    SWEEP_INTERVAL_MS: '300',
    WORKER_FLUSH_MS: '50',
  });

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    worker = await env.startWorker(engine(stub.port));
    scheduler = worker.get(RerunScheduler);
  });

  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  beforeEach(() => stub.behave({}));

  /** Runs a task to completion; `scheduledAt` is taken before anything of it can be sent. */
  async function run(
    tids: string[],
    batchSize = 1,
    on: { scheduler: RerunScheduler; collection?: string } = { scheduler },
  ): Promise<{ taskId: string; scheduledAt: number }> {
    const taskId = await insertTask(env.db, tids, { batchSize, collection: on.collection });
    const scheduledAt = Date.now();
    await on.scheduler.schedule(taskId, batchSize);
    await waitForTaskStatus(env.db, taskId, 'Completed', on.collection);
    await stub.settled();
    return { taskId, scheduledAt };
  }

  const view = (items: Array<Record<string, any>>) =>
    items.map(({ tid, tstatus, rerunID, rerunStatus, error }) => ({ tid, tstatus, rerunID, rerunStatus, error }));

  /** The child the stub stored for each tid's only request. */
  function childrenOf(taskId: string): Map<string, string | undefined> {
    return new Map(stub.forTask(taskId).map((request) => [request.parentId!, request.childId]));
  }

  it('links every rerun of a task run while the downstream is down to the child core stored (500, no header)', async () => {
    const tids = await insertTransactions(env.db, 6);
    // Core 8.5 keeps the taskID header on the child (as an ObjectId once cast, or as the string);
    // core 4.0.5's schema drops it. Each form is linked.
    const taskIdForms: Array<(request: StubRequest) => StubBehaviour['childTaskId']> = [
      (request) => new ObjectId(request.taskId),
      (request) => request.taskId,
      () => undefined,
    ];
    stub.behave((request) => ({
      status: 500,
      withoutTransactionId: true,
      childTaskId: taskIdForms[tids.indexOf(request.parentId!) % taskIdForms.length](request),
    }));
    const { taskId } = await run(tids, 3);

    // Each sent exactly once: core stored every one of them.
    expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
    const children = childrenOf(taskId);
    expect(view(await readItems(env.db, taskId))).toEqual(
      tids.map((tid) => ({
        tid,
        tstatus: 'Completed',
        rerunID: children.get(tid),
        rerunStatus: 'Failed',
        error: undefined,
      })),
    );
    for (const tid of tids) {
      expect(await env.db.collection('transactions').countDocuments({ parentID: new ObjectId(tid) })).toBe(1);
    }
    expect(await readTask(env.db, taskId)).toMatchObject({ status: 'Completed', remainingTransactions: 0 });
  });

  it('links at once: a child found right after the answer is not waited for', async () => {
    const tids = await insertTransactions(env.db, 2);
    stub.behave({ status: 500, withoutTransactionId: true });
    const { taskId } = await run(tids, 1);
    const arrivals = new Map(stub.forTask(taskId).map((request) => [request.parentId!, request.arrivedAt]));
    for (const item of await readItems(env.db, taskId)) {
      expect(item.rerunID).toBeDefined();
      expect(item.finishedAt.getTime() - arrivals.get(item.tid)!).toBeLessThan(SETTLE_MS);
    }
  });

  it("links a mediator's answer without the header (200, child Successful)", async () => {
    const tids = await insertTransactions(env.db, 3);
    stub.behave((request) => ({ status: 200, withoutTransactionId: true, childTaskId: new ObjectId(request.taskId) }));
    const { taskId } = await run(tids, 2);

    expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
    const children = childrenOf(taskId);
    expect(view(await readItems(env.db, taskId))).toEqual(
      tids.map((tid) => ({
        tid,
        tstatus: 'Completed',
        rerunID: children.get(tid),
        rerunStatus: 'Successful',
        error: undefined,
      })),
    );
  });

  it("links the 401 and 404 of core's rerun authorisation when core stored the child", async () => {
    const tids = await insertTransactions(env.db, 2);
    stub.behave((request) => ({ status: request.parentId === tids[0] ? 401 : 404, withoutTransactionId: true }));
    const { taskId } = await run(tids, 2);

    expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
    const children = childrenOf(taskId);
    expect(view(await readItems(env.db, taskId))).toEqual(
      tids.map((tid) => ({
        tid,
        tstatus: 'Completed',
        rerunID: children.get(tid),
        rerunStatus: 'Completed',
        error: undefined,
      })),
    );
  });

  it('does not link a child stored for another task: the rerun never reached core for ours, so it is sent again', async () => {
    const [tid] = await insertTransactions(env.db, 1);
    const otherTask = new ObjectId();
    let sent = 0;
    stub.behave(() =>
      ++sent === 1 ? { status: 500, withoutTransactionId: true, childTaskId: otherTask } : { status: 200 },
    );
    const { taskId, scheduledAt } = await run([tid], 1);

    const requests = stub.forTask(taskId);
    expect(requests).toHaveLength(2);
    // Concluded only once the settle time since the send had passed.
    expect(requests[1].arrivedAt - scheduledAt).toBeGreaterThanOrEqual(SETTLE_MS);
    const [item] = await readItems(env.db, taskId);
    expect(item).toMatchObject({ tstatus: 'Completed', rerunID: requests[1].childId, rerunStatus: 'Successful' });
    expect(item.error).toBeUndefined();
    expect(item.rerunID).not.toBe(requests[0].childId);
  });

  it('with no child stored: a 5xx is sent again after RERUN_RETRY_SETTLE_MS and accepted once; a 401 is recorded with the error', async () => {
    const [unstored, refused] = await insertTransactions(env.db, 2);
    const seen = new Map<string, number>();
    stub.behave((request) => {
      const times = (seen.get(request.parentId!) ?? 0) + 1;
      seen.set(request.parentId!, times);
      // Core's database away: it could store nothing and answers without the header.
      if (request.parentId === unstored && times === 1) return { mode: 'unavailable' };
      if (request.parentId === refused) return { mode: 'unavailable', status: 401 };
      return {};
    });
    const { taskId, scheduledAt } = await run([unstored, refused], 2);

    expect(stub.countsByTid(taskId)).toEqual(
      new Map([
        [unstored, 2],
        [refused, 1],
      ]),
    );
    expect(stub.acceptedByTid(taskId)).toEqual(new Map([[unstored, 1]]));
    const [first, again] = stub.forTask(taskId).filter((request) => request.parentId === unstored);
    expect(first.childId).toBeUndefined();
    expect(again.arrivedAt - scheduledAt).toBeGreaterThanOrEqual(SETTLE_MS);
    const items = await readItems(env.db, taskId);
    expect(view(items)).toEqual([
      { tid: unstored, tstatus: 'Completed', rerunID: again.childId, rerunStatus: 'Successful', error: undefined },
      {
        tid: refused,
        tstatus: 'Completed',
        rerunID: undefined,
        rerunStatus: 'Completed',
        error: 'OpenHIM answered 401 Unauthorized without X-OpenHIM-TransactionID',
      },
    ]);
    // Recorded only once no child had appeared within the settle time.
    expect(items[1].finishedAt.getTime() - scheduledAt).toBeGreaterThanOrEqual(SETTLE_MS);
  });

  it('links a child that appears after the answer, within the settle time, and never sends the rerun again', async () => {
    const tids = await insertTransactions(env.db, 2);
    stub.behave({ status: 500, withoutTransactionId: true, childStoredAfterMs: 300 });
    const { taskId } = await run(tids, 2);

    expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
    const children = childrenOf(taskId);
    expect(view(await readItems(env.db, taskId))).toEqual(
      tids.map((tid) => ({
        tid,
        tstatus: 'Completed',
        rerunID: children.get(tid),
        rerunStatus: 'Failed',
        error: undefined,
      })),
    );
  });

  it('stops when the task is paused while it waits for a child: nothing is sent until the resume, then once', async () => {
    const [tid] = await insertTransactions(env.db, 1);
    let sent = 0;
    stub.behave(() => (++sent === 1 ? { mode: 'unavailable' } : {}));
    const taskId = await insertTask(env.db, [tid], { batchSize: 1 });
    await scheduler.schedule(taskId, 1);
    await waitFor('the first rerun', () => stub.forTask(taskId).length === 1);
    await env.db.collection('tasks').updateOne({ _id: new ObjectId(taskId) }, { $set: { status: 'Paused' } });
    // Well past the settle time: no child appeared, but the task is paused, so it is not sent again.
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 1000));
    expect(stub.forTask(taskId)).toHaveLength(1);
    expect((await readItems(env.db, taskId))[0].tstatus).toBe('Processing');

    await env.db.collection('tasks').updateOne({ _id: new ObjectId(taskId) }, { $set: { status: 'Queued' } });
    await scheduler.schedule(taskId, 1);
    await waitForTaskStatus(env.db, taskId, 'Completed');
    const requests = stub.forTask(taskId);
    expect(requests).toHaveLength(2);
    expect(stub.acceptedByTid(taskId)).toEqual(new Map([[tid, 1]]));
    expect(await readItems(env.db, taskId)).toMatchObject([
      { tstatus: 'Completed', rerunID: requests[1].childId, rerunStatus: 'Successful' },
    ]);
  });

  it('leaves an item whose worker stops while it waits for a child to reconciliation, which links it', async () => {
    const own = { TASKS_COLLECTION: 'tasks_handover', QUEUE_PREFIX: 'handover' };
    const first = await env.startWorker({ ...engine(stub.port), ...own });
    const [tid] = await insertTransactions(env.db, 1);
    // The child shows up after the answer, while the first worker waits for it.
    stub.behave({ status: 500, withoutTransactionId: true, childStoredAfterMs: 500 });
    const taskId = await insertTask(env.db, [tid], { batchSize: 1, collection: own.TASKS_COLLECTION });
    await first.get(RerunScheduler).schedule(taskId, 1);
    await waitFor('the first rerun', () => stub.forTask(taskId).length === 1);
    await first.close();
    expect((await readItems(env.db, taskId))[0].tstatus).toBe('Processing');

    await env.startWorker({ ...engine(stub.port), ...own });
    await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION);
    await stub.settled();
    const requests = stub.forTask(taskId);
    expect(requests).toHaveLength(1);
    expect(await readItems(env.db, taskId)).toMatchObject([
      { tstatus: 'Completed', rerunID: requests[0].childId, rerunStatus: 'Failed' },
    ]);
    expect((await readItems(env.db, taskId))[0].error).toBeUndefined();
  });

  it('links the child with RERUN_RETRY_WINDOW_MS=0 too (one attempt, as core does)', async () => {
    const single = await env.startWorker({
      ...engine(stub.port),
      RERUN_RETRY_WINDOW_MS: '0',
      TASKS_COLLECTION: 'tasks_single',
      QUEUE_PREFIX: 'single',
    });
    try {
      const tids = await insertTransactions(env.db, 3);
      stub.behave((request) => ({
        status: 500,
        withoutTransactionId: true,
        childTaskId: new ObjectId(request.taskId),
      }));
      const { taskId } = await run(tids, 3, { scheduler: single.get(RerunScheduler), collection: 'tasks_single' });

      expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
      const children = childrenOf(taskId);
      expect(view(await readItems(env.db, taskId))).toEqual(
        tids.map((tid) => ({
          tid,
          tstatus: 'Completed',
          rerunID: children.get(tid),
          rerunStatus: 'Failed',
          error: undefined,
        })),
      );
    } finally {
      await single.close();
    }
  });
});

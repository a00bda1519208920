import type { INestApplicationContext } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import {
  insertChannel,
  insertTask,
  insertTransactions,
  readItems,
  readTask,
  waitForTaskStatus,
} from '../support/database-fixtures';
import { OpenhimCoreStub, type StubBehaviour } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { TcpStub } from '../support/tcp-stub';
import { TestEnvironment } from '../support/test-environment';

/** What reaches OpenHIM core for each rerun, and what the task records (spec §6). */
describe('Rerun engine: sending', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let worker: INestApplicationContext;
  let scheduler: RerunScheduler;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    worker = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      RERUN_TIMEOUT_MS: '1000',
      // One attempt per rerun, as OpenHIM core: these tests pin its recorded outcomes (retries below).
      RERUN_RETRY_WINDOW_MS: '0',
      WORKER_LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '300',
      RERUN_ASYNC_POLL_MS: '100',
      WORKER_FLUSH_MS: '50',
    });
    scheduler = worker.get(RerunScheduler);
  });

  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  beforeEach(() => stub.behave({}));

  async function run(tids: string[], batchSize = 1): Promise<string> {
    const taskId = await insertTask(env.db, tids, { batchSize });
    await scheduler.schedule(taskId, batchSize);
    await waitForTaskStatus(env.db, taskId, 'Completed');
    return taskId;
  }

  it('resends method, path, query, stored headers and body as OpenHIM core expects them', async () => {
    const clientID = new ObjectId();
    const storedHeaders = {
      'content-type': 'application/fhir+json',
      'x\uFF0Ecorrelation\uFF0Eid': 'abc',
      '\uFF04weird': 'dollar',
      host: 'original-host:5001',
      'content-length': '999',
      'transfer-encoding': 'chunked',
      connection: 'close',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic c2VjcmV0',
      authorization: 'Bearer kept',
    };
    const bodies = ['{"resourceType":"Patient","name":"Zoë"}', '<xml>put</xml>', '{"op":"patch"}'];
    const tids = await insertTransactions(env.db, 5, (index) => ({
      method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'][index],
      path: `/fhir/Patient/${index}`,
      querystring: index === 0 ? '_format=json&name=a%20b' : '',
      headers: storedHeaders,
      body: index >= 1 && index <= 3 ? bodies[index - 1] : 'never sent',
      clientID: index === 4 ? undefined : clientID,
    }));
    const taskId = await run(tids);

    const requests = stub.forTask(taskId);
    expect(requests.map((r) => [r.method, r.url, r.body])).toEqual([
      ['GET', '/fhir/Patient/0?_format=json&name=a%20b', ''],
      ['POST', '/fhir/Patient/1', bodies[0]],
      ['PUT', '/fhir/Patient/2', bodies[1]],
      ['PATCH', '/fhir/Patient/3', bodies[2]],
      ['DELETE', '/fhir/Patient/4', ''],
    ]);
    for (const [index, request] of requests.entries()) {
      expect(request.headers['content-type']).toBe('application/fhir+json');
      expect(request.headers['x.correlation.id']).toBe('abc');
      expect(request.headers.$weird).toBe('dollar');
      expect(request.headers.authorization).toBe('Bearer kept');
      expect(request.headers.host).toBe(`127.0.0.1:${stub.port}`);
      expect(request.headers['proxy-authorization']).toBeUndefined();
      expect(request.headers['transfer-encoding']).toBeUndefined();
      expect(request.headers.connection).toBe('keep-alive');
      expect(request.headers['keep-alive']).toBeUndefined();
      expect(request.headers.parentid).toBe(tids[index]);
      expect(request.headers.taskid).toBe(taskId);
      expect(request.rawHeaderNames).toEqual(expect.arrayContaining(['parentID', 'taskID']));
      if (index === 4) expect(request.headers.clientid).toBeUndefined();
      else expect(request.headers.clientid).toBe(clientID.toHexString());
      const hasBody = index >= 1 && index <= 3;
      expect(request.headers['content-length']).toBe(hasBody ? String(Buffer.byteLength(request.body)) : undefined);
    }

    const items = await readItems(env.db, taskId);
    expect(items.map((item) => [item.tid, item.tstatus, item.rerunID, item.rerunStatus, item.error])).toEqual(
      requests.map((request) => [request.parentId, 'Completed', request.childId, 'Successful', undefined]),
    );
    const task = await readTask(env.db, taskId);
    expect(task).toMatchObject({ status: 'Completed', remainingTransactions: 0, totalTransactions: 5, leases: [] });
    expect(task!.completedDate).toBeInstanceOf(Date);
  });

  it('sends a rerun again when the keep-alive connection it went out on had been closed by core', async () => {
    // Core closes an idle keep-alive connection (its keep-alive timeout) just as a rerun is written
    // onto it: the request is reset unread. Seen under CPU starvation as reruns that never arrived.
    const tids = await insertTransactions(env.db, 6);
    const dropped = new Set([tids[2], tids[4]]);
    const closedOnce = new Set<string>();
    stub.behave((request) => {
      if (request.onConnection > 0 && dropped.has(request.parentId!) && !closedOnce.has(request.parentId!)) {
        closedOnce.add(request.parentId!);
        return { mode: 'closed' };
      }
      return {};
    });
    const taskId = await run(tids, 1);

    expect([...closedOnce].sort()).toEqual([...dropped].sort());
    const counts = stub.countsByTid(taskId);
    expect(tids.map((tid) => counts.get(tid))).toEqual([1, 1, 1, 1, 1, 1]);
    const byTid = new Map(stub.forTask(taskId).map((request) => [request.parentId, request]));
    const items = await readItems(env.db, taskId);
    expect(
      items.map(({ tid, tstatus, rerunID, rerunStatus, error }) => [tid, tstatus, rerunID, rerunStatus, error]),
    ).toEqual(tids.map((tid) => [tid, 'Completed', byTid.get(tid)!.childId, 'Successful', undefined]));
  });

  it('does not send a rerun again when core stored its child before the connection broke', async () => {
    const tids = await insertTransactions(env.db, 3);
    let resetOnce = false;
    stub.behave((request) => {
      if (request.onConnection > 0 && request.parentId === tids[1] && !resetOnce) {
        resetOnce = true;
        return { mode: 'hang' };
      }
      return {};
    });
    const taskId = await insertTask(env.db, tids, { batchSize: 1 });
    await scheduler.schedule(taskId, 1);
    // Core stored the child, then the connection broke before any answer.
    const child = await waitFor('the child of the second rerun', () =>
      env.db.collection('transactions').findOne({ parentID: new ObjectId(tids[1]) }),
    );
    await stub.dropConnections();
    await waitForTaskStatus(env.db, taskId, 'Completed');

    expect(tids.map((tid) => stub.countsByTid(taskId).get(tid))).toEqual([1, 1, 1]);
    const items = await readItems(env.db, taskId);
    expect(items[1]).toMatchObject({ tstatus: 'Completed', rerunID: child._id.toHexString(), rerunStatus: 'Failed' });
  });

  it("records OpenHIM's outcomes: upstream 4xx/5xx, reset, timeout, not found, canRerun:false", async () => {
    const [ok, bad, failing, reset, hanging, noRerun] = await insertTransactions(env.db, 6, (index) => ({
      canRerun: index === 5 ? false : undefined,
    }));
    const missing = new ObjectId().toHexString();
    const notAnId = 'not-a-transaction-id';
    stub.behave((request) => {
      if (request.parentId === bad) return { status: 404 };
      if (request.parentId === failing) return { status: 500 };
      if (request.parentId === reset) return { mode: 'reset' };
      if (request.parentId === hanging) return { mode: 'hang' };
      return {};
    });
    const taskId = await run([ok, bad, failing, missing, reset, hanging, noRerun, notAnId], 3);

    const byTid = new Map(stub.forTask(taskId).map((request) => [request.parentId, request]));
    expect([...byTid.keys()].sort()).toEqual([ok, bad, failing, reset, hanging].sort());
    const items = await readItems(env.db, taskId);
    const view = items.map(({ tid, tstatus, rerunID, rerunStatus, error }) => ({
      tid,
      tstatus,
      rerunID,
      rerunStatus,
      error,
    }));
    expect(view).toEqual([
      { tid: ok, tstatus: 'Completed', rerunID: byTid.get(ok)!.childId, rerunStatus: 'Successful', error: undefined },
      { tid: bad, tstatus: 'Completed', rerunID: byTid.get(bad)!.childId, rerunStatus: 'Completed', error: undefined },
      {
        tid: failing,
        tstatus: 'Completed',
        rerunID: byTid.get(failing)!.childId,
        rerunStatus: 'Failed',
        error: undefined,
      },
      {
        tid: missing,
        tstatus: 'Failed',
        rerunID: undefined,
        rerunStatus: undefined,
        error: `Transaction ${missing} could not be found`,
      },
      {
        tid: reset,
        tstatus: 'Completed',
        rerunID: undefined,
        rerunStatus: 'Failed',
        error: expect.stringMatching(/socket hang up|ECONNRESET/),
      },
      // Core stored the child before it stopped answering: the item links it.
      {
        tid: hanging,
        tstatus: 'Completed',
        rerunID: byTid.get(hanging)!.childId,
        rerunStatus: 'Failed',
        error: 'No answer within 1000 ms (RERUN_TIMEOUT_MS)',
      },
      {
        tid: noRerun,
        tstatus: 'Failed',
        rerunID: undefined,
        rerunStatus: undefined,
        error: `Transaction ${noRerun} cannot be rerun as there isn't enough information about the request`,
      },
      {
        tid: notAnId,
        tstatus: 'Failed',
        rerunID: undefined,
        rerunStatus: undefined,
        error: `Transaction ${notAnId} could not be found`,
      },
    ]);
    expect(await readTask(env.db, taskId)).toMatchObject({ status: 'Completed', remainingTransactions: 0 });
  });

  it('records a refused connection as a completed item with rerunStatus Failed once RERUN_RETRY_WINDOW_MS is spent', async () => {
    const refusing = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(await closedPort()),
      RERUN_RETRY_WINDOW_MS: '700',
      RERUN_RETRY_DELAY_MS: '200',
      WORKER_LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '300',
      WORKER_FLUSH_MS: '50',
      // Its own tasks collection and queue: the main worker never sees this task.
      TASKS_COLLECTION: 'tasks_refused',
      QUEUE_PREFIX: 'refused',
    });
    const tids = await insertTransactions(env.db, 3);
    const taskId = await insertTask(env.db, tids, { batchSize: 2, collection: 'tasks_refused' });
    await refusing.get(RerunScheduler).schedule(taskId, 2);
    const startedAt = Date.now();
    await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks_refused');
    // Sent at 0, 200 and 600 ms; a fourth attempt (at 1400 ms) would overrun the window.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(600);
    const items = await readItems(env.db, taskId);
    expect(items.map(({ tstatus, rerunStatus, error }) => ({ tstatus, rerunStatus, error }))).toEqual(
      tids.map(() => ({ tstatus: 'Completed', rerunStatus: 'Failed', error: expect.stringContaining('ECONNREFUSED') })),
    );
    await refusing.close();
  });

  it('keeps an item answered 202 in flight, the task Pending Async, until the child transaction is final', async () => {
    const [sync, async1, async2] = await insertTransactions(env.db, 3);
    stub.behave((request) => (request.parentId === sync ? {} : { mode: 'async' }));
    const taskId = await insertTask(env.db, [sync, async1, async2], { batchSize: 2 });
    await scheduler.schedule(taskId, 2);

    const pending = await waitForTaskStatus(env.db, taskId, 'Pending Async');
    expect(pending.remainingTransactions).toBe(2);
    expect(pending.asyncPending).toBe(2);
    const byTid = new Map(stub.forTask(taskId).map((request) => [request.parentId, request]));
    let items = await readItems(env.db, taskId);
    expect(items.map(({ tstatus, rerunID, rerunStatus }) => ({ tstatus, rerunID, rerunStatus }))).toEqual([
      { tstatus: 'Completed', rerunID: byTid.get(sync)!.childId, rerunStatus: 'Successful' },
      { tstatus: 'Processing', rerunID: byTid.get(async1)!.childId, rerunStatus: 'Pending Async' },
      { tstatus: 'Processing', rerunID: byTid.get(async2)!.childId, rerunStatus: 'Pending Async' },
    ]);

    await stub.completeAsync(byTid.get(async1)!.childId!, 'Completed with error(s)');
    await waitFor(
      'the first async item to finish',
      async () => (await readItems(env.db, taskId))[1].tstatus === 'Completed',
    );
    expect((await readTask(env.db, taskId))!.status).toBe('Pending Async');
    await stub.completeAsync(byTid.get(async2)!.childId!, 'Successful');
    const done = await waitForTaskStatus(env.db, taskId, 'Completed');
    expect(done).toMatchObject({ remainingTransactions: 0, asyncPending: 0 });
    items = await readItems(env.db, taskId);
    expect(items.map((item) => item.rerunStatus)).toEqual(['Successful', 'Completed with error(s)', 'Successful']);
    expect(stub.forTask(taskId)).toHaveLength(3);
  });

  it('gives up waiting for an asynchronous rerun after RERUN_ASYNC_TIMEOUT_MS, with the error recorded', async () => {
    const impatient = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      WORKER_LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '300',
      RERUN_ASYNC_POLL_MS: '100',
      RERUN_ASYNC_TIMEOUT_MS: '500',
      WORKER_FLUSH_MS: '50',
      TASKS_COLLECTION: 'tasks_impatient',
      QUEUE_PREFIX: 'impatient',
    });
    stub.behave({ mode: 'async' });
    const tids = await insertTransactions(env.db, 1);
    const taskId = await insertTask(env.db, tids, { collection: 'tasks_impatient' });
    await impatient.get(RerunScheduler).schedule(taskId, 1);
    await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks_impatient');
    const [item] = await readItems(env.db, taskId);
    expect(item).toMatchObject({
      tstatus: 'Completed',
      rerunID: stub.forTask(taskId)[0].childId,
      rerunStatus: 'Pending Async',
      error: `Rerun ${stub.forTask(taskId)[0].childId} did not reach a final status within 500 ms (RERUN_ASYNC_TIMEOUT_MS)`,
    });
    await impatient.close();
  });

  it('keeps the slot of a rerun that takes longer than the lease (renewed while in flight)', async () => {
    const patient = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      RERUN_TIMEOUT_MS: '10000',
      WORKER_LEASE_MS: '1000',
      SWEEP_INTERVAL_MS: '300',
      WORKER_FLUSH_MS: '50',
      TASKS_COLLECTION: 'tasks_patient',
      QUEUE_PREFIX: 'patient',
    });
    stub.behave({ latencyMs: 2500 });
    const tids = await insertTransactions(env.db, 2);
    const taskId = await insertTask(env.db, tids, { collection: 'tasks_patient' });
    await patient.get(RerunScheduler).schedule(taskId, 1);
    const leaseIds = new Set<string>();
    await waitFor(
      'the task to complete',
      async () => {
        const task = await readTask(env.db, taskId, 'tasks_patient');
        for (const lease of task!.leases) leaseIds.add(lease.id);
        return task!.status === 'Completed';
      },
      30000,
      100,
    );
    // One slot, one lease, never expired and taken over: each rerun sent once, recorded by its own lane.
    expect(leaseIds.size).toBe(1);
    expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
    const items = await readItems(env.db, taskId);
    expect(items.map((item) => item.rerunStatus)).toEqual(['Successful', 'Successful']);
    await patient.close();
  });

  it('sends the stored body of a tcp or tls channel over a raw socket to tcpHost:tcpPort', async () => {
    const tcp = await TcpStub.start((received) => `ACK ${received.length}`);
    try {
      const tcpChannel = await insertChannel(env.db, { type: 'tcp', tcpHost: '127.0.0.1', tcpPort: tcp.port });
      const tlsChannel = await insertChannel(env.db, { type: 'tls', tcpHost: '127.0.0.1', tcpPort: tcp.port });
      const noAddress = await insertChannel(env.db, { type: 'tcp' });
      const httpChannel = await insertChannel(env.db, { type: 'http' });
      const tids = await insertTransactions(env.db, 4, (index) => ({
        channelID: [tcpChannel, tlsChannel, noAddress, httpChannel][index],
        body: `MSH|^~\\&|message ${index}`,
        method: 'POST',
      }));
      const taskId = await run(tids);
      expect(tcp.exchanges.map((exchange) => exchange.received).sort()).toEqual([
        'MSH|^~\\&|message 0',
        'MSH|^~\\&|message 1',
      ]);
      expect(stub.forTask(taskId).map((request) => request.parentId)).toEqual([tids[3]]);
      const items = await readItems(env.db, taskId);
      expect(items.map(({ tstatus, rerunStatus, error }) => ({ tstatus, rerunStatus, error }))).toEqual([
        { tstatus: 'Completed', rerunStatus: 'Completed', error: undefined },
        { tstatus: 'Completed', rerunStatus: 'Completed', error: undefined },
        {
          tstatus: 'Failed',
          rerunStatus: undefined,
          error: `Transaction ${tids[2]} cannot be rerun as its tcp channel has no tcpHost/tcpPort`,
        },
        { tstatus: 'Completed', rerunStatus: 'Successful', error: undefined },
      ]);
    } finally {
      await tcp.close();
    }
  });

  describe('a rerun that never reached core is sent again, with backoff, within RERUN_RETRY_WINDOW_MS', () => {
    const own = { TASKS_COLLECTION: 'tasks_retry', QUEUE_PREFIX: 'retry' };
    const retrying = {
      RERUN_HOST: '127.0.0.1',
      RERUN_TIMEOUT_MS: '1000',
      RERUN_RETRY_WINDOW_MS: '30000',
      RERUN_RETRY_DELAY_MS: '200',
      // This stub never stores a child late: no need to wait long before concluding there is none.
      RERUN_RETRY_SETTLE_MS: '500',
      WORKER_LEASE_MS: '2000',
      SWEEP_INTERVAL_MS: '300',
      WORKER_FLUSH_MS: '50',
      ...own,
    };
    let retryScheduler: RerunScheduler;

    beforeAll(async () => {
      const retryWorker = await env.startWorker({ ...retrying, RERUN_HTTP_PORT: String(stub.port) });
      retryScheduler = retryWorker.get(RerunScheduler);
    });

    async function runOwn(tids: string[], batchSize: number): Promise<string> {
      const taskId = await insertTask(env.db, tids, { batchSize, collection: own.TASKS_COLLECTION });
      await retryScheduler.schedule(taskId, batchSize);
      await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION);
      return taskId;
    }

    it('resets, stalls and 5xx answers without a stored child: retried until core accepts each rerun exactly once', async () => {
      const tids = await insertTransactions(env.db, 9);
      const seen = new Map<string, number>();
      const faults: StubBehaviour[] = [
        { mode: 'reset' },
        { mode: 'stall' },
        { mode: 'reset' },
        { mode: 'closed' },
        { mode: 'stall' },
      ];
      // Core itself failed before storing anything (its database away): 503, no X-OpenHIM-TransactionID.
      const unstored = new Set<string>();
      stub.behave((request) => {
        const index = tids.indexOf(request.parentId!);
        const times = (seen.get(request.parentId!) ?? 0) + 1;
        seen.set(request.parentId!, times);
        if (index % 3 === 0 && times <= 2) return faults[(index + times) % faults.length];
        if (index % 3 === 1 && times === 1) {
          unstored.add(request.parentId!);
          return { mode: 'unavailable' };
        }
        return {};
      });
      const taskId = await runOwn(tids, 3);

      expect(stub.acceptedByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
      expect(stub.countsByTid(taskId).get(tids[0])).toBe(3);
      expect(unstored.size).toBe(3);
      const accepted = new Map(
        stub
          .forTask(taskId)
          .filter((request) => request.childId)
          .map((request) => [request.parentId, request.childId]),
      );
      const items = await readItems(env.db, taskId);
      expect(
        items.map(({ tid, tstatus, rerunID, rerunStatus, error }) => ({ tid, tstatus, rerunID, rerunStatus, error })),
      ).toEqual(
        tids.map((tid) => ({
          tid,
          tstatus: 'Completed',
          rerunID: accepted.get(tid),
          rerunStatus: 'Successful',
          error: undefined,
        })),
      );
      for (const tid of tids) {
        expect(await env.db.collection('transactions').countDocuments({ parentID: new ObjectId(tid) })).toBe(1);
      }
    });

    it('never sends again a rerun whose child core stored before the connection broke', async () => {
      const tids = await insertTransactions(env.db, 2);
      stub.behave((request) => (request.parentId === tids[0] ? { mode: 'hang' } : {}));
      const taskId = await runOwn(tids, 1);
      expect(stub.countsByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
      const [hung] = await readItems(env.db, taskId);
      expect(hung).toMatchObject({
        tstatus: 'Completed',
        rerunID: stub.forTask(taskId)[0].childId,
        rerunStatus: 'Failed',
        error: 'No answer within 1000 ms (RERUN_TIMEOUT_MS)',
      });
    });

    it('rides through core refusing connections for a while: every rerun accepted once when it is back', async () => {
      const port = await closedPort();
      const refusedFirst = await env.startWorker({
        ...retrying,
        RERUN_HTTP_PORT: String(port),
        TASKS_COLLECTION: 'tasks_retry_refused',
        QUEUE_PREFIX: 'retry-refused',
      });
      const tids = await insertTransactions(env.db, 4);
      const taskId = await insertTask(env.db, tids, { batchSize: 2, collection: 'tasks_retry_refused' });
      await refusedFirst.get(RerunScheduler).schedule(taskId, 2);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await readItems(env.db, taskId)).map((item) => item.tstatus)).toEqual([
        'Processing',
        'Processing',
        'Queued',
        'Queued',
      ]);
      const lateCore = await OpenhimCoreStub.start(env.db, port);
      try {
        await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks_retry_refused');
        expect(lateCore.acceptedByTid(taskId)).toEqual(new Map(tids.map((tid) => [tid, 1])));
        const items = await readItems(env.db, taskId);
        expect(items.map((item) => [item.tstatus, item.rerunStatus, item.error])).toEqual(
          tids.map(() => ['Completed', 'Successful', undefined]),
        );
      } finally {
        await refusedFirst.close();
        await lateCore.close();
      }
    });

    it('stops retrying when the task is paused, and the item is sent once after the resume', async () => {
      const tids = await insertTransactions(env.db, 1);
      stub.behave({ mode: 'reset' });
      const taskId = await insertTask(env.db, tids, { batchSize: 1, collection: own.TASKS_COLLECTION });
      await retryScheduler.schedule(taskId, 1);
      await waitFor('a first reset', () => stub.forTask(taskId).length >= 1);
      await env.db
        .collection(own.TASKS_COLLECTION)
        .updateOne({ _id: new ObjectId(taskId) }, { $set: { status: 'Paused' } });
      const attemptsWhenPaused = stub.forTask(taskId).length;
      await new Promise((resolve) => setTimeout(resolve, 2500));
      // At most the attempt already under way when the pause landed.
      expect(stub.forTask(taskId).length).toBeLessThanOrEqual(attemptsWhenPaused + 1);

      stub.behave({});
      await env.db
        .collection(own.TASKS_COLLECTION)
        .updateOne({ _id: new ObjectId(taskId) }, { $set: { status: 'Queued' } });
      await retryScheduler.schedule(taskId, 1);
      await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION);
      expect(stub.acceptedByTid(taskId)).toEqual(new Map([[tids[0], 1]]));
    });
  });

  it("respects a task's ratePerSecond across its lanes", async () => {
    const tids = await insertTransactions(env.db, 12);
    const taskId = await insertTask(env.db, tids, { batchSize: 4, ratePerSecond: 10 });
    await scheduler.schedule(taskId, 4);
    await waitForTaskStatus(env.db, taskId, 'Completed');
    const arrivals = stub.forTask(taskId).map((request) => request.arrivedAt);
    expect(arrivals).toHaveLength(12);
    // 12 starts at 10/s: at least 11 intervals of 100 ms (generous lower bound for timer jitter).
    expect(arrivals[arrivals.length - 1] - arrivals[0]).toBeGreaterThanOrEqual(1000);
  });
});

async function closedPort(): Promise<number> {
  const { findFreePort } = await import('../../src/common/net/free-port');
  return findFreePort();
}

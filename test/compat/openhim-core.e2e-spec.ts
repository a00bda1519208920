import type { INestApplicationContext } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { createWorkerApplication } from '../../src/bootstrap/applications';
import { createClientAndChannel, originalBody, ROOT, routeRequests } from './openhim-core/core-fixtures';
import { CORE_VERSION, OpenhimCore } from './openhim-core/core-process';
import { Upstream } from './openhim-core/upstream';
import { apiCall } from '../support/http';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';
import { ensureBuilt, WorkerProcess } from '../support/worker-process';

/**
 * Short leases and sweeps so that a killed worker's work is picked up within seconds; core's
 * database stays up, so it stores each child as the request arrives and a short settle will do.
 */
const ENGINE = {
  WORKER_LEASE_MS: '2000',
  RERUN_RETRY_SETTLE_MS: '1000',
  SWEEP_INTERVAL_MS: '300',
  WORKER_FLUSH_MS: '50',
  LOG_LEVEL: 'warn',
};

/**
 * End to end against a real OpenHIM core 4.0.5 (the npm package) on the embedded MongoDB-compatible
 * server: core routes real requests to an upstream and stores its own transactions; our API and
 * workers rerun them through core's rerun port, with core's own task runner switched off.
 */
describe(`Against a real OpenHIM core ${CORE_VERSION}`, () => {
  let env: TestEnvironment;
  let core: OpenhimCore;
  let upstream: Upstream;
  let apiUrl: string;
  let engine: Record<string, string>;

  beforeAll(async () => {
    const built = ensureBuilt(); // the kill test runs dist/main.worker.js
    env = await TestEnvironment.start();
    core = await OpenhimCore.start({ mongoUri: env.mongoUri });
    upstream = await Upstream.start();
    await createClientAndChannel(core, env.db, upstream.port);
    engine = { ...ENGINE, RERUN_HOST: '127.0.0.1', RERUN_HTTP_PORT: String(core.ports.rerun) };
    ({ baseUrl: apiUrl } = await env.startApi(engine, { withWorker: false }));
    await built;
  }, 120000);

  afterAll(async () => {
    await core?.stop();
    await upstream?.close();
    await env?.stop();
  });

  const transactions = () => env.db.collection('transactions');

  async function createTask(body: object): Promise<string> {
    const answer = await apiCall(apiUrl, ROOT, '/tasks', { method: 'POST', body });
    expect(answer.status).toBe(201);
    const match = answer.body.match(/^User root@openhim\.org created task with id ([0-9a-f]{24})$/);
    expect(match).not.toBeNull();
    return match![1];
  }

  async function readTask(taskId: string): Promise<Record<string, any>> {
    const answer = await apiCall(apiUrl, ROOT, `/tasks/${taskId}?filterPage=0&filterLimit=1000&filters=%7B%7D`);
    expect(answer.status).toBe(200);
    return JSON.parse(answer.body);
  }

  const completed = (taskId: string, timeoutMs = 60000) =>
    waitFor(
      `task ${taskId} to complete`,
      async () => {
        const task = await readTask(taskId);
        return task.status === 'Completed' ? task : undefined;
      },
      timeoutMs,
    );

  /** How many requests with this tag the upstream received. */
  const arrivals = (tag: string) => upstream.requests.filter((request) => request.url.includes(`tag=${tag}&`)).length;

  /**
   * What the issue asks of every rerun: the upstream got each original body exactly twice (the
   * original and one rerun), every original has exactly one child linked both ways, and our task's
   * items carry the child's id and the status core gave it.
   */
  async function expectEachRerunOnce(taskId: string, tag: string, tids: string[]): Promise<void> {
    const counts = new Map(tids.map((_, i) => [originalBody(tag, i), 0]));
    for (const request of upstream.requests)
      if (counts.has(request.body)) counts.set(request.body, counts.get(request.body)! + 1);
    expect([...counts.entries()].filter(([, n]) => n !== 2)).toEqual([]);

    const task = await readTask(taskId);
    expect(task).toMatchObject({ status: 'Completed', remainingTransactions: 0, totalTransactions: tids.length });
    const items = new Map<string, Record<string, any>>(
      task.transactions.map((item: Record<string, any>) => [item.tid, item]),
    );
    expect(items.size).toBe(tids.length);

    for (const [i, tid] of tids.entries()) {
      const original = await transactions().findOne({ _id: new ObjectId(tid) });
      const children = await transactions()
        .find({ parentID: new ObjectId(tid) })
        .toArray();
      expect(children).toHaveLength(1);
      const [child] = children;
      expect(original!.childIDs.map(String)).toEqual([child._id.toHexString()]);
      expect(child).toMatchObject({
        status: 'Successful',
        request: { method: 'POST', path: '/e2e/patients', body: originalBody(tag, i) },
      });
      expect(child.request.querystring).toBe(original!.request.querystring);
      // The upstream saw the rerun as core's child transaction.
      const rerun = upstream.requests.find(
        (request) => request.headers['x-openhim-transactionid'] === child._id.toHexString(),
      );
      expect(rerun?.body).toBe(originalBody(tag, i));
      expect(items.get(tid)).toMatchObject({
        tstatus: 'Completed',
        rerunID: child._id.toHexString(),
        rerunStatus: child.status,
      });
    }
  }

  describe('with an in-process worker', () => {
    let worker: INestApplicationContext;

    beforeAll(async () => {
      // Not through env.startWorker: this one must be gone before the worker processes start.
      worker = await createWorkerApplication(env.config(engine));
    });

    afterAll(async () => {
      await worker?.close();
    });

    it("reruns core's own transactions through core's rerun port: each reaches the upstream once more, linked and recorded", async () => {
      const tids = await routeRequests(core, env.db, 'inproc', 30);
      expect(arrivals('inproc')).toBe(30);

      const taskId = await createTask({ tids, batchSize: 4 });
      await completed(taskId);

      expect(arrivals('inproc')).toBe(60);
      await expectEachRerunOnce(taskId, 'inproc', tids);
    });

    it("runs a task created through core's own API (its runner is off): each transaction reaches the upstream once more", async () => {
      const tids = await routeRequests(core, env.db, 'coretask', 6);
      const created = await apiCall(core.apiUrl, ROOT, '/tasks', { method: 'POST', body: { tids, batchSize: 2 } });
      expect(created.status).toBe(201);
      const taskId = created.body.match(/created task with id ([0-9a-f]{24})$/)![1];

      // Our sweeper adopts core's Queued task.
      await completed(taskId);
      await expectEachRerunOnce(taskId, 'coretask', tids);

      // Core's API sees it completed. Adoption moved its items to `taskitems` and emptied the
      // embedded array, so core's API lists none (the 'task-storage' row of differences.ts).
      const coreView = await apiCall(core.apiUrl, ROOT, `/tasks/${taskId}?filterPage=0&filterLimit=10&filters=%7B%7D`);
      expect(coreView.status).toBe(200);
      expect(JSON.parse(coreView.body)).toMatchObject({
        status: 'Completed',
        remainingTransactions: 0,
        totalTransactions: 6,
        transactions: [],
        totalFilteredTransactions: 0,
      });
    });
  });

  describe('with worker processes, one SIGKILLed mid-task', () => {
    const workers: WorkerProcess[] = [];

    afterAll(async () => {
      await Promise.all(workers.map((worker) => worker.kill('SIGTERM')));
    });

    it('another worker finishes the task: still each transaction reaches the upstream exactly once more', async () => {
      const count = 24;
      const tids = await routeRequests(core, env.db, 'kill', count);
      // A slow upstream keeps reruns in flight inside core when the kill lands.
      upstream.latencyMs = 150;

      // So far nothing went wrong in core; from the kill on, it logs the dead worker's reset sockets.
      expect(core.errors()).toEqual([]);
      const first = await WorkerProcess.start(env, engine);
      workers.push(first);
      const taskId = await createTask({ tids, batchSize: 3 });
      await waitFor('the first reruns', async () => arrivals('kill') - count >= 6, 30000);
      expect(await first.kill('SIGKILL')).toBeNull(); // killed by the signal, not exited
      const doneBeforeKill = arrivals('kill') - count;
      expect(doneBeforeKill).toBeLessThan(count);
      // The kill landed mid-rerun: items the dead worker had started are left Processing.
      const inFlight = await apiCall(
        apiUrl,
        ROOT,
        `/tasks/${taskId}?filterPage=0&filterLimit=0&filters=${encodeURIComponent('{"tstatus":"Processing"}')}`,
      );
      expect(JSON.parse(inFlight.body).totalFilteredTransactions).toBeGreaterThanOrEqual(1);

      const second = await WorkerProcess.start(env, engine);
      workers.push(second);
      await completed(taskId);
      upstream.latencyMs = 0;

      expect(arrivals('kill')).toBe(2 * count);
      await expectEachRerunOnce(taskId, 'kill', tids);
      expect(second.log).not.toMatch(/"level":(50|60)/);
    }, 150000); // two worker starts (30 s each at worst) and a 60 s completion wait
  });

  it('core stayed healthy: nothing in its log went wrong, and its own task runner never started', () => {
    // `read ECONNRESET`: the SIGKILLed worker's connections to core's rerun port (core logs each).
    expect(core.errors().filter((entry) => !/message=read ECONNRESET/.test(entry))).toEqual([]);
    expect(core.log).not.toContain('Started rerun task processor');
  });
});

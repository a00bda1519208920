import { insertTask, insertTransactions, readItems, readTask, waitForTaskStatus } from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';
import { ensureBuilt, openScheduler, WorkerProcess } from '../support/worker-process';

const ENGINE = {
  WORKER_LEASE_MS: '2000',
  // The stub stores each child as the request arrives: a short settle before a takeover resends.
  RERUN_RETRY_SETTLE_MS: '1000',
  SWEEP_INTERVAL_MS: '300',
  WORKER_FLUSH_MS: '50',
  LOG_LEVEL: 'fatal',
};

/** Scale-out and crashes with real worker processes (`node dist/main.worker.js`). */
describe('Rerun engine: worker processes', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  const processes: WorkerProcess[] = [];
  const engine = () => ({ ...ENGINE, RERUN_HOST: '127.0.0.1', RERUN_HTTP_PORT: String(stub.port) });
  const startProcess = async (overrides: Record<string, string> = {}) => {
    const worker = await WorkerProcess.start(env, { ...engine(), ...overrides });
    processes.push(worker);
    return worker;
  };

  beforeAll(async () => {
    await ensureBuilt();
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
  }, 180000);

  afterAll(async () => {
    await Promise.all(processes.map((worker) => worker.kill('SIGKILL')));
    await env?.stop();
    await stub?.close();
  });

  beforeEach(() => stub.behave({ latencyMs: 30 }));

  function expectOncePerTid(taskId: string, tids: string[]) {
    const counts = stub.countsByTid(taskId);
    expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    expect([...counts.keys()].sort()).toEqual([...tids].sort());
  }

  describe('two worker processes', () => {
    let producer: ReturnType<typeof openScheduler>;
    let workers: WorkerProcess[];

    beforeAll(async () => {
      workers = await Promise.all([startProcess(), startProcess()]);
      producer = openScheduler(env);
    }, 60000);

    afterAll(async () => {
      await producer?.close();
      await Promise.all((workers ?? []).map((worker) => worker.kill('SIGTERM')));
    });

    it('keep every task within its batchSize across both, start items in tids order and rerun each once', async () => {
      const tids = await insertTransactions(env.db, 60);
      const other = await insertTransactions(env.db, 30);
      const taskId = await insertTask(env.db, tids, { batchSize: 3 });
      const otherId = await insertTask(env.db, other, { batchSize: 2 });
      await producer.scheduler.schedule(taskId, 3);
      await producer.scheduler.schedule(otherId, 2);
      await waitForTaskStatus(env.db, taskId, 'Completed');
      await waitForTaskStatus(env.db, otherId, 'Completed');

      expect(stub.maxInFlight(taskId)).toBeLessThanOrEqual(3);
      expect(stub.maxInFlight(taskId)).toBeGreaterThanOrEqual(2);
      expect(stub.maxInFlight(otherId)).toBeLessThanOrEqual(2);
      expectOncePerTid(taskId, tids);
      expectOncePerTid(otherId, other);
      // Items start in tids order: when one reaches core, at most batchSize - 1 earlier ones are still on their way
      // (a slow lane can be overtaken by any number of later items, a fast one cannot jump ahead).
      stub
        .forTask(taskId)
        .forEach((request, position) => expect(tids.indexOf(request.parentId!) - position).toBeLessThan(3));
    });

    it('a worker stopped with SIGTERM finishes its reruns, exits 0, hands its slots back and another carries on', async () => {
      stub.behave({ latencyMs: 50 });
      const own = { TASKS_COLLECTION: 'tasks_sigterm', QUEUE_PREFIX: 'sigterm' };
      const leaving = await startProcess(own);
      const ownProducer = openScheduler(env, own);
      const tids = await insertTransactions(env.db, 80);
      const taskId = await insertTask(env.db, tids, { batchSize: 4, collection: own.TASKS_COLLECTION });
      await ownProducer.scheduler.schedule(taskId, 4);
      await ownProducer.close();
      await waitFor('the process to hold the slots', async () => {
        const task = await readTask(env.db, taskId, own.TASKS_COLLECTION);
        return task!.leases.length === 4 && stub.forTask(taskId).length >= 4;
      });
      await env.startWorker({ ...engine(), ...own });

      expect(await leaving.kill('SIGTERM')).toBe(0);
      const task = await readTask(env.db, taskId, own.TASKS_COLLECTION);
      const pid = `:${leaving.child.pid}:`;
      expect(task!.leases.filter((lease: { owner: string }) => lease.owner.includes(pid))).toEqual([]);
      await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION);
      expectOncePerTid(taskId, tids);
    });
  });

  describe('a worker process killed with SIGKILL mid-task, another worker alive', () => {
    it.each([5, 20, 40])(
      'after %i reruns: the task completes and every tid reaches core exactly once',
      async (after) => {
        // A queue and tasks collection of its own, so the victim surely runs lanes before the survivor exists.
        const own = { TASKS_COLLECTION: `tasks_kill_${after}`, QUEUE_PREFIX: `kill-${after}` };
        const victim = await startProcess(own);
        const producer = openScheduler(env, own);
        const tids = await insertTransactions(env.db, 60);
        const taskId = await insertTask(env.db, tids, { batchSize: 4, collection: own.TASKS_COLLECTION });
        await producer.scheduler.schedule(taskId, 4);
        await producer.close();
        await waitFor('the victim to start', () => stub.forTask(taskId).length > 0);
        await env.startWorker({ ...engine(), ...own });

        // Kill it while it has a rerun in flight (an item Processing under one of its leases).
        await waitFor(
          'the victim to have a rerun in flight',
          async () => {
            if (stub.forTask(taskId).length < after) return false;
            const task = await readTask(env.db, taskId, own.TASKS_COLLECTION);
            const leases = new Set(
              task!.leases
                .filter((lease: { owner: string }) => lease.owner.includes(`:${victim.child.pid}:`))
                .map((lease: { id: string }) => lease.id),
            );
            return (await readItems(env.db, taskId)).some(
              (item) => item.tstatus === 'Processing' && leases.has(item.leaseId),
            );
          },
          20000,
          2,
        );
        await victim.kill('SIGKILL');

        const task = await waitForTaskStatus(env.db, taskId, 'Completed', own.TASKS_COLLECTION, 30000);
        expect(task).toMatchObject({ remainingTransactions: 0, leases: [] });
        await stub.settled();
        expectOncePerTid(taskId, tids);
        const items = await readItems(env.db, taskId);
        const childByTid = new Map(stub.forTask(taskId).map((request) => [request.parentId, request.childId]));
        expect(
          items.filter((item) => item.tstatus !== 'Completed' || item.rerunID !== childByTid.get(item.tid)),
        ).toEqual([]);
      },
    );
  });
});

import Redis from 'ioredis';
import { ObjectId } from 'mongodb';
import { insertChannel, insertTask, insertTransactions, readItems, readTask } from '../support/database-fixtures';
import { OpenhimCoreStub, type StubRequest } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';
import { ensureBuilt, openScheduler, WorkerProcess } from '../support/worker-process';

const BACKOFF_MS = 600;
const ENGINE = {
  WORKER_LEASE_MS: '2000',
  RERUN_RETRY_SETTLE_MS: '500',
  SWEEP_INTERVAL_MS: '300',
  WORKER_FLUSH_MS: '50',
  RERUN_ASYNC_POLL_MS: '200',
  // The breaker is what pauses here (a task's own auto-pause is tested on its own).
  AUTO_PAUSE_AFTER_FAILURES: '0',
  BREAKER_FAILURES: '10',
  BREAKER_BACKOFF_MS: String(BACKOFF_MS),
  BREAKER_BACKOFF_MAX_MS: String(BACKOFF_MS * 4),
  LOG_LEVEL: 'fatal',
};

/**
 * Outage recovery (issue 23) with two real worker processes, real Redis, the embedded database and
 * a stand-in for OpenHIM core that fails and recovers on command: downstream guards shared by
 * every task and worker, and a circuit breaker per channel that pauses, probes and resumes.
 */
describe('Outage recovery: downstream guards and circuit breakers', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let producer: ReturnType<typeof openScheduler>;
  const workers: WorkerProcess[] = [];
  const startWorker = async () => {
    const worker = await WorkerProcess.start(env, {
      ...ENGINE,
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
    });
    workers.push(worker);
    return worker;
  };
  const guards = () => env.db.collection('rerunguards');
  /** Workers read the guards at most once a second: a new limit applies within one. */
  const setLimits = async (channelID: ObjectId, limits: Record<string, number>) => {
    await guards().insertOne({ channelID, ...limits });
    await new Promise((resolve) => setTimeout(resolve, 1100));
  };

  beforeAll(async () => {
    await ensureBuilt();
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    await Promise.all([startWorker(), startWorker()]);
    producer = openScheduler(env);
  }, 180000);

  afterAll(async () => {
    await producer?.close();
    await Promise.all(workers.map((worker) => worker.kill('SIGKILL')));
    await env?.stop();
    await stub?.close();
  });

  beforeEach(() => stub.behave({ latencyMs: 40 }));

  async function tasksOn(channelID: ObjectId, count: number, perTask: number, batchSize: number) {
    const tasks: Array<{ id: string; tids: string[] }> = [];
    for (let i = 0; i < count; i++) {
      const tids = await insertTransactions(env.db, perTask, () => ({ channelID }));
      tasks.push({ id: await insertTask(env.db, tids, { batchSize }), tids });
    }
    return tasks;
  }

  const statusOf = async (taskId: string) => (await readTask(env.db, taskId))?.status as string;
  const waitForStatus = (taskId: string, status: string, timeoutMs = 60000) =>
    waitFor(`task ${taskId} to be ${status}`, async () => (await statusOf(taskId)) === status, timeoutMs);

  it('keeps five tasks of batchSize 10 within a channel maxInFlight of 4 across both workers, each rerun once', async () => {
    const channelID = await insertChannel(env.db, {});
    await setLimits(channelID, { maxInFlight: 4 });
    const tasks = await tasksOn(channelID, 5, 24, 10);
    stub.resetMaxInFlightOverall();
    await Promise.all(tasks.map((task) => producer.scheduler.schedule(task.id, 10)));
    for (const task of tasks) await waitForStatus(task.id, 'Completed');

    expect(stub.maxInFlightOverall).toBeLessThanOrEqual(4);
    expect(stub.maxInFlightOverall).toBeGreaterThanOrEqual(3);
    for (const task of tasks) {
      const counts = stub.countsByTid(task.id);
      expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
      expect(counts.size).toBe(task.tids.length);
    }
    // Every permit was given back.
    const redis = new Redis(env.redis.url);
    try {
      const key = `semaphore:${env.config().QUEUE_PREFIX}:guard:${channelID.toHexString()}:in-flight`;
      expect(await redis.zcard(key)).toBe(0);
    } finally {
      redis.disconnect();
    }
  }, 120000);

  it('gives back the permits of a killed worker within the lease', async () => {
    const channelID = await insertChannel(env.db, {});
    await setLimits(channelID, { maxInFlight: 2 });
    const [task] = await tasksOn(channelID, 1, 8, 4);
    // The first two reruns hang at core (child stored, no answer): both permits are held.
    const hung: StubRequest[] = [];
    stub.behave((request) => {
      if (request.taskId !== task.id || hung.length >= 2) return { latencyMs: 40 };
      hung.push(request);
      return { mode: 'hang' };
    });
    await producer.scheduler.schedule(task.id, 4);
    await waitFor('two reruns in flight', () => hung.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stub.forTask(task.id)).toHaveLength(2); // the guard holds the other lanes back
    const redis = new Redis(env.redis.url);
    const permitKey = `semaphore:${env.config().QUEUE_PREFIX}:guard:${channelID.toHexString()}:in-flight`;
    try {
      expect(await redis.zcard(permitKey)).toBe(2);
    } finally {
      redis.disconnect();
    }

    for (const worker of workers.splice(0)) await worker.kill('SIGKILL');
    const killedAt = Date.now();
    await Promise.all([startWorker(), startWorker()]);
    // Core finishes the two reruns it was holding: the takeover links them, never sends them again.
    for (const request of hung) await stub.completeAsync(request.childId!, 'Successful');
    await waitFor('the remaining reruns to start', () => stub.forTask(task.id).length === 8, 20000);
    // Permits and slots of the dead came back within about two leases (2 s each).
    expect(Date.now() - killedAt).toBeLessThan(8000);
    await waitForStatus(task.id, 'Completed');
    const counts = stub.countsByTid(task.id);
    expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
    expect(counts.size).toBe(8);
  }, 120000);

  it('opens the breaker in an outage, pauses the tasks, probes one at a time, and resumes them after recovery', async () => {
    const channelID = await insertChannel(env.db, {});
    const tasks = await tasksOn(channelID, 3, 40, 2);
    // A task a person paused before the outage: the breaker never resumes it.
    const personalTids = await insertTransactions(env.db, 5, () => ({ channelID }));
    const personal = await insertTask(env.db, personalTids, { status: 'Paused', batchSize: 1 });

    let down = true;
    const sentWhileDown = new Set<string>();
    stub.behave((request) => {
      if (!down) return { latencyMs: 20 };
      sentWhileDown.add(request.parentId!);
      return { status: 500, latencyMs: 20 };
    });
    await Promise.all(tasks.map((task) => producer.scheduler.schedule(task.id, 2)));
    for (const task of tasks) await waitForStatus(task.id, 'Paused', 30000);

    const guard = await waitFor('the breaker to be open', async () => {
      const found = await guards().findOne({ channelID });
      return found?.breaker?.state === 'open' ? found : null;
    });
    expect(guard.breaker.failures).toBeGreaterThanOrEqual(10);
    for (const task of tasks) {
      const stored = await readTask(env.db, task.id);
      expect(stored?.waitingFor?.toHexString()).toBe(channelID.toHexString());
      const entry = stored?.history?.find((h: { action: string }) => h.action === 'breaker-paused');
      expect(entry?.reason).toMatch(
        /circuit breaker of channel [0-9a-f]{24} opened: \d+ reruns to it failed in a row; the last: rerun [0-9a-f]{24} Failed/,
      );
    }
    // While the outage lasts: one probe at a time, spaced by the back-off (doubling).
    const beforeProbes = stub.requests.length;
    await waitFor(
      'three failed probes',
      async () => {
        const found = await guards().findOne({ channelID });
        return (found?.breaker?.probes ?? 0) >= 3 && !found?.breaker?.probe;
      },
      30000,
    );
    const probes = stub.requests.slice(beforeProbes);
    expect(probes.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < probes.length; i++) {
      expect(probes[i].arrivedAt - probes[i - 1].arrivedAt).toBeGreaterThanOrEqual(BACKOFF_MS - 50);
    }
    for (const task of tasks) expect(await statusOf(task.id)).toBe('Paused');

    down = false;
    for (const task of tasks) await waitForStatus(task.id, 'Completed', 60000);
    const closed = await guards().findOne({ channelID });
    expect(closed?.breaker?.state).toBe('closed');
    expect(closed?.breaker?.failures).toBe(0);

    // Every transaction reached core once; exactly those sent during the outage (the failed probes
    // among them) are recorded failed, every other one succeeded.
    expect(sentWhileDown.size).toBeGreaterThanOrEqual(10);
    for (const task of tasks) {
      const counts = stub.countsByTid(task.id);
      expect([...counts.values()].filter((n) => n !== 1)).toEqual([]);
      expect(counts.size).toBe(task.tids.length);
      const items = await readItems(env.db, task.id);
      for (const item of items) {
        expect({ tid: item.tid, rerunStatus: item.rerunStatus }).toEqual({
          tid: item.tid,
          rerunStatus: sentWhileDown.has(item.tid) ? 'Failed' : 'Successful',
        });
      }
      const stored = await readTask(env.db, task.id);
      expect(stored?.history?.some((h: { action: string }) => h.action === 'auto-resumed')).toBe(true);
      expect(stored?.waitingFor).toBeUndefined();
    }
    expect(await statusOf(personal)).toBe('Paused');
    expect(stub.forTask(personal)).toHaveLength(0);
  }, 180000);

  it('spaces the starts of a channel with maxPerSecond across tasks and workers', async () => {
    const channelID = await insertChannel(env.db, {});
    await setLimits(channelID, { maxPerSecond: 10 });
    const tasks = await tasksOn(channelID, 2, 15, 5);
    await Promise.all(tasks.map((task) => producer.scheduler.schedule(task.id, 5)));
    for (const task of tasks) await waitForStatus(task.id, 'Completed');
    const arrivals = tasks
      .flatMap((task) => stub.forTask(task.id))
      .map((request) => request.arrivedAt)
      .sort((a, b) => a - b);
    expect(arrivals).toHaveLength(30);
    // 30 starts at 10 a second: at least three one-second windows.
    expect(arrivals[29] - arrivals[0]).toBeGreaterThanOrEqual(1900);
    // No second holds more than twice the rate (windows are fixed: a burst can straddle two).
    for (let i = 0; i + 20 < arrivals.length; i++) expect(arrivals[i + 20] - arrivals[i]).toBeGreaterThan(1000);
  }, 60000);

  it('pauses a task created while the breaker is open before it sends anything, and resumes it with the others', async () => {
    const channelID = await insertChannel(env.db, {});
    let down = true;
    stub.behave(() => (down ? { status: 500, latencyMs: 10 } : { latencyMs: 10 }));
    const [first] = await tasksOn(channelID, 1, 15, 1);
    await producer.scheduler.schedule(first.id, 1);
    await waitForStatus(first.id, 'Paused', 30000);
    await waitFor(
      'the breaker to be open',
      async () => (await guards().findOne({ channelID }))?.breaker?.state === 'open',
    );
    // Probes are far apart meanwhile: a new task must not reach core before recovery.
    await guards().updateOne({ channelID }, { $set: { 'breaker.nextProbeAt': new Date(Date.now() + 60000) } });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the workers' cached view of the breaker

    const [late] = await tasksOn(channelID, 1, 5, 2);
    await producer.scheduler.schedule(late.id, 2);
    await waitForStatus(late.id, 'Paused', 30000);
    expect(stub.forTask(late.id)).toHaveLength(0);
    const stored = await readTask(env.db, late.id);
    expect(stored?.waitingFor?.toHexString()).toBe(channelID.toHexString());
    expect(stored?.history?.map((h: { action: string }) => h.action)).toContain('breaker-paused');
    expect((await readItems(env.db, late.id)).map((item) => item.tstatus)).toEqual(Array(5).fill('Queued'));

    down = false;
    await guards().updateOne({ channelID }, { $set: { 'breaker.nextProbeAt': new Date() } });
    await waitForStatus(first.id, 'Completed', 30000);
    await waitForStatus(late.id, 'Completed', 30000);
    const counts = stub.countsByTid(late.id);
    expect([...counts.values()]).toEqual(Array(5).fill(1));
  }, 90000);

  it('probes for a task auto-paused with autoResume and resumes it after recovery; one without stays paused', async () => {
    const channelID = await insertChannel(env.db, {});
    let down = true;
    stub.behave(() => (down ? { status: 500, latencyMs: 10 } : { latencyMs: 10 }));
    const [auto, manual] = await tasksOn(channelID, 2, 12, 1);
    await env.db
      .collection('tasks')
      .updateOne({ _id: new ObjectId(auto.id) }, { $set: { pauseAfterFailures: 3, autoResume: true } });
    await env.db.collection('tasks').updateOne({ _id: new ObjectId(manual.id) }, { $set: { pauseAfterFailures: 3 } });
    await producer.scheduler.schedule(auto.id, 1);
    await producer.scheduler.schedule(manual.id, 1);
    await waitForStatus(auto.id, 'Paused', 30000);
    await waitForStatus(manual.id, 'Paused', 30000);
    // 6 failures in all: the breaker (10) stays closed; the auto-resuming task waits for a probe.
    expect((await readTask(env.db, auto.id))?.waitingFor?.toHexString()).toBe(channelID.toHexString());
    expect((await readTask(env.db, manual.id))?.waitingFor).toBeUndefined();
    await waitFor(
      'a failed probe',
      async () => ((await guards().findOne({ channelID }))?.breaker?.probes ?? 0) >= 1,
      20000,
    );
    expect(await statusOf(auto.id)).toBe('Paused');
    const manualSent = stub.forTask(manual.id).length;

    down = false;
    await waitForStatus(auto.id, 'Completed', 30000);
    const history = (await readTask(env.db, auto.id))?.history?.map((h: { action: string }) => h.action);
    expect(history).toEqual(expect.arrayContaining(['auto-paused', 'auto-resumed', 'completed']));
    expect([...stub.countsByTid(auto.id).values()]).toEqual(Array(12).fill(1));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await statusOf(manual.id)).toBe('Paused');
    expect(stub.forTask(manual.id)).toHaveLength(manualSent);
  }, 90000);
});

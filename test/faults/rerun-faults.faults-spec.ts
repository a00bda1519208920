import { ObjectId } from 'mongodb';
import { insertTransactions } from '../support/database-fixtures';
import { type StubBehaviour } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { FaultBench, type Probe, seededRandom } from './fault-bench';

/**
 * `npm run test:faults` (issue 7, "Fault suite"): two worker processes run a task of a few thousand
 * items while a worker is SIGKILLed, Redis restarts, the MongoDB-compatible server (a one-member
 * replica set) stops or its primary steps down, and core resets connections and stops answering. After each: the task completes, core accepted every tid
 * exactly once, no task is left Processing, and the API answered throughout (503 while a
 * dependency is down is fine; no answer, or a dead API, is not).
 */
const ITEMS = Number(process.env.FAULT_ITEMS ?? 3000);
const BATCH_SIZE = 10;
const SEED = Number(process.env.FAULT_SEED ?? Date.now() % 1000000);
const random = seededRandom(SEED);

describe(`Fault suite (${ITEMS} items per task, FAULT_SEED=${SEED})`, () => {
  let bench: FaultBench;

  beforeAll(async () => {
    bench = await FaultBench.start(2);
  }, 120000);

  afterAll(async () => {
    await bench?.stop();
  }, 60000);

  beforeEach(() => bench.stub.behave({ latencyMs: 5 }));

  async function createTask(): Promise<{ taskId: string; tids: string[] }> {
    const tids = await insertTransactions(bench.db, ITEMS);
    const answer = await bench.call('POST', '/tasks', { tids, batchSize: BATCH_SIZE });
    expect(answer.status).toBe(201);
    const taskId = /created task with id ([0-9a-f]{24})$/.exec(answer.body)![1];
    bench.startProbes(taskId);
    return { taskId, tids };
  }

  /** How many of the task's reruns core has accepted (stored a child for) so far. */
  const accepted = (taskId: string) => [...bench.stub.acceptedByTid(taskId).values()].reduce((a, b) => a + b, 0);

  const progressed = (taskId: string, fraction: number) =>
    waitFor(
      `${Math.round(fraction * 100)}% of task ${taskId} to reach core`,
      () => accepted(taskId) >= fraction * ITEMS,
      120000,
      5,
    );

  /** What every scenario must end with. */
  async function expectCompletedExactlyOnce(taskId: string, tids: string[]): Promise<void> {
    const done = await waitFor(
      `task ${taskId} to complete`,
      async () => {
        const answer = await bench.get(`/tasks/${taskId}?filterPage=0&filterLimit=1`);
        const task = answer.status === 200 ? JSON.parse(answer.body) : undefined;
        return task?.status === 'Completed' ? task : undefined;
      },
      120000,
      250,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}\n${await bench.diagnose(taskId)}`);
    });
    expect(done).toMatchObject({ remainingTransactions: 0, totalTransactions: ITEMS });
    const probes = await bench.stopProbes();
    await bench.stub.settled();

    // Core accepted every tid exactly once: one child transaction each, nothing missing, nothing doubled.
    const counts = bench.stub.acceptedByTid(taskId);
    const doubled = [...counts.entries()].filter(([, n]) => n !== 1);
    if (doubled.length) console.log(`Reruns accepted twice:\n${bench.linesAbout(doubled.map(([tid]) => tid))}`);
    expect(doubled).toEqual([]);
    expect(counts.size).toBe(ITEMS);
    const parents = tids.map((tid) => new ObjectId(tid));
    expect(await bench.db.collection('transactions').countDocuments({ parentID: { $in: parents } })).toBe(ITEMS);

    // Every item recorded as completed, with the child core stored for it.
    const items = await bench.db
      .collection('taskitems')
      .find({ taskId: new ObjectId(taskId) }, { projection: { tid: 1, tstatus: 1, rerunID: 1 } })
      .toArray();
    const childByTid = new Map(
      bench.stub
        .forTask(taskId)
        .filter((request) => request.childId)
        .map((request) => [request.parentId, request.childId]),
    );
    expect(items).toHaveLength(ITEMS);
    expect(items.filter((item) => item.tstatus !== 'Completed' || item.rerunID !== childByTid.get(item.tid))).toEqual(
      [],
    );
    expect(await bench.db.collection('tasks').countDocuments({ status: 'Processing' })).toBe(0);
    expectApiAnsweredThroughout(probes);
  }

  function expectApiAnsweredThroughout(probes: Probe[]): void {
    const statuses = probes.reduce<Record<number, number>>(
      (all, probe) => ({ ...all, [probe.status]: (all[probe.status] ?? 0) + 1 }),
      {},
    );
    const slowest = Math.max(...probes.map((probe) => probe.ms));
    process.stdout.write(
      `  ${expect.getState().currentTestName}: API probes ${JSON.stringify(statuses)}, slowest answer ${slowest} ms\n`,
    );
    expect(probes.length).toBeGreaterThan(5);
    // Every probe got an answer (no hang, no refused connection: the API never went away), and
    // every answer was a success or a 503 naming what was down.
    expect(probes.filter((probe) => probe.status !== 200 && probe.status !== 503)).toEqual([]);
    expect(bench.api.child.exitCode).toBeNull();
  }

  const SCENARIO_MS = 300000;

  it(
    'three workers SIGKILLed at random points (a new one started each time)',
    async () => {
      const { taskId, tids } = await createTask();
      const points = [random(), random(), random()].map((r) => 0.1 + r * 0.7).sort((a, b) => a - b);
      for (const point of points) {
        await progressed(taskId, point);
        const victim = bench.workers[Math.floor(random() * bench.workers.length)];
        await bench.killWorker(victim);
        await bench.startWorker();
      }
      await expectCompletedExactlyOnce(taskId, tids);
    },
    SCENARIO_MS,
  );

  it(
    'Redis restarted mid-task (its queue is lost: the sweeper re-creates the lanes)',
    async () => {
      const { taskId, tids } = await createTask();
      await progressed(taskId, 0.2 + random() * 0.4);
      await bench.restartRedis(2000);
      await expectCompletedExactlyOnce(taskId, tids);
    },
    SCENARIO_MS,
  );

  it(
    'the MongoDB-compatible server stopped for 3 s mid-task',
    async () => {
      const { taskId, tids } = await createTask();
      await progressed(taskId, 0.2 + random() * 0.4);
      await bench.restartMongo(3000);
      await expectCompletedExactlyOnce(taskId, tids);
    },
    SCENARIO_MS,
  );

  it(
    'the primary steps down mid-task: 5 s without a writable primary (longer than a lease), then elected again',
    async () => {
      const { taskId, tids } = await createTask();
      await progressed(taskId, 0.2 + random() * 0.4);
      await bench.stepDown(5);
      // It bit: without a primary core cannot store a child, so nothing is accepted meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const during = accepted(taskId);
      await new Promise((resolve) => setTimeout(resolve, 3500));
      expect(accepted(taskId)).toBe(during);
      await expectCompletedExactlyOnce(taskId, tids);
    },
    SCENARIO_MS,
  );

  it(
    'core resets connections and stops answering for 4 s',
    async () => {
      const { taskId, tids } = await createTask();
      await progressed(taskId, 0.2 + random() * 0.4);
      const faults: StubBehaviour[] = [
        { mode: 'reset' },
        { mode: 'stall' },
        { mode: 'closed' },
        { mode: 'unavailable' },
        { mode: 'hang' },
        { latencyMs: 5 },
      ];
      bench.stub.behave(() => faults[Math.floor(random() * faults.length)]);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await bench.stub.dropConnections();
      await new Promise((resolve) => setTimeout(resolve, 2000));
      bench.stub.behave({ latencyMs: 5 });
      // The faults did happen: requests core read but never accepted.
      expect(bench.stub.forTask(taskId).filter((request) => !request.childId).length).toBeGreaterThan(0);
      await expectCompletedExactlyOnce(taskId, tids);
    },
    SCENARIO_MS,
  );
});

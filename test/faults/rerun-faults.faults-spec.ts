import { ObjectId } from 'mongodb';
import { insertChannel, insertTransactions, readItems, readTask } from '../support/database-fixtures';
import { type StubBehaviour, type StubRequest } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';
import { FAULT_BREAKER, FAULT_ENGINE, FaultBench, type Probe, seededRandom } from './fault-bench';

/**
 * `npm run test:faults` (issue 7, "Fault suite"): two worker processes run a task of a few thousand
 * items while a worker is SIGKILLed, Redis restarts, the MongoDB-compatible server (a one-member
 * replica set) stops or its primary steps down, and core resets connections and stops answering. After each: the task completes, core accepted every tid
 * exactly once, no task is left Processing, and the API answered throughout (503 while a
 * dependency is down is fine; no answer, or a dead API, is not). Last, outage recovery (issue 23):
 * a channel's circuit breaker is open while Redis restarts and the worker sending its probe is
 * SIGKILLed; its state survives, one probe is in flight at a time, and every rerun is sent once.
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
    const taskId = await postTask({ tids, batchSize: BATCH_SIZE });
    bench.startProbes(taskId);
    return { taskId, tids };
  }

  /** POST /tasks; the new task's id. */
  async function postTask(body: { tids: string[]; batchSize: number; pauseAfterFailures?: number }): Promise<string> {
    const answer = await bench.call('POST', '/tasks', body);
    expect(answer.status).toBe(201);
    return /created task with id ([0-9a-f]{24})$/.exec(answer.body)![1];
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

  /** A channel's circuit breaker as `rerunguards` stores it (src/database/schemas/rerun-guard.schema.ts). */
  interface StoredBreaker {
    state?: 'open' | 'closed';
    failures: number;
    probes?: number;
    openedAt?: Date;
    backoffMs?: number;
    lastError?: string;
    probe?: { owner: string; until: Date; tid?: string };
  }

  const BREAKER_ITEMS = 150;
  /**
   * The probes take the first items still Queued of the oldest waiting task, the first task here,
   * ahead of its cursor. It has one slot: the lane that resumes it reconciles the killed probe's item
   * (linking the child core stored) and then passes the gate over the probes' items, that one among
   * them, which it must not send again. The second task has more lanes than the channel's guard admits.
   */
  const BREAKER_BATCH_SIZES = [1, 4];
  /** The channel's own limit: every send to it, the probes' too, takes one of its permits in Redis. */
  const BREAKER_MAX_IN_FLIGHT = 4;
  /** How long core holds a probe while the downstream is down: time to kill its worker meanwhile. */
  const PROBE_HELD_MS = 1500;

  it(
    "a channel's breaker open (its downstream down): Redis restarted, then the probing worker SIGKILLed mid-probe; no state lost, one probe at a time, each rerun sent once",
    async () => {
      // Held, not timed out: the probe's worker dies while core still has the request.
      expect(PROBE_HELD_MS).toBeLessThan(Number(FAULT_ENGINE.RERUN_TIMEOUT_MS) - 300);
      const channelID = await insertChannel(bench.db, {});
      await bench.db.collection('rerunguards').insertOne({ channelID, maxInFlight: BREAKER_MAX_IN_FLIGHT });
      const breakerOf = async () =>
        ((await bench.db.collection('rerunguards').findOne({ channelID }))?.breaker ?? {
          failures: 0,
        }) as StoredBreaker;

      // The channel's downstream is down: core stores each rerun's child and answers 500 (rerunStatus
      // Failed). Once the tasks wait for the breaker, what core gets (the probes) it holds for a while.
      let phase: 'outage' | 'probes' | 'recovered' = 'outage';
      const sentWhileDown = new Set<string>();
      const probes: StubRequest[] = [];
      bench.stub.behave((request) => {
        if (phase === 'recovered') return { latencyMs: 5 };
        sentWhileDown.add(request.parentId!);
        if (phase === 'outage') return { status: 500, latencyMs: 20 };
        probes.push(request);
        return { status: 500, latencyMs: PROBE_HELD_MS };
      });
      const probeAt = (index: number) =>
        waitFor(`probe ${index + 1} of the open breaker to reach core`, () => probes[index], 20000, 5);
      const tasks: Array<{ taskId: string; tids: string[] }> = [];
      for (const batchSize of BREAKER_BATCH_SIZES) {
        const tids = await insertTransactions(bench.db, BREAKER_ITEMS, () => ({ channelID }));
        // The task's own auto-pause is off: the channel's breaker is what pauses it.
        const taskId = await postTask({ tids, batchSize, pauseAfterFailures: 0 });
        tasks.push({ taskId, tids });
      }
      bench.startProbes(tasks[0].taskId);

      try {
        // 1. The outage opens the breaker, which pauses both tasks: each waits for the channel.
        const opened = await waitFor(
          'the breaker to open',
          async () => {
            const breaker = await breakerOf();
            return breaker.state === 'open' ? breaker : undefined;
          },
          60000,
        );
        expect(opened.failures).toBeGreaterThanOrEqual(Number(FAULT_BREAKER.BREAKER_FAILURES));
        for (const { taskId } of tasks) {
          const task = await waitFor(
            `task ${taskId} to be paused by the breaker`,
            async () => {
              const found = await readTask(bench.db, taskId);
              return found?.status === 'Paused' ? found : undefined;
            },
            30000,
          );
          expect(String(task.waitingFor)).toBe(channelID.toHexString());
          expect(task.history.map((entry: { action: string }) => entry.action)).toContain('breaker-paused');
        }
        // Reruns that passed their gates before the pause (with a breaker state read up to a second
        // before) have reached core by now: from here on, only probes are sent.
        await new Promise((resolve) => setTimeout(resolve, 1200));
        await waitFor('the reruns in flight to end', () => bench.stub.inFlightOverall === 0, 10000, 5);
        phase = 'probes';
        bench.stub.resetMaxInFlightOverall();
        const probesFrom = bench.stub.requests.length;

        // 2. Redis restarts while core holds a probe (its permit is in Redis).
        const heldAtRestart = await probeAt(0);
        const beforeRestart = await breakerOf();
        expect(beforeRestart).toMatchObject({
          state: 'open',
          openedAt: opened.openedAt,
          probe: { tid: heldAtRestart.parentId },
        });
        // A probe counts in `probes` when sent and in `failures` when its failure is recorded: this
        // one's is still to come. The difference stays the same as long as nothing is lost or doubled.
        const excess = beforeRestart.failures - beforeRestart.probes! + 1;
        await bench.restartRedis(2000);
        const afterRestart = await breakerOf();
        expect(afterRestart).toMatchObject({ state: 'open', openedAt: opened.openedAt });
        expect(afterRestart.failures).toBeGreaterThanOrEqual(beforeRestart.failures);
        expect(afterRestart.probes).toBeGreaterThanOrEqual(beforeRestart.probes!);
        expect(afterRestart.backoffMs).toBeGreaterThanOrEqual(beforeRestart.backoffMs!);
        // Probing goes on: a probe sent after Redis came back fails as well, each failure counted once.
        const restartedAt = Date.now();
        await waitFor('a probe sent after the restart to be answered', () =>
          probes.some((probe) => probe.arrivedAt > restartedAt && probe.finishedAt),
        );
        await waitFor('its failure to be counted (once)', async () => {
          const breaker = await breakerOf();
          return breaker.state === 'open' && !breaker.probe && breaker.failures - breaker.probes! === excess;
        });

        // 3. The worker sending the next probe is SIGKILLed while core holds the probe's request.
        const killedIndex = probes.length;
        const killed = await probeAt(killedIndex);
        const held = await breakerOf();
        expect(held.probe?.tid).toBe(killed.parentId);
        expect(held.failures - held.probes! + 1).toBe(excess);
        const prober = bench.workerOf(held.probe!.owner);
        expect(prober).toBeDefined();
        expect(killed.finishedAt).toBeUndefined();
        const killedAt = Date.now();
        await bench.killWorker(prober!);
        // Nothing lost, nothing counted: open since the same moment, the same counts, and the dead
        // worker's probe still held (until its hold expires).
        expect(await breakerOf()).toMatchObject({
          state: 'open',
          openedAt: opened.openedAt,
          failures: held.failures,
          probes: held.probes,
          probe: { owner: held.probe!.owner, tid: killed.parentId },
        });
        await waitFor('the killed probe to end at core', () => killed.finishedAt !== undefined, 5000, 5);
        expect(killed.answered).toBe(false); // its worker died waiting for it
        await bench.startWorker();
        // Taken over by a live worker once the dead one's hold expired (within a lease), never before,
        // with another item: the killed probe's item is its task's to reconcile.
        const takeover = await probeAt(killedIndex + 1);
        const takenOver = await breakerOf();
        expect(takenOver.probe?.tid).toBe(takeover.parentId);
        expect(takenOver.probe?.owner).not.toBe(held.probe!.owner);
        expect(bench.workerOf(takenOver.probe!.owner)).toBeDefined();
        expect(takeover.parentId).not.toBe(killed.parentId);
        expect(takeover.arrivedAt).toBeGreaterThanOrEqual(new Date(held.probe!.until).getTime());
        expect(takeover.arrivedAt - killedAt).toBeLessThan(Number(FAULT_ENGINE.WORKER_LEASE_MS) + 3000);
        // The killed probe counts among the probes sent, not (yet) as a failure: its outcome is the
        // child core stored, recorded when its task runs again.
        await waitFor('the takeover probe to fail and be counted', async () => {
          const breaker = await breakerOf();
          return breaker.state === 'open' && !breaker.probe && breaker.failures - breaker.probes! === excess - 1;
        });

        // 4. The downstream recovers: the next probe succeeds, the breaker closes, both tasks resume.
        const maxInFlightWhileOpen = bench.stub.maxInFlightOverall;
        const probesUntil = bench.stub.requests.length;
        phase = 'recovered';
        bench.stub.resetMaxInFlightOverall();
        const recoveredAt = Date.now();
        for (const { taskId } of tasks) {
          await waitFor(
            `task ${taskId} to complete`,
            async () => (await readTask(bench.db, taskId))?.status === 'Completed',
            60000,
            100,
          ).catch(async (error: Error) => {
            throw new Error(`${error.message}\n${await bench.diagnose(taskId)}`);
          });
        }
        const recoveredMs = Date.now() - recoveredAt;
        const apiProbes = await bench.stopProbes();
        await bench.stub.settled();

        const closed = await breakerOf();
        expect(closed).toMatchObject({ state: 'closed', failures: 0 });
        expect(closed.probe).toBeUndefined();
        expect(bench.stub.maxInFlightOverall).toBeLessThanOrEqual(BREAKER_MAX_IN_FLIGHT);

        // One probe at a time: every request core got while the breaker was open was a probe (its
        // worker logged it), and each ended before the next one arrived.
        const whileOpen = bench.stub.requests.slice(probesFrom, probesUntil);
        const probeTids = new Set(
          bench
            .workerLines(/probing with item/)
            .map(({ line }) => /probing with item \d+ \(([0-9a-f]{24})\)/.exec(line)?.[1]),
        );
        expect(whileOpen.length).toBeGreaterThanOrEqual(4);
        expect(
          whileOpen.filter((request) => !probeTids.has(request.parentId)).map((request) => request.parentId),
        ).toEqual([]);
        expect(maxInFlightWhileOpen).toBe(1);
        const overlapping = whileOpen.filter((request, i) => i > 0 && request.arrivedAt < whileOpen[i - 1].finishedAt!);
        expect(overlapping.map((request) => request.parentId)).toEqual([]);

        // Every rerun reached core exactly once, the killed probe's too (its child was linked, never
        // sent again); those sent while the downstream was down are Failed, the others Successful.
        const killedChild = await bench.db.collection('transactions').findOne({ _id: new ObjectId(killed.childId) });
        expect(killedChild?.parentID?.toHexString()).toBe(killed.parentId);
        for (const { taskId, tids } of tasks) {
          const counts = bench.stub.countsByTid(taskId);
          const doubled = [...counts.entries()].filter(([, n]) => n !== 1);
          if (doubled.length) console.log(`Reruns sent twice:\n${bench.linesAbout(doubled.map(([tid]) => tid))}`);
          expect(doubled).toEqual([]);
          expect(counts.size).toBe(tids.length);
          const childByTid = new Map(bench.stub.forTask(taskId).map((request) => [request.parentId, request.childId]));
          const items = await readItems(bench.db, taskId);
          expect(items).toHaveLength(tids.length);
          const wrong = items.filter((item) => {
            const rerunStatus =
              item.tid === killed.parentId
                ? killedChild?.status
                : sentWhileDown.has(item.tid)
                  ? 'Failed'
                  : 'Successful';
            return (
              item.tstatus !== 'Completed' ||
              item.rerunID !== childByTid.get(item.tid) ||
              item.rerunStatus !== rerunStatus ||
              item.error !== undefined
            );
          });
          expect(wrong).toEqual([]);
          const task = await readTask(bench.db, taskId);
          expect(task).toMatchObject({ status: 'Completed', remainingTransactions: 0 });
          expect(task?.waitingFor).toBeUndefined();
          const actions: string[] = task?.history.map((entry: { action: string }) => entry.action);
          expect(actions).not.toContain('auto-paused');
          expect(actions.indexOf('breaker-paused')).toBeGreaterThanOrEqual(0);
          expect(actions.indexOf('auto-resumed')).toBeGreaterThan(actions.indexOf('breaker-paused'));
        }
        const killedItem = (await readItems(bench.db, killed.taskId!)).find((item) => item.tid === killed.parentId);
        expect(killedItem).toMatchObject({ tstatus: 'Completed', rerunID: killed.childId });
        expect(await bench.db.collection('tasks').countDocuments({ status: 'Processing' })).toBe(0);
        process.stdout.write(
          `  ${expect.getState().currentTestName}: ${sentWhileDown.size} reruns sent while down (${whileOpen.length} probes, ` +
            `${takeover.arrivedAt - killedAt} ms from the kill to the takeover probe), ${closed.failures} failures left, ` +
            `${recoveredMs} ms from recovery to completion\n`,
        );
        expectApiAnsweredThroughout(apiProbes);
      } catch (error) {
        const lines = bench
          .workerLines(/[Cc]hannel|breaker|probe|was in flight when its worker stopped/)
          .map(({ pid, line }) => `[pid ${pid}] ${line}`);
        console.log(`breaker: ${JSON.stringify(await breakerOf())}\n${lines.slice(-80).join('\n')}`);
        throw error;
      }
    },
    SCENARIO_MS,
  );
});

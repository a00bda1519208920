import { ObjectId } from 'mongodb';
import { insertTask, insertTransactions } from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';
import { bash, readmeExample } from '../support/readme-blocks';

const README_URL = 'https://localhost:8080';
const CHANNEL = '5bb777777bbb66cc5d4444aa';
const TIDS = ['65f0c0ffee0000000000a001', '65f0c0ffee0000000000a002'];

/**
 * README "Outage recovery", the worked example, pasted as an operator would (URL pointed at this
 * test's API): the limits are set, a task with autoResume is created, the downstream (a stand-in for
 * core's rerun port answering 500) fails its reruns, GET /rerun-guards shows the open breaker and the
 * task waiting, and the limits are removed.
 */
describe('README Outage recovery example', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    stub.behave({ status: 500, latencyMs: 30 });
    await env.db.collection('channels').insertOne({ _id: new ObjectId(CHANNEL), name: 'Lab results', txRerunAcl: [] });
    await env.db.collection('transactions').insertMany(
      TIDS.map((tid) => ({
        _id: new ObjectId(tid),
        channelID: new ObjectId(CHANNEL),
        status: 'Failed',
        request: { method: 'POST', path: '/lab', timestamp: new Date(), body: '{}' },
        canRerun: true,
      })),
    );
    ({ baseUrl } = await env.startApi(
      {
        AUTH_FAILURE_LIMIT: '0',
        RERUN_HOST: '127.0.0.1',
        RERUN_HTTP_PORT: String(stub.port),
        BREAKER_FAILURES: '2',
        BREAKER_BACKOFF_MS: '600000',
        WORKER_FLUSH_MS: '50',
        SWEEP_INTERVAL_MS: '300',
      },
      { withWorker: true },
    ));
  });
  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  it('answers as the README says', async () => {
    const { prelude, commands } = await readmeExample('outage-example');
    expect(prelude).toContain('-u root@openhim.org:openhim-password');
    expect(commands).toHaveLength(4);
    const run = async (command: string) => {
      const result = await bash(`${prelude}; ${command.replaceAll(README_URL, baseUrl)}`);
      expect({ command, code: result.code, stderr: result.code ? result.stderr : '' }).toEqual({
        command,
        code: 0,
        stderr: '',
      });
      return result.stdout;
    };
    const [put, create, list, remove] = commands;

    expect(JSON.parse(await run(put))).toMatchObject({
      channelID: CHANNEL,
      name: 'Lab results',
      maxInFlight: 4,
      maxPerSecond: 20,
      own: { maxInFlight: 4, maxPerSecond: 20 },
    });
    // Another task's reruns into the channel fail: the breaker opens (BREAKER_FAILURES is 2 here).
    const earlier = await insertTask(
      env.db,
      await insertTransactions(env.db, 40, () => ({ channelID: new ObjectId(CHANNEL) })),
    );
    await waitFor('the breaker to open', async () => {
      const guard = await env.db.collection('rerunguards').findOne({ channelID: new ObjectId(CHANNEL) });
      return guard?.breaker?.state === 'open';
    });
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the worker's cached view of the breaker

    const created = await run(create);
    expect(created).toMatch(/^User root@openhim\.org created task with id [0-9a-f]{24}$/);
    const taskId = created.slice(-24);
    expect(await env.db.collection('tasks').findOne({ _id: new ObjectId(taskId) })).toMatchObject({ autoResume: true });

    // The new task is paused before it sends anything, and waits for the channel too.
    const guards = await waitFor(
      'the breaker to hold the task',
      async () => {
        const listed = JSON.parse(await run(list)) as Array<{ breaker: { state: string }; waitingTasks: string[] }>;
        return listed[0]?.breaker.state === 'open' && listed[0].waitingTasks.includes(taskId) ? listed : undefined;
      },
      { intervalMs: 250 },
    );
    expect(guards).toEqual([
      expect.objectContaining({
        channelID: CHANNEL,
        maxInFlight: 4,
        maxPerSecond: 20,
        inFlight: 0,
        breaker: expect.objectContaining({ state: 'open', failures: expect.any(Number), probing: false }),
        waitingTasks: expect.arrayContaining([earlier, taskId]),
        updatedBy: 'root@openhim.org',
      }),
    ]);
    expect(await env.db.collection('tasks').findOne({ _id: new ObjectId(taskId) })).toMatchObject({
      status: 'Paused',
      waitingFor: new ObjectId(CHANNEL),
    });
    expect(stub.forTask(taskId)).toHaveLength(0);

    expect(JSON.parse(await run(remove))).toMatchObject({ channelID: CHANNEL, own: {}, maxInFlight: 0 });
    expect(await env.db.collection('rerunguards').findOne({ channelID: new ObjectId(CHANNEL) })).toMatchObject({
      breaker: expect.objectContaining({ state: 'open' }),
    });
  });
});

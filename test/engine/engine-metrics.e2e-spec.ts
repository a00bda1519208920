import request from 'supertest';
import { insertTransactions, waitForTaskStatus } from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { TestEnvironment } from '../support/test-environment';

const ROOT_BASIC = `Basic ${Buffer.from(`${ROOT_EMAIL}:${ROOT_PASSWORD}`).toString('base64')}`;

function sample(text: string, line: RegExp): number | undefined {
  const match = text.split('\n').find((candidate) => line.test(candidate));
  return match === undefined ? undefined : Number(match.split(' ').pop());
}

// The engine's own figures, as an operator scraping /metrics of an all-in-one process sees them.
describe('engine metrics', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    ({ baseUrl } = await env.startApi(
      {
        RERUN_HOST: '127.0.0.1',
        RERUN_HTTP_PORT: String(stub.port),
        METRICS_CACHE_MS: '0',
        SWEEP_INTERVAL_MS: '300',
        RERUN_RETRY_DELAY_MS: '100',
        // An answer without a child is trusted only after this wait (the default is 15 s).
        RERUN_RETRY_SETTLE_MS: '500',
      },
      { withWorker: true },
    ));
  });
  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  it('counts reruns by outcome, times them, and ends with none in flight', async () => {
    const tids = await insertTransactions(env.db, 5);
    // Core answers the first rerun of tids[0] 503 without storing anything: sent again, once.
    let refusedOnce = false;
    stub.behave((request) => {
      if (request.parentId !== tids[0] || refusedOnce) return {};
      refusedOnce = true;
      return { mode: 'unavailable' };
    });
    const unknownTid = '5bb777777bbb66cc5d4444ee';
    const created = await request(baseUrl)
      .post('/tasks')
      .set('Authorization', ROOT_BASIC)
      .send({ tids: [...tids, unknownTid], batchSize: 2 })
      .expect(201);
    const taskId = /created task with id ([0-9a-f]{24})$/.exec(created.text)![1];
    await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks', 30000);

    const metrics = (await request(baseUrl).get('/metrics').expect(200)).text;
    expect(sample(metrics, /^openhim_rerun_reruns_total\{outcome="successful"\} /)).toBe(5);
    expect(sample(metrics, /^openhim_rerun_reruns_total\{outcome="not_rerunnable"\} /)).toBe(1);
    expect(sample(metrics, /^openhim_rerun_reruns_total\{outcome="retried"\} /)).toBe(1);
    expect(sample(metrics, /^openhim_rerun_rerun_duration_seconds_count\{outcome="successful"\} /)).toBe(5);
    expect(sample(metrics, /^openhim_rerun_reruns_in_flight /)).toBe(0);
    expect(stub.forTask(taskId)).toHaveLength(6);
  });
});

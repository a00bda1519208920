import http from 'node:http';
import { ObjectId } from 'mongodb';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import { buildHttpRerun } from '../../src/rerun/sending/rerun-request';
import { insertTask, insertTransactions, readItems, waitForTaskStatus } from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { TestEnvironment } from '../support/test-environment';

const ITEMS = 2000;
const BATCH = 50;

/**
 * Throughput of one in-process worker against the stub at 0 ms latency, compared with a plain
 * keep-alive HTTP client replaying the same requests at the same concurrency (the stub does the
 * same database work for both). Figures are printed, not asserted (targets live in `npm run bench`).
 */
describe('Rerun engine: throughput', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
  });

  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });

  it(`reruns a ${ITEMS}-item task with batchSize ${BATCH} through one worker`, async () => {
    const fixture = (index: number) => ({
      method: 'POST',
      path: `/fhir/Observation/${index}`,
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Observation', id: String(index), status: 'final' }),
    });
    const replayTids = await insertTransactions(env.db, ITEMS, fixture);
    const tids = await insertTransactions(env.db, ITEMS, fixture);

    // The baseline: the same requests, BATCH at a time, over keep-alive connections.
    const transactions = await env.db
      .collection('transactions')
      .find({ _id: { $in: replayTids.map((tid) => new ObjectId(tid)) } })
      .toArray();
    const agent = new http.Agent({ keepAlive: true, maxSockets: BATCH });
    const replayTask = new ObjectId().toHexString();
    let next = 0;
    const replayStart = Date.now();
    await Promise.all(
      Array.from({ length: BATCH }, async () => {
        while (next < transactions.length) {
          const request = buildHttpRerun(transactions[next++] as never, replayTask);
          await new Promise<void>((resolve, reject) => {
            const req = http.request(
              {
                host: '127.0.0.1',
                port: stub.port,
                method: request.method,
                path: request.path,
                headers: request.headers,
                agent,
              },
              (res) => {
                res.resume();
                res.once('end', resolve);
              },
            );
            req.once('error', reject);
            req.end(request.body);
          });
        }
      }),
    );
    const replayMs = Date.now() - replayStart;
    agent.destroy();

    const worker = await env.startWorker({
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      WORKER_CONCURRENCY: String(BATCH),
      LOG_LEVEL: 'error',
    });
    const taskId = await insertTask(env.db, tids, { batchSize: BATCH });
    const start = Date.now();
    await worker.get(RerunScheduler).schedule(taskId, BATCH);
    await waitForTaskStatus(env.db, taskId, 'Completed', 'tasks', 120000);
    const engineMs = Date.now() - start;

    expect(stub.forTask(taskId)).toHaveLength(ITEMS);
    expect(
      (await readItems(env.db, taskId)).every(
        (item) => item.tstatus === 'Completed' && item.rerunStatus === 'Successful',
      ),
    ).toBe(true);
    const engineRate = (ITEMS * 1000) / engineMs;
    const replayRate = (ITEMS * 1000) / replayMs;
    process.stdout.write(
      `\n[throughput] engine: ${ITEMS} items in ${engineMs} ms = ${engineRate.toFixed(0)} items/s; ` +
        `plain keep-alive client: ${replayMs} ms = ${replayRate.toFixed(0)} req/s; ratio ${(engineRate / replayRate).toFixed(2)}\n`,
    );
  }, 180000);
});

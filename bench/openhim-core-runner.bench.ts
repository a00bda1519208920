/**
 * Reruns per second: OpenHIM core 4.0.5's own task runner vs ours, on the same core release and
 * configuration, the same transactions, the same batchSize and the same upstream.
 *
 *   npm run build && npx jest --roots '<rootDir>/bench' --testRegex 'openhim-core.*\.bench\.ts$' --testTimeout 1800000
 *
 * Settings (environment): BENCH_TRANSACTIONS (300), BENCH_BATCH_SIZE (10), BENCH_CORE_POLL_MS
 * ("2000,100": core's default poll period, and a tuned one), BENCH_UPSTREAM_LATENCY_MS (0).
 *
 * Core's runner takes one round of batchSize transactions per poll of its Queued tasks
 * (rerun.processor.pollPeriodMillis); ours keeps batchSize reruns in flight until the task is done.
 * Each phase runs core afresh on the same database (core's runner cannot be switched at run time,
 * and it must be off while ours runs, or both would take the task). Not part of npm test.
 */
import { ObjectId } from 'mongodb';
import { createClientAndChannel, ROOT, routeRequests } from '../test/openhim-core/core-fixtures';
import { CORE_VERSION, OpenhimCore } from '../test/openhim-core/core-process';
import { apiCall } from '../test/openhim-core/http';
import { Upstream } from '../test/openhim-core/upstream';
import { waitFor } from '../test/support/wait';
import { TestEnvironment } from '../test/support/test-environment';
import { ensureBuilt, WorkerProcess } from '../test/support/worker-process';

const TRANSACTIONS = Number(process.env.BENCH_TRANSACTIONS ?? 300);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 10);
const CORE_POLL_MS = (process.env.BENCH_CORE_POLL_MS ?? '2000,100').split(',').map(Number);
const UPSTREAM_LATENCY_MS = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 0);

interface Row {
  runner: string;
  seconds: number;
  perSecond: number;
}

const print = (text: string) => process.stdout.write(`${text}\n`);

it(
  `reruns per second: OpenHIM core ${CORE_VERSION}'s task runner vs ours`,
  async () => {
    await ensureBuilt();
    const env = await TestEnvironment.start();
    const upstream = await Upstream.start();
    upstream.latencyMs = 0;
    const rows: Row[] = [];
    let core: OpenhimCore | undefined;
    const workers: WorkerProcess[] = [];
    try {
      // The transactions: routed once through core, so they are core's own.
      core = await OpenhimCore.start({ mongoUri: env.mongoUri });
      await createClientAndChannel(core, env.db, upstream.port);
      const tids = await routeRequests(core, env.db, 'bench', TRANSACTIONS, 16);
      await core.stop();
      upstream.latencyMs = UPSTREAM_LATENCY_MS;

      /** Runs one task to completion; the time is the task's own `completedDate - created`. */
      const measure = async (runner: string, create: () => Promise<string>) => {
        const before = upstream.requests.length;
        const taskId = await create();
        const task = await waitFor(
          `${runner} to complete the task`,
          async () => {
            const doc = await env.db.collection('tasks').findOne({ _id: new ObjectId(taskId) });
            return doc?.status === 'Completed' ? doc : undefined;
          },
          30 * 60 * 1000,
        );
        const received = upstream.requests.length - before;
        if (received !== TRANSACTIONS)
          throw new Error(`${runner}: the upstream received ${received} reruns, expected ${TRANSACTIONS}`);
        const seconds = (task.completedDate.getTime() - task.created.getTime()) / 1000;
        rows.push({ runner, seconds, perSecond: TRANSACTIONS / seconds });
        print(`${runner}: ${TRANSACTIONS} reruns in ${seconds.toFixed(2)} s`);
      };

      for (const pollPeriodMillis of CORE_POLL_MS) {
        core = await OpenhimCore.start({ mongoUri: env.mongoUri, taskProcessor: true, pollPeriodMillis });
        await measure(`OpenHIM core ${CORE_VERSION} runner (pollPeriodMillis ${pollPeriodMillis})`, async () => {
          const answer = await apiCall(core!.apiUrl, ROOT, '/tasks', {
            method: 'POST',
            body: { tids, batchSize: BATCH_SIZE },
          });
          if (answer.status !== 201) throw new Error(`core POST /tasks: ${answer.status} ${answer.body}`);
          return answer.body.match(/([0-9a-f]{24})$/)![1];
        });
        await core.stop();
      }

      core = await OpenhimCore.start({ mongoUri: env.mongoUri });
      const engine = { RERUN_HOST: '127.0.0.1', RERUN_HTTP_PORT: String(core.ports.rerun) };
      const { baseUrl } = await env.startApi({ ...engine, LOG_LEVEL: 'error' }, { withWorker: false });
      workers.push(await WorkerProcess.start(env, engine));
      await measure('ours (API + one worker process)', async () => {
        const answer = await apiCall(baseUrl, ROOT, '/tasks', {
          method: 'POST',
          body: { tids, batchSize: BATCH_SIZE },
        });
        if (answer.status !== 201) throw new Error(`our POST /tasks: ${answer.status} ${answer.body}`);
        return answer.body.match(/([0-9a-f]{24})$/)![1];
      });
    } finally {
      await Promise.all(workers.map((worker) => worker.kill('SIGTERM')));
      await core?.stop();
      await upstream.close();
      await env.stop();
    }

    const ours = rows[rows.length - 1];
    print('');
    print(
      `${TRANSACTIONS} transactions, batchSize ${BATCH_SIZE}, upstream latency ${UPSTREAM_LATENCY_MS} ms, Node ${process.version}`,
    );
    print('| runner | seconds | reruns/s | ours ÷ this |');
    print('|---|---|---|---|');
    for (const row of rows) {
      print(
        `| ${row.runner} | ${row.seconds.toFixed(2)} | ${row.perSecond.toFixed(1)} | ${(ours.perSecond / row.perSecond).toFixed(2)} |`,
      );
    }
  },
  60 * 60 * 1000,
);

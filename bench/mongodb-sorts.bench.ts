/**
 * `npm run bench:mongodb-sorts` (issue 22): the two reads that sort a whole collection, at sizes where
 * MongoDB 4.2 refuses to sort in memory, against the embedded server announcing 4.2 (which enforces
 * 4.2's limits: a `find` whose sort no index gives fails past internalQueryExecMaxBlockingSortBytes,
 * 32 MiB, with code 96; an aggregation `$sort` past 100 MiB unless `allowDiskUse`):
 * - POST /bulkrerun selecting 200 000 failed transactions of about 1 KB each, inserted in random
 *   timestamp order: timed from the request until the last of its tasks exists with all its items,
 *   and the items checked oldest first across the tasks;
 * - GET /tasks?filterLimit=0 over 50 000 core-shaped tasks of about 1 KB each: timed against a plain
 *   unsorted driver `find` of the same documents and fields (ABBA: baseline, ours, ours, baseline,
 *   after one warm-up of each), the answer checked complete and newest first;
 * - the failure mode avoided, in the same run, through the driver: the old queries (a `find` sorted
 *   on request.timestamp, _id; a `find` of the tasks sorted on a field no index gives) refused with 96.
 * Prints one table. Not part of npm test.
 *
 * Processes: the embedded server (`--mongodb-version 4.2`), a private redis-server and the API
 * (dist/main.api.js; no worker: the bulk rerun's tasks are created paused).
 *
 * Settings (environment): BENCH_SCALE (default 1) multiplies both sizes; BENCH_MONGO_NODE_OPTIONS /
 * BENCH_API_NODE_OPTIONS become the NODE_OPTIONS of the embedded server / the API.
 */
import { cpus } from 'node:os';
import { BSON, MongoClient, ObjectId, type AggregationCursor, type Db, type FindCursor } from 'mongodb';
import { startPrivateRedis, type PrivateRedis } from '../src/bootstrap/private-redis';
import { findFreePort } from '../src/common/net/free-port';
import { PUBLIC_TASK_FIELDS } from '../src/database/repositories/tasks.repository';
import { insertTransactions } from '../test/support/database-fixtures';
import { request, type HttpResult } from '../test/support/http';
import { ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from '../test/support/openhim-auth';
import { distEntry, mongoWireCli, runNode, type RunningProcess, stopProcess } from '../test/support/processes';
import { waitFor } from '../test/support/wait';
import { ensureBuilt } from '../test/support/worker-process';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const size = (n: number, min: number) => Math.max(min, Math.round(n * SCALE));
const TRANSACTIONS = size(200000, 1000);
const TASKS = size(50000, 500);
/** BULK_RERUN_TASK_SIZE (the service's default). */
const TASK_SIZE = 10000;
const MONGODB_VERSION = '4.2';
/** MongoDB 4.2's internalQueryExecMaxBlockingSortBytes (find) and internalDocumentSourceSortMaxBlockingSortBytes. */
const FIND_SORT_LIMIT = 32 * 1024 * 1024;
const AGGREGATE_SORT_LIMIT = 100 * 1024 * 1024;
const BULK_TIMEOUT_MS = 30 * 60 * 1000;
const GET_TIMEOUT_MS = 10 * 60 * 1000;
const INSERT_BATCH = 5000;

const MONGO_NODE_OPTIONS = process.env.BENCH_MONGO_NODE_OPTIONS;
const API_NODE_OPTIONS = process.env.BENCH_API_NODE_OPTIONS;
const nodeOptions = (options: string | undefined): Record<string, string> => (options ? { NODE_OPTIONS: options } : {});

const print = (text: string) => process.stdout.write(`${text}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

/** Inserts in batches of INSERT_BATCH; returns the documents' total BSON size. */
async function insertInBatches(db: Db, collection: string, count: number, make: (i: number) => BSON.Document) {
  let bytes = 0;
  for (let start = 0; start < count; start += INSERT_BATCH) {
    const docs = Array.from({ length: Math.min(INSERT_BATCH, count - start) }, (_, i) => make(start + i));
    for (const doc of docs) bytes += BSON.calculateObjectSize(doc);
    await db.collection(collection).insertMany(docs, { ordered: false });
  }
  return bytes;
}

/** A random permutation of 0..n-1. */
function shuffled(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * What a query answered to its first batch (a blocking sort sorts everything before it): the error's
 * code and message, or that it was not refused. The cursor is closed either way.
 */
async function refusal(cursor: FindCursor | AggregationCursor): Promise<{ code?: number; message: string }> {
  try {
    await cursor.next();
    return { message: 'not refused' };
  } catch (error) {
    const { code, message } = error as { code?: number; message: string };
    return { code, message };
  } finally {
    await cursor.close().catch(() => undefined);
  }
}

interface Row {
  bench: string;
  figure: string;
  baseline: string;
  ratio?: number;
  check: string;
}

it(
  'npm run bench:mongodb-sorts: bulk rerun and the full task list on a MongoDB 4.2 with its sort limits',
  async () => {
    await ensureBuilt();
    const rows: Row[] = [];
    const problems: string[] = [];
    const notes: string[] = [];
    let mongo: RunningProcess | undefined;
    let api: RunningProcess | undefined;
    let redis: PrivateRedis | undefined;
    let client: MongoClient | undefined;

    try {
      mongo = runNode(
        mongoWireCli(),
        ['--port', '0', '--mongodb-version', MONGODB_VERSION],
        nodeOptions(MONGO_NODE_OPTIONS),
      );
      const [, mongoUrl] = await mongo.waitForOutput(/listening at (mongodb:\/\/\S+)/, 30000);
      redis = await startPrivateRedis();
      client = await MongoClient.connect(mongoUrl);
      const db = client.db('openhim-sorts-bench');
      const admin = client.db('admin');
      const announced = ((await admin.command({ buildInfo: 1 })) as { version?: string }).version ?? '?';
      if (!announced.startsWith(`${MONGODB_VERSION}.`))
        problems.push(`the embedded server announces ${announced}, not ${MONGODB_VERSION}`);
      const sortLimit = await admin
        .command({ getParameter: 1, internalQueryExecMaxBlockingSortBytes: 1 })
        .then((answer) => String(answer.internalQueryExecMaxBlockingSortBytes))
        .catch((error: Error) => `not known (${error.message})`);
      notes.push(`embedded server: MongoDB ${announced}, internalQueryExecMaxBlockingSortBytes ${sortLimit}`);

      // The API, no worker ----------------------------------------------------------------------------
      const port = await findFreePort();
      api = runNode(distEntry('main.api.js'), [], {
        MONGODB_URI: `${mongoUrl}/openhim-sorts-bench`,
        REDIS_URL: redis.url,
        QUEUE_PREFIX: 'bench-sorts',
        API_PORT: String(port),
        API_HOST: '127.0.0.1',
        API_PROTOCOL: 'http',
        LOG_LEVEL: 'warn',
        BULK_RERUN_TASK_SIZE: String(TASK_SIZE),
        MAX_TASK_TIDS: String(Math.max(100000, TASK_SIZE)),
        ...nodeOptions(API_NODE_OPTIONS),
      });
      const apiProc = api;
      const base = `http://127.0.0.1:${port}`;
      await waitFor(
        'the API',
        async () => {
          if (apiProc.child.exitCode !== null) throw new Error(`the API exited:\n${apiProc.output()}`);
          return (await request(`${base}/health/live`).catch(() => ({ status: 0 }))).status === 200;
        },
        { timeoutMs: 60000, failFast: true },
      );
      const user = await waitFor('the root user', () => db.collection('users').findOne({ email: ROOT_EMAIL }), 30000);
      const passport = await db.collection('passports').findOne({ email: ROOT_EMAIL, protocol: 'token' });
      const salt = (passport?.passwordSalt ?? user.passwordSalt) as string;
      const auth = () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, salt);

      // 1. POST /bulkrerun over TRANSACTIONS transactions ------------------------------------------------
      const now = Date.now();
      const span = 30 * 24 * 3600 * 1000;
      const timestamps = Array.from(
        { length: TRANSACTIONS },
        () => new Date(now - 60000 - Math.floor(Math.random() * span)),
      );
      const ids = Array.from({ length: TRANSACTIONS }, () => new ObjectId());
      const body = 'x'.repeat(800);
      const transactionDoc = (i: number) => ({
        _id: ids[i],
        status: 'Failed',
        childIDs: [],
        canRerun: true,
        request: {
          host: 'localhost',
          port: '5001',
          method: 'POST',
          path: `/fhir/Patient/${i}`,
          querystring: '',
          headers: { 'content-type': 'application/json' },
          body: '{"resourceType":"Patient"}',
          timestamp: timestamps[i],
        },
        response: { status: 500, headers: { 'content-type': 'text/plain' }, body, timestamp: timestamps[i] },
      });
      let transactionBytes = 0;
      for (let start = 0; start < TRANSACTIONS; start += INSERT_BATCH) {
        const docs = Array.from({ length: Math.min(INSERT_BATCH, TRANSACTIONS - start) }, (_, i) =>
          transactionDoc(start + i),
        );
        for (const doc of docs) transactionBytes += BSON.calculateObjectSize(doc);
        await insertTransactions(db, docs);
      }
      const oldestFirst = ids
        .map((id, i) => ({ hex: id.toHexString(), at: timestamps[i].getTime() }))
        .sort((a, b) => a.at - b.at || (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : 0))
        .map((entry) => entry.hex);
      print(`inserted ${TRANSACTIONS} transactions, ${mb(transactionBytes)} of BSON`);

      const expectedTasks = Math.ceil(TRANSACTIONS / TASK_SIZE);
      const bulkTasks = db.collection('tasks');
      const bulkStarted = performance.now();
      const answer = await request(`${base}/bulkrerun`, {
        method: 'POST',
        headers: auth(),
        body: { filters: { status: 'Failed' }, batchSize: 1, pauseQueue: true },
        timeoutMs: BULK_TIMEOUT_MS,
      });
      const answeredMs = performance.now() - bulkStarted;
      if (answer.status !== 200) throw new Error(`POST /bulkrerun: ${answer.status} ${answer.body.slice(0, 300)}`);
      const bulkFilter = { 'history.reason': 'bulk rerun' };
      await waitFor(
        `${expectedTasks} bulk rerun tasks`,
        async () => (await bulkTasks.countDocuments(bulkFilter)) >= expectedTasks,
        { timeoutMs: BULK_TIMEOUT_MS, intervalMs: 50 },
      );
      const bulkMs = performance.now() - bulkStarted;

      const created = await bulkTasks
        .find(bulkFilter, { projection: { _id: 1, created: 1, totalTransactions: 1 } })
        .toArray();
      created.sort(
        (a, b) =>
          (a.created as Date).getTime() - (b.created as Date).getTime() ||
          a._id.toHexString().localeCompare(b._id.toHexString()),
      );
      const selected: string[] = [];
      for (const task of created) {
        const items = await db
          .collection('taskitems')
          .find({ taskId: task._id }, { projection: { _id: 0, tid: 1 } })
          .sort({ seq: 1 })
          .toArray();
        selected.push(...items.map((item) => String(item.tid)));
      }
      const firstMismatch = oldestFirst.findIndex((tid, i) => selected[i] !== tid);
      const inOrder = selected.length === oldestFirst.length && firstMismatch === -1;
      if (created.length !== expectedTasks)
        problems.push(`${created.length} bulk rerun tasks, ${expectedTasks} expected`);
      if (!inOrder)
        problems.push(
          `bulk rerun items: ${selected.length} of ${TRANSACTIONS}, first out of order at ${firstMismatch}`,
        );
      rows.push({
        bench: `1. POST /bulkrerun, ${TRANSACTIONS} transactions (${mb(transactionBytes)}) -> ${expectedTasks} paused tasks`,
        figure: `${seconds(bulkMs)} until the last task exists (answered in ${answeredMs.toFixed(0)} ms)`,
        baseline: `per 10 000 transactions: ${seconds((bulkMs * 10000) / TRANSACTIONS)}`,
        check: `${created.length} tasks, ${selected.length} items, oldest first: ${inOrder ? 'yes' : 'NO'}`,
      });
      print(`1. bulk rerun: ${rows[rows.length - 1].figure}`);

      // 2. GET /tasks?filterLimit=0 over TASKS tasks -----------------------------------------------------
      const tasksCreated = Date.now() - 365 * 24 * 3600 * 1000;
      const order = shuffled(TASKS);
      const taskBytes = await insertInBatches(db, 'tasks', TASKS, (i) => {
        const n = order[i];
        return {
          _id: new ObjectId(),
          status: 'Completed',
          transactions: Array.from({ length: 6 }, () => ({
            _id: new ObjectId(),
            tid: new ObjectId().toHexString(),
            tstatus: 'Completed',
            rerunID: new ObjectId().toHexString(),
            rerunStatus: 'Failed',
          })),
          created: new Date(tasksCreated + n * 1000),
          completedDate: new Date(tasksCreated + n * 1000 + 500),
          user: `user-${n % 97}@openhim.org`,
          remainingTransactions: 0,
          totalTransactions: 6,
          batchSize: 1,
          __v: 0,
        };
      });
      print(`inserted ${TASKS} tasks, ${mb(taskBytes)} of BSON`);
      await waitFor(
        'the index created_-1__id_-1 on tasks',
        async () => (await bulkTasks.indexes()).some((index) => index.name === 'created_-1__id_-1'),
        { timeoutMs: 120000, intervalMs: 200 },
      );

      const allTasks = await bulkTasks.find({}, { projection: { _id: 1, created: 1 } }).toArray();
      const newestFirst = allTasks
        .map((task) => ({ hex: task._id.toHexString(), at: (task.created as Date).getTime() }))
        .sort((a, b) => b.at - a.at || (a.hex < b.hex ? 1 : a.hex > b.hex ? -1 : 0))
        .map((task) => task.hex);
      const fields = Object.fromEntries(PUBLIC_TASK_FIELDS.map((field) => [field, 1]));
      const baselineRead = async () => {
        const t0 = performance.now();
        const docs = await bulkTasks.find({}, { projection: fields }).toArray();
        const ms = performance.now() - t0;
        if (docs.length !== allTasks.length) problems.push(`baseline read ${docs.length} of ${allTasks.length}`);
        return ms;
      };
      let listChecked = '';
      const ourRead = async () => {
        const t0 = performance.now();
        const listed: HttpResult = await request(`${base}/tasks?filterLimit=0`, {
          headers: auth(),
          timeoutMs: GET_TIMEOUT_MS,
        });
        const ms = performance.now() - t0;
        if (listed.status !== 200) {
          problems.push(`GET /tasks?filterLimit=0: ${listed.status} ${listed.body.slice(0, 300)}`);
          return ms;
        }
        const list = JSON.parse(listed.body) as Array<{ _id: string }>;
        const mismatch = newestFirst.findIndex((hex, i) => list[i]?._id !== hex);
        const ok = list.length === newestFirst.length && mismatch === -1;
        listChecked = `${list.length} of ${newestFirst.length} tasks, newest first: ${ok ? 'yes' : 'NO'} (${mb(Buffer.byteLength(listed.body))} of JSON)`;
        if (!ok)
          problems.push(
            `GET /tasks?filterLimit=0 listed ${list.length} of ${newestFirst.length}, first out of order at ${mismatch}`,
          );
        return ms;
      };
      // Warm-up, then ABBA.
      await baselineRead();
      await ourRead();
      const b1 = await baselineRead();
      const o1 = await ourRead();
      const o2 = await ourRead();
      const b2 = await baselineRead();
      const [ours, baseline] = [(o1 + o2) / 2, (b1 + b2) / 2];
      rows.push({
        bench: `2. GET /tasks?filterLimit=0, ${allTasks.length} tasks (${mb(taskBytes)})`,
        figure: `${ours.toFixed(0)} ms (${o1.toFixed(0)}, ${o2.toFixed(0)})`,
        baseline: `unsorted driver find, same fields: ${baseline.toFixed(0)} ms (${b1.toFixed(0)}, ${b2.toFixed(0)})`,
        ratio: ours / baseline,
        check: listChecked,
      });
      print(`2. GET /tasks: ${rows[rows.length - 1].figure}`);

      // 3. What the old queries get from a MongoDB 4.2 ------------------------------------------------------
      const refusals: Array<{
        what: string;
        expected: number;
        over: boolean;
        run: () => FindCursor | AggregationCursor;
      }> = [
        {
          what: "transactions.find({}).sort({'request.timestamp': 1, _id: 1})",
          expected: 96,
          over: transactionBytes > FIND_SORT_LIMIT,
          run: () => db.collection('transactions').find({}).sort({ 'request.timestamp': 1, _id: 1 }).batchSize(1),
        },
        {
          what: 'tasks.find({}).sort({user: 1})',
          expected: 96,
          over: taskBytes > FIND_SORT_LIMIT,
          run: () => db.collection('tasks').find({}).sort({ user: 1 }).batchSize(1),
        },
        {
          what: "transactions.aggregate([{$sort: {'request.timestamp': 1, _id: 1}}]) without allowDiskUse",
          expected: 16819,
          over: transactionBytes > AGGREGATE_SORT_LIMIT,
          run: () =>
            db.collection('transactions').aggregate([{ $sort: { 'request.timestamp': 1, _id: 1 } }], { batchSize: 1 }),
        },
      ];
      for (const { what, expected, over, run } of refusals) {
        const got = await refusal(run());
        const as = got.code === expected;
        if (!as && over) problems.push(`${what}: expected code ${expected}, got ${got.code ?? '-'}: ${got.message}`);
        rows.push({
          bench: `3. old query: ${what}`,
          figure: got.code === undefined ? got.message : `code ${got.code}: ${got.message.slice(0, 160)}`,
          baseline: '-',
          check: as
            ? `refused as 4.2 refuses (${expected})`
            : over
              ? `NOT refused with ${expected}`
              : 'under the limit',
        });
        print(`3. ${what}: ${rows[rows.length - 1].figure}`);
      }

      printTable(rows, notes);
    } finally {
      await client?.close().catch(() => undefined);
      await stopProcess(api);
      await stopProcess(mongo);
      await redis?.stop();
    }
    expect(problems).toEqual([]);
  },
  2 * 60 * 60 * 1000,
);

function printTable(rows: Row[], notes: string[]): void {
  const header = ['Benchmark', 'Figure', 'Baseline (same run)', 'Ratio', 'Check'];
  const cells = rows.map((row) => [
    row.bench,
    row.figure,
    row.baseline,
    row.ratio === undefined ? '-' : row.ratio.toFixed(2),
    row.check,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  print(
    [
      `Machine: ${cpus().length} cores, scale ${SCALE}; ${notes.join('; ')}`,
      line(header),
      `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
      ...cells.map(line),
    ].join('\n'),
  );
}

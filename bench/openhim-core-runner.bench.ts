/**
 * `npm run bench:openhim-core` (issue 13): reruns per second through OpenHIM core 4.0.5 (the dev
 * dependency), three ways, on the same core release, transactions, concurrency and upstream:
 * - core's own task runner (at its default poll, `rerun.processor.pollPeriodMillis` 2000);
 * - this service (its API and one worker process), the task's batchSize = the concurrency;
 * - the ceiling: a plain keep-alive HTTP client replaying the same rerun requests (built by
 *   src/rerun/sending/rerun-request.ts, a paused task of ours as `taskID`) straight into core's
 *   rerun port, `concurrency` at a time.
 * Prints one table from one run, with the two ratios. Not part of npm test.
 *
 * Every process runs on its own, as in a deployment: the MongoDB-compatible server
 * (packages/mongo-wire, with bench/mongo-tap.cjs accounting for every command), redis-server,
 * core (cluster master + worker, with bench/core-tap.cjs counting the connections its ports accept),
 * our API and worker; the upstream and the replay client run in this process. Ours and the replay
 * run ABBA (replay, ours, ours, replay, BENCH_ROUNDS rounds) on one core, so that the growth of
 * `transactions` (core stores one child per rerun) and any drift of the machine weigh on both
 * alike; each figure is the mean of its runs, and each round's ratio (its two adjacent runs) is
 * printed too: on a shared machine a run can differ from the next by 20% or more.
 *
 * Settings (environment): BENCH_TRANSACTIONS (600), BENCH_CONCURRENCY ("10,50"), BENCH_CORE_POLL_MS
 * ("2000"; "" skips core's runner), BENCH_ROUNDS (2), BENCH_UPSTREAM_LATENCY_MS (0),
 * BENCH_WORKER_ENV ("NAME=value,...": extra settings for our worker), BENCH_JSON (a file for every
 * run's figures as JSON).
 * Profiling: BENCH_WORKER_NODE_OPTIONS / BENCH_MONGO_NODE_OPTIONS / BENCH_CORE_NODE_ARGS with
 * `--require <abs path>/bench/cpu-profile.cjs` and CPU_PROFILE_DIR (core's cluster worker inherits
 * the arguments).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db, MongoClient, ObjectId } from 'mongodb';
import { startPrivateRedis, type PrivateRedis } from '../src/bootstrap/private-redis';
import { findFreePort } from '../src/common/net/free-port';
import { buildHttpRerun, type HttpRerunRequest, type RerunSource } from '../src/rerun/sending/rerun-request';
import { createClientAndChannel, ROOT, routeRequests } from '../test/compat/openhim-core/core-fixtures';
import { CORE_VERSION, OpenhimCore } from '../test/compat/openhim-core/core-process';
import { Upstream } from '../test/compat/openhim-core/upstream';
import { apiCall } from '../test/support/http';
import { distEntry, mongoWireCli, runNode, type RunningProcess, stopProcess } from '../test/support/processes';
import { waitFor } from '../test/support/wait';
import { ensureBuilt } from '../test/support/worker-process';

const TRANSACTIONS = Number(process.env.BENCH_TRANSACTIONS ?? 600);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '10,50').split(',').filter(Boolean).map(Number);
const CORE_POLL_MS = (process.env.BENCH_CORE_POLL_MS ?? '2000').split(',').filter(Boolean).map(Number);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2));
const UPSTREAM_LATENCY_MS = Number(process.env.BENCH_UPSTREAM_LATENCY_MS ?? 0);
const WORKER_ENV = Object.fromEntries(
  (process.env.BENCH_WORKER_ENV ?? '')
    .split(',')
    .filter((pair) => pair.includes('='))
    .map((pair) => [pair.slice(0, pair.indexOf('=')).trim(), pair.slice(pair.indexOf('=') + 1).trim()]),
);
const TAP = join(__dirname, 'mongo-tap.cjs');
const CORE_TAP = join(__dirname, 'core-tap.cjs');
const CORE_TAP_FILE = join(mkdtempSync(join(tmpdir(), 'core-tap-')), 'connections');
const PROFILE_ENV: Record<string, string> = process.env.CPU_PROFILE_DIR
  ? { CPU_PROFILE_DIR: process.env.CPU_PROFILE_DIR }
  : {};

const print = (text: string) => process.stdout.write(`${text}\n`);

// ---- what a run cost --------------------------------------------------------------------------------

/** CPU seconds (user + system) of the processes whose pid or process group is given. */
function cpuSeconds(pids: number[], groups: number[] = []): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
      // fields[2] is the process group; [11], [12] utime, stime in clock ticks (100/s on Linux).
      if (pids.includes(Number(entry)) || groups.includes(Number(fields[2])))
        total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** Connections core's processes accepted so far on `port` (bench/core-tap.cjs, written every 200 ms). */
async function coreConnections(port: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 300));
  const dir = join(CORE_TAP_FILE, '..');
  let total = 0;
  for (const name of readdirSync(dir)) {
    try {
      total += Number((JSON.parse(readFileSync(join(dir, name), 'utf8')) as Record<string, number>)[port] ?? 0);
    } catch {
      // being written
    }
  }
  return total;
}

interface TapFigure {
  app: string;
  command: string;
  collection: string;
  count: number;
  ns: number;
  cpuUs: number;
  examined: number;
  scans: number;
  replyBytes: number;
}

interface Cost {
  seconds: number;
  /** CPU cores used while it ran, per process. */
  cores: Record<string, number>;
  figures: TapFigure[];
  /** Connections core's rerun port accepted during the run. */
  rerunConnections: number;
}

interface Row {
  runner: 'core' | 'ours' | 'replay';
  label: string;
  concurrency: number;
  seconds: number;
  perSecond: number;
  /** Mean time from a rerun's send to its answer (ours: the worker's metric; replay: the client's). */
  meanAnswerMs?: number;
  cost: Cost;
}

// ---- the bench -------------------------------------------------------------------------------------

it(
  `reruns per second through OpenHIM core ${CORE_VERSION}: its task runner, ours, and a plain client's ceiling`,
  async () => {
    await ensureBuilt();
    const rows: Row[] = [];
    let mongo: RunningProcess | undefined;
    let redis: PrivateRedis | undefined;
    let client: MongoClient | undefined;
    let core: OpenhimCore | undefined;
    let api: RunningProcess | undefined;
    let worker: RunningProcess | undefined;
    const upstream = await Upstream.start();
    const startLoad = loadavg();
    try {
      mongo = runNode(mongoWireCli(), ['--port', '0'], {
        NODE_OPTIONS: `--require ${TAP} ${process.env.BENCH_MONGO_NODE_OPTIONS ?? ''}`,
        ...PROFILE_ENV,
      });
      const [, mongoUrl] = await mongo.waitForOutput(/listening at (mongodb:\/\/\S+)/, 30000);
      const dbUri = (app: string) => `${mongoUrl}/openhim-bench?directConnection=true&appName=${app}`;
      redis = await startPrivateRedis();
      client = await MongoClient.connect(dbUri('bench'));
      const db: Db = client.db('openhim-bench');
      const tap = async (): Promise<TapFigure[]> =>
        ((await db.command({ benchTapStats: 1, reset: true })) as unknown as { figures: TapFigure[] }).figures;

      const coreOptions = {
        mongoUri: dbUri('openhim-core'),
        nodeArgs: ['--require', CORE_TAP, ...(process.env.BENCH_CORE_NODE_ARGS?.split(' ').filter(Boolean) ?? [])],
        env: { ...PROFILE_ENV, CORE_TAP_FILE },
      };
      // The transactions: routed once through core, so they are core's own.
      core = await OpenhimCore.start(coreOptions);
      await createClientAndChannel(core, db, upstream.port);
      const tids = await routeRequests(core, db, 'bench', TRANSACTIONS, 16);
      const originals = await db
        .collection('transactions')
        .find({ _id: { $in: tids.map((tid) => new ObjectId(tid)) } })
        .toArray();
      const byId = new Map(originals.map((doc) => [String(doc._id), doc as unknown as RerunSource]));
      await core.stop();
      core = undefined;
      upstream.latencyMs = UPSTREAM_LATENCY_MS;

      const serviceEnv = (app: string): Record<string, string> => ({
        MONGODB_URI: dbUri(app),
        REDIS_URL: redis!.url,
        QUEUE_PREFIX: 'bench-core',
        LOG_LEVEL: 'warn',
      });
      const apiPort = await findFreePort();
      api = runNode(distEntry('main.api.js'), [], {
        ...serviceEnv('rerun-api'),
        API_PORT: String(apiPort),
        API_HOST: '127.0.0.1',
        API_PROTOCOL: 'http',
      });
      const apiUrl = `http://127.0.0.1:${apiPort}`;
      await waitFor('our API', () => httpStatus(`${apiUrl}/health/live`).then((status) => status === 200), 60000, 100);
      const createTask = async (body: object): Promise<string> => {
        const answer = await apiCall(apiUrl, ROOT, '/tasks', { method: 'POST', body });
        if (answer.status !== 201) throw new Error(`our POST /tasks: ${answer.status} ${answer.body}`);
        return answer.body.match(/([0-9a-f]{24})$/)![1];
      };

      /** Runs `body` and records what it cost: CPU per process, MongoDB commands, TCP connections. */
      const costed = async <T>(body: () => Promise<T>): Promise<{ result: T; cost: Cost }> => {
        const pids = () => ({
          mongo: [mongo!.child.pid!],
          core: core?.child.pid,
          worker: worker?.child.pid,
          api: api!.child.pid!,
        });
        const p = pids();
        const before = {
          mongo: cpuSeconds(p.mongo),
          core: p.core ? cpuSeconds([], [p.core]) : 0,
          worker: p.worker ? cpuSeconds([p.worker]) : 0,
          api: cpuSeconds([p.api]),
          self: process.cpuUsage(),
        };
        await tap();
        const rerunPort = core?.ports.rerun;
        const connectionsBefore = rerunPort ? await coreConnections(rerunPort) : 0;
        const started = process.hrtime.bigint();
        const result = await body();
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const figures = await tap();
        const connectionsAfter = rerunPort ? await coreConnections(rerunPort) : 0;
        const self = process.cpuUsage(before.self);
        const cores = {
          mongo: (cpuSeconds(p.mongo) - before.mongo) / seconds,
          core: p.core ? (cpuSeconds([], [p.core]) - before.core) / seconds : 0,
          worker: p.worker ? (cpuSeconds([p.worker]) - before.worker) / seconds : 0,
          api: (cpuSeconds([p.api]) - before.api) / seconds,
          'bench+upstream': (self.user + self.system) / 1e6 / seconds,
        };
        return {
          result,
          cost: {
            seconds,
            cores,
            figures,
            rerunConnections: connectionsAfter - connectionsBefore,
          },
        };
      };

      const expectUpstream = (runner: string, before: number) => {
        const received = upstream.requests.length - before;
        if (received !== TRANSACTIONS)
          throw new Error(`${runner}: the upstream received ${received} reruns, expected ${TRANSACTIONS}`);
      };

      const waitCompleted = (runner: string, taskId: string) =>
        waitFor(
          `${runner} to complete the task`,
          async () => {
            const doc = await db.collection('tasks').findOne({ _id: new ObjectId(taskId) });
            return doc?.status === 'Completed' ? doc : undefined;
          },
          30 * 60 * 1000,
          250,
        );

      for (const concurrency of CONCURRENCIES) {
        // Core's own runner: one core per poll period (it cannot be switched at run time).
        for (const pollPeriodMillis of CORE_POLL_MS) {
          core = await OpenhimCore.start({ ...coreOptions, taskProcessor: true, pollPeriodMillis });
          const label = `OpenHIM core ${CORE_VERSION} runner (poll ${pollPeriodMillis} ms)`;
          const before = upstream.requests.length;
          const { result: task, cost } = await costed(async () => {
            const answer = await apiCall(core!.apiUrl, ROOT, '/tasks', {
              method: 'POST',
              body: { tids, batchSize: concurrency },
            });
            if (answer.status !== 201) throw new Error(`core POST /tasks: ${answer.status} ${answer.body}`);
            return waitCompleted(label, answer.body.match(/([0-9a-f]{24})$/)![1]);
          });
          expectUpstream(label, before);
          const seconds = (task.completedDate.getTime() - task.created.getTime()) / 1000;
          rows.push({ runner: 'core', label, concurrency, seconds, perSecond: TRANSACTIONS / seconds, cost });
          print(`batchSize ${concurrency}, ${label}: ${TRANSACTIONS} reruns in ${seconds.toFixed(2)} s`);
          await core.stop();
          core = undefined;
        }

        // Ours and the replay, ABBA, on one core with its runner off.
        core = await OpenhimCore.start(coreOptions);
        const workerPort = await findFreePort();
        worker = runNode(distEntry('main.worker.js'), [], {
          ...serviceEnv('rerun-worker'),
          RERUN_HOST: '127.0.0.1',
          RERUN_HTTP_PORT: String(core.ports.rerun),
          WORKER_HTTP_PORT: String(workerPort),
          WORKER_HTTP_HOST: '127.0.0.1',
          ...WORKER_ENV,
          ...(process.env.BENCH_WORKER_NODE_OPTIONS
            ? { NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS, ...PROFILE_ENV }
            : {}),
        });
        await waitFor(
          'our worker',
          () => httpStatus(`http://127.0.0.1:${workerPort}/health/live`).then((status) => status === 200),
          60000,
          100,
        );
        const metrics = () => rerunDurations(workerPort);
        const pausedTask = await createTask({ tids, batchSize: concurrency, paused: true });
        const requests = tids.map((tid) => buildHttpRerun(byId.get(tid)!, pausedTask));
        const rerunPort = core.ports.rerun;

        const replay = async () => {
          const label = `direct replay (keep-alive client, ${concurrency} at a time)`;
          const before = upstream.requests.length;
          const { result: answerMs, cost } = await costed(() => replayRequests(rerunPort, requests, concurrency));
          expectUpstream(label, before);
          const seconds = cost.seconds;
          rows.push({
            runner: 'replay',
            label,
            concurrency,
            seconds,
            perSecond: TRANSACTIONS / seconds,
            meanAnswerMs: answerMs,
            cost,
          });
          print(`batchSize ${concurrency}, ${label}: ${TRANSACTIONS} reruns in ${seconds.toFixed(2)} s`);
        };
        const ours = async () => {
          const label = 'this service (API + one worker process)';
          const before = upstream.requests.length;
          const durationsBefore = await metrics();
          const { result: task, cost } = await costed(async () =>
            waitCompleted(label, await createTask({ tids, batchSize: concurrency })),
          );
          expectUpstream(label, before);
          const durations = await metrics();
          const seconds = (task.completedDate.getTime() - task.created.getTime()) / 1000;
          rows.push({
            runner: 'ours',
            label,
            concurrency,
            seconds,
            perSecond: TRANSACTIONS / seconds,
            meanAnswerMs: ((durations.sum - durationsBefore.sum) / (durations.count - durationsBefore.count)) * 1000,
            cost,
          });
          print(`batchSize ${concurrency}, ${label}: ${TRANSACTIONS} reruns in ${seconds.toFixed(2)} s`);
        };
        for (let round = 0; round < ROUNDS; round++) {
          if (round % 2 === 0) {
            await replay();
            await ours();
          } else {
            await ours();
            await replay();
          }
        }
        await stopProcess(worker, 10000);
        worker = undefined;
        await core.stop();
        core = undefined;
      }
    } finally {
      await stopProcess(worker, 10000);
      await core?.stop();
      await stopProcess(api, 10000);
      await client?.close().catch(() => undefined);
      await stopProcess(mongo, 10000);
      await redis?.stop();
      await upstream.close();
    }
    printReport(rows, startLoad);
    if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 1));
  },
  2 * 60 * 60 * 1000,
);

// ---- the replay -------------------------------------------------------------------------------------

/** Sends every request, `concurrency` at a time over keep-alive connections; the mean answer time in ms. */
async function replayRequests(port: number, requests: HttpRerunRequest[], concurrency: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  let answerNs = 0;
  const lane = async () => {
    while (next < requests.length) {
      const request = requests[next++];
      const started = process.hrtime.bigint();
      const { status, id } = await send(agent, port, request);
      answerNs += Number(process.hrtime.bigint() - started);
      if (status !== 200 || !id) throw new Error(`core's rerun port answered ${status} (transaction id: ${id})`);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    agent.destroy();
  }
  return answerNs / requests.length / 1e6;
}

function send(agent: http.Agent, port: number, request: HttpRerunRequest): Promise<{ status: number; id?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, agent, method: request.method, path: request.path, headers: request.headers },
      (res) => {
        res.resume();
        res.once('end', () =>
          resolve({ status: res.statusCode ?? 0, id: res.headers['x-openhim-transactionid'] as string | undefined }),
        );
        res.once('error', reject);
      },
    );
    req.setTimeout(60000, () => req.destroy(new Error('no answer within 60 s')));
    req.once('error', reject);
    req.end(request.body);
  });
}

/** The worker's rerun duration histogram (sum in seconds, count) over every outcome. */
async function rerunDurations(port: number): Promise<{ sum: number; count: number }> {
  const text = await new Promise<string>((resolve, reject) =>
    http
      .get(`http://127.0.0.1:${port}/metrics`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.once('end', () => resolve(body));
      })
      .once('error', reject),
  );
  const total = (name: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`openhim_rerun_rerun_duration_seconds_${name}`))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  return { sum: total('sum'), count: total('count') };
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) =>
    http.get(url, (res) => (res.resume(), resolve(res.statusCode ?? 0))).once('error', () => resolve(0)),
  );
}

// ---- the report -------------------------------------------------------------------------------------

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
/** MongoDB clients (appName) of this service; the bench's own; everything else is core's. */
const OURS = new Set(['rerun-worker', 'rerun-api']);
const BENCH = new Set(['bench']);

function printReport(rows: Row[], startLoad: number[]): void {
  const endLoad = loadavg();
  print('');
  print(
    `${TRANSACTIONS} transactions routed through OpenHIM core ${CORE_VERSION}, upstream latency ${UPSTREAM_LATENCY_MS} ms, ` +
      `Node ${process.version}, ${cpus().length} cores; load average before ${startLoad.map((l) => l.toFixed(2)).join(' ')}, ` +
      `after ${endLoad.map((l) => l.toFixed(2)).join(' ')}; ours and replay: mean of ${ROUNDS} runs each (ABBA)`,
  );
  print(
    '| concurrency (batchSize) | core runner | this service | direct replay | service ÷ replay (≥ 0.9) | each round (adjacent runs) | service ÷ core runner (≥ 3) |',
  );
  print('|---|---|---|---|---|---|---|');
  for (const concurrency of CONCURRENCIES) {
    const of = (runner: Row['runner']) =>
      rows.filter((row) => row.concurrency === concurrency && row.runner === runner);
    const ours = mean(of('ours').map((row) => row.perSecond));
    const replay = mean(of('replay').map((row) => row.perSecond));
    const cores = of('core');
    const coreText = cores.map((row) => `${row.perSecond.toFixed(1)}/s (${row.label.replace(/.*\((.*)\)/, '$1')})`);
    const coreRatio = cores.map((row) => (ours / row.perSecond).toFixed(2));
    // Each round's two runs follow each other: their ratio is the least exposed to the machine's drift.
    const rounds = of('ours').map((row, round) => (row.perSecond / of('replay')[round].perSecond).toFixed(2));
    print(
      `| ${concurrency} | ${coreText.join(', ') || '-'} | ${ours.toFixed(1)}/s (${of('ours')
        .map((row) => row.perSecond.toFixed(1))
        .join(', ')}) | ${replay.toFixed(1)}/s (${of('replay')
        .map((row) => row.perSecond.toFixed(1))
        .join(', ')}) | ${(ours / replay).toFixed(2)} | ${rounds.join(', ')} | ${coreRatio.join(', ') || '-'} |`,
    );
  }

  print('');
  print(
    'Per run (CPU: cores each process used while it ran; MongoDB: commands the server ran per rerun and its CPU µs for them; ' +
      "lane gap: a lane's time between an answer and its next send, by Little's law):",
  );
  print(
    "| concurrency | runner | reruns/s | answer ms | lane gap ms | CPU cores | MongoDB per rerun: ours (µs) | MongoDB per rerun: core (µs) | unindexed reads of transactions | connections to core's rerun port per rerun |",
  );
  print('|---|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) {
    const perRerun = (n: number) => n / TRANSACTIONS;
    const sum = (figures: TapFigure[]) =>
      `${perRerun(figures.reduce((n, f) => n + f.count, 0)).toFixed(2)} (${perRerun(figures.reduce((n, f) => n + f.cpuUs, 0)).toFixed(0)})`;
    const ours = row.cost.figures.filter((f) => OURS.has(f.app));
    const core = row.cost.figures.filter((f) => !OURS.has(f.app) && !BENCH.has(f.app));
    const scans = row.cost.figures
      .filter((f) => f.scans && f.collection === 'transactions')
      .map((f) => `${OURS.has(f.app) ? f.app : 'core'} ${f.command}: ${f.scans} (${f.examined} docs)`)
      .join('; ');
    // Little's law per lane: each lane spends `concurrency / throughput` per rerun, of which the
    // answer is `meanAnswerMs`; the rest is the lane's time between an answer and its next send.
    const gap =
      row.meanAnswerMs === undefined ? '-' : ((row.concurrency / row.perSecond) * 1000 - row.meanAnswerMs).toFixed(1);
    const cpu = Object.entries(row.cost.cores)
      .filter(([, cores]) => cores >= 0.005)
      .map(([name, cores]) => `${name} ${cores.toFixed(2)}`)
      .join(', ');
    print(
      `| ${row.concurrency} | ${row.runner} | ${row.perSecond.toFixed(1)} | ${row.meanAnswerMs?.toFixed(1) ?? '-'} | ${gap} | ${cpu} | ${sum(ours)} | ${sum(core)} | ${scans || 'none'} | ${perRerun(row.cost.rerunConnections).toFixed(3)} |`,
    );
  }

  print('');
  print(
    'MongoDB commands of this service per rerun (all runs of ours), by command and collection (server CPU and wall time):',
  );
  print(
    '| concurrency | client | command | collection | per rerun | server CPU µs per command | wall µs per command | docs examined per command | collection scans | reply bytes per rerun |',
  );
  print('|---|---|---|---|---|---|---|---|---|---|');
  for (const concurrency of CONCURRENCIES) {
    const runs = rows.filter((row) => row.concurrency === concurrency && row.runner === 'ours');
    const merged = new Map<string, TapFigure>();
    for (const figure of runs.flatMap((row) => row.cost.figures)) {
      if (!OURS.has(figure.app)) continue;
      const key = `${figure.app}|${figure.command}|${figure.collection}`;
      const entry = merged.get(key) ?? { ...figure, count: 0, ns: 0, cpuUs: 0, examined: 0, scans: 0, replyBytes: 0 };
      entry.count += figure.count;
      entry.ns += figure.ns;
      entry.cpuUs += figure.cpuUs;
      entry.examined += figure.examined;
      entry.scans += figure.scans;
      entry.replyBytes += figure.replyBytes;
      merged.set(key, entry);
    }
    const reruns = TRANSACTIONS * runs.length;
    for (const f of [...merged.values()].sort((a, b) => b.cpuUs - a.cpuUs)) {
      if (f.count / reruns < 0.005) continue;
      print(
        `| ${concurrency} | ${f.app} | ${f.command} | ${f.collection} | ${(f.count / reruns).toFixed(3)} | ${(f.cpuUs / f.count).toFixed(0)} | ${(f.ns / f.count / 1000).toFixed(0)} | ${(f.examined / f.count).toFixed(1)} | ${f.scans} | ${(f.replyBytes / reruns).toFixed(0)} |`,
      );
    }
  }
}

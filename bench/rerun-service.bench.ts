/**
 * `npm run bench` (issue 7, "Benchmarks"): the service's own API and worker processes against a stub
 * OpenHIM rerun endpoint, the standalone MongoDB-compatible server and a real redis-server. Prints
 * one table; every figure is a ratio against a baseline measured in the same run.
 *
 *   npm run build --silent && jest --roots '<rootDir>/bench' --testRegex 'rerun-service\.bench\.ts$' --runInBand --silent
 *
 * BENCH_SCALE (default 1): multiplies every size (20 000 reruns, 10k/100k/300k large tasks, API requests).
 * Not part of npm test.
 *
 * Sections: 1. rerun throughput (vs the same requests replayed to the stub) and scale-out, 2. the API,
 * 3. large tasks, 4. a channel guard never reached vs none (ABBA), 5. a task that transforms its
 * requests ("Fix, then rerun", issue 24: a 3-operation JSON Patch on ~1 KB FHIR bodies) vs the same
 * task without (ABBA), 6. a task whose notifications (issue 25) go to a webhook receiver that never
 * answers vs the same task without WEBHOOK_URLS (ABBA, two API+worker pairs started once).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { cpus } from 'node:os';
import Redis from 'ioredis';
import { MongoClient, ObjectId, type Db } from 'mongodb';
import { findFreePort } from '../src/common/net/free-port';
import { startPrivateRedis, type PrivateRedis } from '../src/bootstrap/private-redis';
import { ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from '../test/support/openhim-auth';
import { insertChannel, insertTransactions } from '../test/support/database-fixtures';
import { OpenhimCoreStub, type StubRequest } from '../test/support/openhim-core-stub';
import { distEntry, mongoWireCli, runNode, type RunningProcess, stopProcess } from '../test/support/processes';
import { ensureBuilt } from '../test/support/worker-process';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const size = (n: number, min = 50) => Math.max(min, Math.round(n * SCALE));
const RERUNS = size(20000);
const LARGE = size(100000, 200);
const SMALL = size(10000, 100);
/** A third size: shows whether worker RSS keeps growing past LARGE or levels off. */
const HUGE = size(300000, 600);
const API_REQUESTS = size(2000, 200);
const BATCH_SIZE = 50;
const TASKS_FOR_SCALE_OUT = 4;
/** Reruns one worker may run at once in the worker-bound scale-out variant. */
const SCALE_OUT_SMALL_CONCURRENCY = 10;
const TASK_TIMEOUT_MS = 15 * 60 * 1000;
/** Reruns per run of the guard section (one task; warm-up runs are half of it). */
const GUARD_RERUNS = size(5000);
/** A guard on the task's channel that the bench never reaches: 10x the lanes of one task, and a rate far above. */
const GUARD_UNREACHED = { maxInFlight: 10 * BATCH_SIZE, maxPerSecond: 100000 };
/** The sanity check's small limit (the stub must never see more of the task in flight). */
const GUARD_SMALL = { maxInFlight: 5, maxPerSecond: 100000 };
/** Workers re-read `rerunguards` at most once a second: a change is waited out for this long. */
const GUARD_SETTLE_MS = 1500;
/** Reruns per run of the transform section (one task; warm-up runs are half of it). */
const TRANSFORM_RERUNS = size(5000);
/** Reruns per run of the notifications section (one task; warm-up runs are half of it). */
const NOTIFY_RERUNS = size(5000);
/**
 * The transform section's patch: 3 operations that apply to every body of `fhirPatient` (a `test`
 * that holds, a `replace` of the wrong code, an `add` of a tag), as a task stores it.
 */
const TRANSFORM_PATCH = {
  body: [
    { op: 'test', path: '/resourceType', value: 'Patient' },
    { op: 'replace', path: '/gender', value: 'female' },
    { op: 'add', path: '/meta/tag', value: [{ system: 'urn:example:fix', code: 'incident-4711' }] },
  ],
};

/** A FHIR Patient of about 1 KB (compact JSON) as a buggy mapping sent it: `gender` holds a code FHIR does not know. */
function fhirPatient(index: number): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id: `bench-${index}`,
    meta: {
      versionId: '1',
      lastUpdated: '2026-12-01T08:30:00.000Z',
      profile: ['http://hl7.org/fhir/StructureDefinition/Patient'],
    },
    text: {
      status: 'generated',
      div: `<div xmlns="http://www.w3.org/1999/xhtml">Jane Marie Doe${index}, born 1980-04-12</div>`,
    },
    identifier: [
      { use: 'official', system: 'urn:oid:2.16.840.1.113883.2.1.4.1', value: String(9000000000 + index) },
      { use: 'secondary', system: 'http://hospital.example.org/mrn', value: `MRN-${index}` },
    ],
    active: true,
    name: [{ use: 'official', family: `Doe${index}`, given: ['Jane', 'Marie'], prefix: ['Ms'] }],
    telecom: [
      { system: 'phone', value: '+27 21 555 0100', use: 'mobile' },
      { system: 'email', value: `jane.doe${index}@example.org`, use: 'home' },
    ],
    gender: 'F',
    birthDate: '1980-04-12',
    address: [
      { use: 'home', line: ['12 Long Street', 'Apartment 4'], city: 'Cape Town', postalCode: '8001', country: 'ZA' },
    ],
    maritalStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M', display: 'Married' }],
    },
    managingOrganization: { reference: 'Organization/hospital-1', display: 'Example Hospital' },
  };
}

/** The body the transform section stores, and the one its transformed runs must send (TRANSFORM_PATCH applied). */
const fhirBody = (index: number) => JSON.stringify(fhirPatient(index));
function fhirBodyPatched(index: number): string {
  const patient = fhirPatient(index);
  const meta = patient.meta as Record<string, unknown>;
  return JSON.stringify({ ...patient, gender: 'female', meta: { ...meta, tag: TRANSFORM_PATCH.body[2].value } });
}

const print = (text: string) => process.stdout.write(`${text}\n`);
/**
 * Profiling hooks: BENCH_WORKER_NODE_OPTIONS / BENCH_API_NODE_OPTIONS / BENCH_MONGO_NODE_OPTIONS become the
 * NODE_OPTIONS of the worker / API / MongoDB-compatible server processes (`--cpu-prof` is refused there: use
 * `--require <abs path>/bench/cpu-profile.cjs` with CPU_PROFILE_DIR, or `--max-old-space-size=…`).
 * BENCH_ONLY (comma-separated, default all): `latency20`, `latency0`, `scaleout`, `guard`, `transform`, `notifications`,
 * `large`, `api`.
 */
const WORKER_NODE_OPTIONS = process.env.BENCH_WORKER_NODE_OPTIONS;
const API_NODE_OPTIONS = process.env.BENCH_API_NODE_OPTIONS;
const MONGO_NODE_OPTIONS = process.env.BENCH_MONGO_NODE_OPTIONS;
const ONLY = process.env.BENCH_ONLY?.split(',').map((part) => part.trim());
const runs = (section: string) => !ONLY || ONLY.includes(section);
/** Spawned processes get only the environment they are given: CPU_PROFILE_DIR goes with the options. */
const nodeOptions = (options: string | undefined): Record<string, string> =>
  options
    ? {
        NODE_OPTIONS: options,
        ...(process.env.CPU_PROFILE_DIR ? { CPU_PROFILE_DIR: process.env.CPU_PROFILE_DIR } : {}),
      }
    : {};

// ---- processes ------------------------------------------------------------------------------------

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s on Linux)
  } catch {
    return 0;
  }
}

/** CPU seconds the whole machine has been busy (all cores), and of them stolen by the hypervisor. */
function machineCpuSeconds(): { busy: number; steal: number } {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return { busy: (user + nice + system + irq + softirq + steal) / 100, steal: steal / 100 };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

/** Peak resident set (VmHWM) in MB. */
function peakRssMb(pid: number | undefined): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function waitHttp(url: string, what: string, proc: RunningProcess, timeoutMs = 60000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`${what} exited:\n${proc.output()}`);
    const status = await new Promise<number>((resolve) =>
      http.get(url, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', () => resolve(0)),
    );
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---- a keep-alive HTTP client -------------------------------------------------------------------------

interface Call {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

function request(agent: http.Agent, port: number, call: Call): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, agent, method: call.method, path: call.path, headers: call.headers, timeout: 120000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(call.body);
  });
}

/** `count` calls, `concurrency` at a time; latencies in ms. Bounded by `timeoutMs`. */
async function load(
  port: number,
  count: number,
  concurrency: number,
  next: (index: number) => Call,
  expectStatus?: number,
  timeoutMs = 10 * 60 * 1000,
): Promise<{ seconds: number; latencies: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const deadline = Date.now() + timeoutMs;
  let issued = 0;
  const started = process.hrtime.bigint();
  const loop = async () => {
    while (issued < count) {
      if (Date.now() > deadline) throw new Error(`load did not finish within ${timeoutMs} ms`);
      const index = issued++;
      const t0 = process.hrtime.bigint();
      const answer = await request(agent, port, next(index));
      if (expectStatus && answer.status !== expectStatus)
        throw new Error(`expected ${expectStatus}, got ${answer.status}: ${answer.body.slice(0, 200)}`);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, loop));
  } finally {
    agent.destroy();
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, latencies };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
};

// ---- the bench -------------------------------------------------------------------------------------

interface Row {
  bench: string;
  figure: string;
  baseline: string;
  ratio?: number;
  target?: string;
  pass?: boolean;
  limits?: string;
}

it(
  'npm run bench: reruns, API and large tasks against same-run baselines',
  async () => {
    await ensureBuilt();
    const rows: Row[] = [];
    const procs = new Set<RunningProcess>();
    let mongo: RunningProcess | undefined;
    let redis: PrivateRedis | undefined;
    let client: MongoClient | undefined;
    let stub: OpenhimCoreStub | undefined;
    let db: Db;
    let queueRound = 0;

    const stop = async (proc: RunningProcess | undefined) => {
      await stopProcess(proc);
      if (proc) procs.delete(proc);
    };

    try {
      mongo = runNode(mongoWireCli(), ['--port', '0'], nodeOptions(MONGO_NODE_OPTIONS));
      const [, mongoUrl] = await mongo.waitForOutput(/listening at (mongodb:\/\/\S+)/, 30000);
      redis = await startPrivateRedis();
      client = await MongoClient.connect(mongoUrl);
      db = client.db('openhim-bench');
      stub = await OpenhimCoreStub.start(db);
      const stubRef = stub;
      const mongoUri = `${mongoUrl}/openhim-bench`;

      const serviceEnv = () => ({
        MONGODB_URI: mongoUri,
        REDIS_URL: redis!.url,
        QUEUE_PREFIX: `bench-${queueRound}`,
        RERUN_HOST: '127.0.0.1',
        RERUN_HTTP_PORT: String(stubRef.port),
        LOG_LEVEL: 'warn',
        // BENCH_SCALE > 1 goes past the default limits of one task.
        MAX_TASK_TIDS: String(Math.max(100000, HUGE)),
        BODY_LIMIT: `${Math.max(10, Math.ceil(HUGE / 20000))}mb`,
      });

      /** An API on serviceEnv() (`env` on top of it: another database, queue prefix...; `database` is the one it uses). */
      const startApi = async (env: Record<string, string> = {}, database: Db = db) => {
        const port = await findFreePort();
        const api = runNode(distEntry('main.api.js'), [], {
          ...serviceEnv(),
          ...env,
          API_PORT: String(port),
          API_HOST: '127.0.0.1',
          API_PROTOCOL: 'http',
          ...nodeOptions(API_NODE_OPTIONS),
        });
        procs.add(api);
        await waitHttp(`http://127.0.0.1:${port}/health/live`, 'the API', api);
        // The API creates the root user at start; the bench signs its token requests with its salt.
        const user = await waitForValue(
          () => database.collection('users').findOne({ email: ROOT_EMAIL }),
          'the root user',
        );
        const passport = await database.collection('passports').findOne({ email: ROOT_EMAIL, protocol: 'token' });
        const salt = (passport?.passwordSalt ?? user.passwordSalt) as string;
        return { api, port, auth: () => tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, salt) };
      };

      const startWorkers = async (count: number, workerEnv: Record<string, string> = {}) =>
        Promise.all(
          Array.from({ length: count }, async () => {
            const port = await findFreePort();
            const worker = runNode(distEntry('main.worker.js'), [], {
              ...serviceEnv(),
              ...workerEnv,
              WORKER_HTTP_PORT: String(port),
              WORKER_HTTP_HOST: '127.0.0.1',
              ...nodeOptions(WORKER_NODE_OPTIONS),
            });
            procs.add(worker);
            await waitHttp(`http://127.0.0.1:${port}/health/live`, 'a worker', worker);
            return worker;
          }),
        );

      /** A fresh API and workers on a fresh queue prefix, so nothing left from a previous phase runs. */
      const phase = async <T>(
        workers: number,
        body: (ctx: Awaited<ReturnType<typeof startApi>> & { workers: RunningProcess[] }) => Promise<T>,
        workerEnv: Record<string, string> = {},
      ) => {
        queueRound++;
        const api = await startApi();
        const started = await startWorkers(workers, workerEnv);
        try {
          return await body({ ...api, workers: started });
        } finally {
          await Promise.all([api.api, ...started].map(stop));
        }
      };

      const createTask = async (port: number, auth: () => Record<string, string>, tids: string[], paused = false) => {
        const body = JSON.stringify({ tids, batchSize: BATCH_SIZE, ...(paused ? { paused } : {}) });
        const t0 = Date.now();
        const answer = await request(new http.Agent(), port, {
          method: 'POST',
          path: '/tasks',
          headers: { ...auth(), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
          body,
        });
        if (answer.status !== 201) throw new Error(`POST /tasks: ${answer.status} ${answer.body.slice(0, 300)}`);
        return { id: answer.body.match(/id ([0-9a-f]{24})/)![1], ms: Date.now() - t0 };
      };

      /** PUT /tasks/:id {status: 'Queued'}: resumes a paused task. */
      const resumeTask = async (port: number, auth: () => Record<string, string>, id: string) => {
        const body = JSON.stringify({ status: 'Queued' });
        const answer = await request(new http.Agent(), port, {
          method: 'PUT',
          path: `/tasks/${id}`,
          headers: { ...auth(), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
          body,
        });
        if (answer.status !== 200) throw new Error(`PUT /tasks/${id}: ${answer.status} ${answer.body.slice(0, 300)}`);
      };

      /**
       * Wall clock from before the first POST until every task is Completed (polled every 50 ms).
       * With `prepare`, each task is created paused, `prepare` writes to it, then it is resumed.
       * `ctx.db` and `ctx.stub`: the database and stub of processes started on others than the bench's.
       */
      const runTasks = async (
        ctx: {
          port: number;
          auth: () => Record<string, string>;
          workers: RunningProcess[];
          api: RunningProcess;
          db?: Db;
          stub?: OpenhimCoreStub;
        },
        tidSets: string[][],
        prepare?: (taskId: ObjectId) => Promise<void>,
      ) => {
        const database = ctx.db ?? db;
        const target = ctx.stub ?? stubRef;
        target.requests.length = 0;
        const watched = [mongo!, ctx.api, ...ctx.workers];
        const cpuBefore = watched.map((p) => cpuSeconds(p.child.pid));
        const selfBefore = process.cpuUsage();
        const t0 = Date.now();
        const ids = [];
        for (const tids of tidSets) {
          const id = (await createTask(ctx.port, ctx.auth, tids, !!prepare)).id;
          if (prepare) {
            await prepare(new ObjectId(id));
            await resumeTask(ctx.port, ctx.auth, id);
          }
          ids.push(new ObjectId(id));
        }
        const deadline = Date.now() + TASK_TIMEOUT_MS;
        for (;;) {
          const done = await database.collection('tasks').countDocuments({ _id: { $in: ids }, status: 'Completed' });
          if (done === ids.length) break;
          if (Date.now() > deadline) throw new Error(`tasks not completed within ${TASK_TIMEOUT_MS} ms`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const seconds = (Date.now() - t0) / 1000;
        const total = tidSets.reduce((sum, tids) => sum + tids.length, 0);
        if (target.requests.length !== total)
          throw new Error(`the stub received ${target.requests.length} reruns, expected ${total}`);
        const self = process.cpuUsage(selfBefore);
        const cpu = watched.map((p, i) => (cpuSeconds(p.child.pid) - cpuBefore[i]) / seconds);
        const load = `CPU cores: mongo ${cpu[0].toFixed(2)}, workers ${cpu
          .slice(2)
          .reduce((a, b) => a + b, 0)
          .toFixed(2)}, stub+bench ${((self.user + self.system) / 1e6 / seconds).toFixed(2)}`;
        const inFlight = ids.map((id) => target.maxInFlight(id.toHexString())).join('+');
        return {
          seconds,
          perSecond: total / seconds,
          requests: [...target.requests],
          load: `${load}; max in flight at the stub ${inFlight}`,
        };
      };

      /** The ceiling: the same requests replayed to the same stub by a keep-alive client. */
      const ceiling = async (requests: StubRequest[], concurrency: number) => {
        stubRef.requests.length = 0;
        const cpuBefore = cpuSeconds(mongo!.child.pid);
        const result = await load(
          stubRef.port,
          requests.length,
          concurrency,
          (i) => {
            const {
              host: _h,
              connection: _c,
              'content-length': _l,
              'transfer-encoding': _t,
              ...headers
            } = requests[i].headers;
            return {
              method: requests[i].method,
              path: requests[i].url,
              headers: {
                ...(headers as Record<string, string>),
                'content-length': String(Buffer.byteLength(requests[i].body)),
              },
              body: requests[i].body,
            };
          },
          200,
        );
        await stubRef.settled();
        return {
          perSecond: requests.length / result.seconds,
          mongoCpu: (cpuSeconds(mongo!.child.pid) - cpuBefore) / result.seconds,
        };
      };

      // 1. Rerun throughput -------------------------------------------------------------------------
      for (const latencyMs of [20, 0]) {
        if (!runs(`latency${latencyMs}`)) continue;
        stubRef.behave({ latencyMs });
        for (const workers of [1, 2]) {
          const tids = await insertTransactions(db, RERUNS);
          const run = await phase(workers, (ctx) => runTasks(ctx, [tids]));
          const top = await ceiling(run.requests, BATCH_SIZE);
          const ratio = run.perSecond / top.perSecond;
          // Issue 13's targets (were 0.6 and 0.3).
          const target = workers === 1 ? 0.9 : undefined;
          rows.push({
            bench: `1. ${RERUNS} reruns, 1 task, batchSize ${BATCH_SIZE}, ${latencyMs} ms, ${workers} worker(s)`,
            figure: `${run.perSecond.toFixed(0)}/s (${run.seconds.toFixed(1)} s)`,
            baseline: `ceiling ${top.perSecond.toFixed(0)}/s`,
            ratio,
            target: target ? `>= ${target}` : undefined,
            pass: target ? ratio >= target : undefined,
            limits: `${run.load}; ceiling: mongo ${top.mongoCpu.toFixed(2)} cores`,
          });
          print(`${rows[rows.length - 1].bench}: ${rows[rows.length - 1].figure} vs ${rows[rows.length - 1].baseline}`);
        }
      }
      stubRef.behave({ latencyMs: 20 });
      // With the default WORKER_CONCURRENCY the machine (stub, database, workers on 2 cores) is the
      // limit; with a small one each worker is, which shows whether anything shared stops scaling.
      const scaleOuts: Array<{ label: string; env: Record<string, string> }> = [
        { label: '', env: {} },
        {
          label: `, WORKER_CONCURRENCY ${SCALE_OUT_SMALL_CONCURRENCY}`,
          env: { WORKER_CONCURRENCY: String(SCALE_OUT_SMALL_CONCURRENCY) },
        },
      ];
      for (const variant of runs('scaleout') ? scaleOuts : []) {
        const rates: Record<number, number> = {};
        for (const workers of [1, 2]) {
          const sets: string[][] = [];
          for (let t = 0; t < TASKS_FOR_SCALE_OUT; t++)
            sets.push(await insertTransactions(db, Math.round(RERUNS / TASKS_FOR_SCALE_OUT)));
          const run = await phase(workers, (ctx) => runTasks(ctx, sets), variant.env);
          rates[workers] = run.perSecond;
          const base = workers === 2 ? rates[1] : undefined;
          rows.push({
            bench: `1. ${TASKS_FOR_SCALE_OUT} tasks x ${sets[0].length} reruns, 20 ms, ${workers} worker(s)${variant.label}`,
            figure: `${run.perSecond.toFixed(0)}/s (${run.seconds.toFixed(1)} s)`,
            baseline: base ? `1 worker ${base.toFixed(0)}/s` : '-',
            ratio: base ? run.perSecond / base : undefined,
            target: base ? '>= 1.6' : undefined,
            pass: base ? run.perSecond / base >= 1.6 : undefined,
            limits: run.load,
          });
          print(`${rows[rows.length - 1].bench}: ${rows[rows.length - 1].figure}`);
        }
      }

      // 4. A channel guard whose limits are never reached ----------------------------------------------
      // One worker, one API, for every run (same processes, same JIT state); the guard is switched by
      // writing `rerunguards` directly. Order: warm-up (guarded, then not), then A B B A.
      if (runs('guard')) {
        stubRef.behave({ latencyMs: 20 });
        const channelID = await insertChannel(db, {});
        const channelHex = channelID.toHexString();
        const guardRow = await phase(1, async (ctx) => {
          const prefix = `bench-${queueRound}`;
          // The guard's sorted set of permits and its count of the current second's points.
          const permitKey = `semaphore:${prefix}:guard:${channelHex}:in-flight`;
          const rateKey = `${prefix}:guard:${channelHex}:rate`;
          const probe = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
          const redisPid = Number((await probe.info('server')).match(/process_id:(\d+)/)?.[1]);
          const guards = db.collection('rerunguards');
          const setGuard = async (limits: { maxInFlight: number; maxPerSecond: number } | null) => {
            if (limits) await guards.updateOne({ channelID }, { $set: limits }, { upsert: true });
            else await guards.deleteMany({ channelID });
            await new Promise((resolve) => setTimeout(resolve, GUARD_SETTLE_MS));
          };
          /** One task of `count` reruns to the channel; samples the guard's Redis keys every 25 ms meanwhile. */
          const guardRun = async (count: number) => {
            const tids = await insertTransactions(db, count, () => ({ channelID }));
            let running = true;
            let permits = 0;
            let points = 0;
            const sampler = (async () => {
              while (running) {
                const [[, held], [, taken]] = (await probe.pipeline().zcard(permitKey).get(rateKey).exec()) as Array<
                  [Error | null, unknown]
                >;
                permits = Math.max(permits, Number(held ?? 0));
                points = Math.max(points, Number(taken ?? 0));
                await new Promise((resolve) => setTimeout(resolve, 25));
              }
            })();
            const watched = [ctx.workers[0].child.pid, mongo!.child.pid, redisPid, ctx.api.child.pid];
            const cpuBefore = watched.map(cpuSeconds);
            const machineBefore = machineCpuSeconds();
            const selfBefore = process.cpuUsage();
            try {
              const run = await runTasks(ctx, [tids]);
              const atStub = stubRef.maxInFlight(run.requests[0].taskId!);
              // CPU per rerun (ms) of the worker, the MongoDB-compatible server and redis-server: less
              // exposed than throughput to other work on the machine.
              const used = watched.map((pid, i) => cpuSeconds(pid) - cpuBefore[i]);
              const [worker, mongoMs, redisMs] = used.map((seconds) => (seconds * 1000) / count);
              // Other work on the machine meanwhile (cores): what makes one run slower than the next.
              const machine = machineCpuSeconds();
              const self = process.cpuUsage(selfBefore);
              const ours = used.reduce((a, b) => a + b, 0) + (self.user + self.system) / 1e6;
              const others = {
                cores: Math.max(0, machine.busy - machineBefore.busy - ours) / run.seconds,
                steal: (machine.steal - machineBefore.steal) / run.seconds,
              };
              return { ...run, permits, points, atStub, others, cpuMs: { worker, mongo: mongoMs, redis: redisMs } };
            } finally {
              running = false;
              await sampler;
            }
          };
          const cpuText = (ms: { worker: number; mongo: number; redis: number }) =>
            `worker ${ms.worker.toFixed(3)}, mongo ${ms.mongo.toFixed(3)}, redis ${ms.redis.toFixed(3)}`;
          const meanCpu = (x: { cpuMs: { worker: number; mongo: number; redis: number } }, y: typeof x) => ({
            worker: (x.cpuMs.worker + y.cpuMs.worker) / 2,
            mongo: (x.cpuMs.mongo + y.cpuMs.mongo) / 2,
            redis: (x.cpuMs.redis + y.cpuMs.redis) / 2,
          });
          try {
            await setGuard(GUARD_UNREACHED);
            const warmGuarded = await guardRun(Math.round(GUARD_RERUNS / 2));
            await setGuard(null);
            const warm = await guardRun(Math.round(GUARD_RERUNS / 2));
            print(`4. warm-up: guarded ${warmGuarded.perSecond.toFixed(0)}/s, no guard ${warm.perSecond.toFixed(0)}/s`);
            const a1 = await guardRun(GUARD_RERUNS);
            await setGuard(GUARD_UNREACHED);
            const b1 = await guardRun(GUARD_RERUNS);
            const b2 = await guardRun(GUARD_RERUNS);
            await setGuard(null);
            const a2 = await guardRun(GUARD_RERUNS);
            for (const [label, run] of [
              ['no guard', a1],
              ['guarded', b1],
              ['guarded', b2],
              ['no guard', a2],
            ] as const)
              print(
                `4. ${label}: ${run.perSecond.toFixed(0)}/s (${run.seconds.toFixed(1)} s), permits held (max sampled) ${run.permits}, points in a second ${run.points}, in flight at the stub ${run.atStub}; CPU ms per rerun: ${cpuText(run.cpuMs)}; other work on the machine ${run.others.cores.toFixed(2)} cores (steal ${run.others.steal.toFixed(2)})`,
              );
            // Sanity check: a small limit really holds the task back at the stub.
            await setGuard(GUARD_SMALL);
            const small = await guardRun(Math.max(50, Math.round(GUARD_RERUNS / 25)));
            await setGuard(null);
            print(
              `4. sanity, maxInFlight ${GUARD_SMALL.maxInFlight}: ${small.perSecond.toFixed(0)}/s, in flight at the stub ${small.atStub}, permits held ${small.permits}`,
            );
            // In effect: the guarded runs held permits and took points, within the limits; the unguarded ones neither.
            const effective =
              [b1, b2].every(
                (run) => run.permits > 0 && run.permits <= GUARD_UNREACHED.maxInFlight && run.points > 0,
              ) &&
              [a1, a2].every((run) => run.permits === 0 && run.points === 0) &&
              small.atStub <= GUARD_SMALL.maxInFlight &&
              small.permits > 0 &&
              small.permits <= GUARD_SMALL.maxInFlight;
            const guarded = (b1.perSecond + b2.perSecond) / 2;
            const unguarded = (a1.perSecond + a2.perSecond) / 2;
            const ratio = guarded / unguarded;
            const othersMax = Math.max(...[a1, b1, b2, a2].map((run) => run.others.cores));
            const row = {
              bench: `4. ${GUARD_RERUNS} reruns, 1 task, batchSize ${BATCH_SIZE}, 20 ms, 1 worker: guard (maxInFlight ${GUARD_UNREACHED.maxInFlight}, maxPerSecond ${GUARD_UNREACHED.maxPerSecond}) vs none, ABBA`,
              figure: `guarded ${guarded.toFixed(0)}/s (${b1.perSecond.toFixed(0)}, ${b2.perSecond.toFixed(0)})`,
              baseline: `no guard ${unguarded.toFixed(0)}/s (${a1.perSecond.toFixed(0)}, ${a2.perSecond.toFixed(0)})`,
              ratio,
              target: effective ? '>= 0.95' : '>= 0.95 (guard NOT in effect)',
              pass: effective && ratio >= 0.95,
              limits:
                `guard ${effective ? 'in effect' : 'NOT in effect'}: permits held (max sampled) ${b1.permits}/${b2.permits} guarded, ` +
                `${a1.permits}/${a2.permits} not; points in a second ${b1.points}/${b2.points}; ` +
                `maxInFlight ${GUARD_SMALL.maxInFlight}: ${small.atStub} in flight at the stub; ` +
                `CPU ms per rerun guarded ${cpuText(meanCpu(b1, b2))} | no guard ${cpuText(meanCpu(a1, a2))}; ` +
                `other work on the machine (cores) ${[a1, b1, b2, a2].map((run) => run.others.cores.toFixed(2)).join('/')} in ABBA order; ` +
                `guarded ${b1.load} | no guard ${a1.load}`,
            } satisfies Row;
            return { row, othersMax };
          } finally {
            await guards.deleteMany({ channelID });
            probe.disconnect();
          }
        });
        rows.push(guardRow.row);
        print(
          `${guardRow.row.bench}: ${guardRow.row.figure} vs ${guardRow.row.baseline}, ratio ${guardRow.row.ratio!.toFixed(3)}`,
        );
        // 5 s runs: other work on a shared machine moves one run by up to ~40%, more than the 5% asked.
        if (guardRow.othersMax >= 0.3)
          print(
            `4. note: other work on the machine reached ${guardRow.othersMax.toFixed(2)} cores during a run: the ratio is noise-bound, compare the CPU ms per rerun`,
          );
      }

      // 5. A task that transforms its requests ("Fix, then rerun", issue 24) ---------------------------
      // One worker, one API, for every run (same processes, same JIT state). Every task is created
      // paused; the transformed ones get their `transform` written to the task document (as the API
      // stores it), the plain ones the same write without it; then each is resumed. Order: warm-up
      // (transformed, then plain), then A B B A.
      if (runs('transform')) {
        stubRef.behave({ latencyMs: 20 });
        const bodyBytes = Buffer.byteLength(fhirBody(0));
        const transformRow = await phase(1, async (ctx) => {
          const tasks = db.collection('tasks');
          /** One task of `count` reruns of FHIR POSTs, with the patch or without. */
          const transformRun = async (count: number, transformed: boolean) => {
            const tids = await insertTransactions(db, count, (index) => ({
              method: 'POST',
              path: '/fhir/Patient',
              headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
              body: fhirBody(index),
            }));
            const watched = [ctx.workers[0].child.pid, mongo!.child.pid, ctx.api.child.pid];
            const cpuBefore = watched.map(cpuSeconds);
            const machineBefore = machineCpuSeconds();
            const selfBefore = process.cpuUsage();
            const run = await runTasks(ctx, [tids], async (taskId) => {
              await tasks.updateOne(
                { _id: taskId },
                transformed ? { $set: { transform: TRANSFORM_PATCH } } : { $unset: { transform: '' } },
              );
            });
            // CPU per rerun (ms) of the worker and the MongoDB-compatible server: less exposed than
            // throughput to other work on the machine.
            const used = watched.map((pid, i) => cpuSeconds(pid) - cpuBefore[i]);
            const [worker, mongoMs] = used.map((seconds) => (seconds * 1000) / count);
            const machine = machineCpuSeconds();
            const self = process.cpuUsage(selfBefore);
            const ours = used.reduce((a, b) => a + b, 0) + (self.user + self.system) / 1e6;
            const others = Math.max(0, machine.busy - machineBefore.busy - ours) / run.seconds;
            // What reached the stub (after the clock stopped): every body as the run must send it,
            // byte for byte, and (only when transformed) each item's bodySha256 recorded.
            const indexOf = new Map(tids.map((tid, index) => [tid, index]));
            const wrong = run.requests.filter((received) => {
              const index = indexOf.get(received.parentId ?? '');
              if (index === undefined) return true;
              return received.body !== (transformed ? fhirBodyPatched(index) : fhirBody(index));
            }).length;
            const hashed = await db
              .collection('taskitems')
              .countDocuments({ taskId: new ObjectId(run.requests[0].taskId), bodySha256: { $exists: true } });
            const verified = wrong === 0 && hashed === (transformed ? count : 0);
            const { requests: _requests, ...figures } = run;
            return { ...figures, transformed, verified, wrong, hashed, others, cpuMs: { worker, mongo: mongoMs } };
          };
          const cpuText = (ms: { worker: number; mongo: number }) =>
            `worker ${ms.worker.toFixed(3)}, mongo ${ms.mongo.toFixed(3)}`;
          const meanCpu = (x: { cpuMs: { worker: number; mongo: number } }, y: typeof x) => ({
            worker: (x.cpuMs.worker + y.cpuMs.worker) / 2,
            mongo: (x.cpuMs.mongo + y.cpuMs.mongo) / 2,
          });
          const warmTransformed = await transformRun(Math.round(TRANSFORM_RERUNS / 2), true);
          const warm = await transformRun(Math.round(TRANSFORM_RERUNS / 2), false);
          print(
            `5. warm-up: transformed ${warmTransformed.perSecond.toFixed(0)}/s, plain ${warm.perSecond.toFixed(0)}/s`,
          );
          const a1 = await transformRun(TRANSFORM_RERUNS, false);
          const b1 = await transformRun(TRANSFORM_RERUNS, true);
          const b2 = await transformRun(TRANSFORM_RERUNS, true);
          const a2 = await transformRun(TRANSFORM_RERUNS, false);
          const all = [warmTransformed, warm, a1, b1, b2, a2];
          for (const [label, run] of [
            ['plain', a1],
            ['transformed', b1],
            ['transformed', b2],
            ['plain', a2],
          ] as const)
            print(
              `5. ${label}: ${run.perSecond.toFixed(0)}/s (${run.seconds.toFixed(1)} s), bodies as expected ${run.verified ? 'yes' : `NO (${run.wrong} wrong, ${run.hashed} bodySha256)`}; CPU ms per rerun: ${cpuText(run.cpuMs)}; other work on the machine ${run.others.toFixed(2)} cores`,
            );
          const verified = all.every((run) => run.verified);
          const transformed = (b1.perSecond + b2.perSecond) / 2;
          const plain = (a1.perSecond + a2.perSecond) / 2;
          const ratio = transformed / plain;
          const othersMax = Math.max(...[a1, b1, b2, a2].map((run) => run.others));
          const row = {
            bench: `5. ${TRANSFORM_RERUNS} reruns, 1 task, batchSize ${BATCH_SIZE}, 20 ms, 1 worker: 3-operation JSON Patch on ${bodyBytes} B FHIR bodies vs none, ABBA`,
            figure: `transformed ${transformed.toFixed(0)}/s (${b1.perSecond.toFixed(0)}, ${b2.perSecond.toFixed(0)})`,
            baseline: `plain ${plain.toFixed(0)}/s (${a1.perSecond.toFixed(0)}, ${a2.perSecond.toFixed(0)})`,
            ratio,
            target: verified ? '>= 0.9' : '>= 0.9 (bodies NOT as expected)',
            pass: verified && ratio >= 0.9,
            limits:
              `stub received ${verified ? 'the patched bodies in the transformed runs and the stored ones in the plain runs, each item of the transformed runs with its bodySha256' : 'bodies NOT as expected'}; ` +
              `CPU ms per rerun transformed ${cpuText(meanCpu(b1, b2))} | plain ${cpuText(meanCpu(a1, a2))}; ` +
              `other work on the machine (cores) ${[a1, b1, b2, a2].map((run) => run.others.toFixed(2)).join('/')} in ABBA order; ` +
              `transformed ${b1.load} | plain ${a1.load}`,
          } satisfies Row;
          return { row, othersMax };
        });
        rows.push(transformRow.row);
        print(
          `${transformRow.row.bench}: ${transformRow.row.figure} vs ${transformRow.row.baseline}, ratio ${transformRow.row.ratio.toFixed(3)}`,
        );
        if (transformRow.othersMax >= 0.3)
          print(
            `5. note: other work on the machine reached ${transformRow.othersMax.toFixed(2)} cores during a run: the ratio is noise-bound, compare the CPU ms per rerun`,
          );
      }

      // 6. Notifications to a webhook receiver that never answers (issue 25) ---------------------------
      // Two API + worker pairs, started once and kept for every run (same processes, same JIT state):
      // one without WEBHOOK_URLS, one whose WEBHOOK_URLS is a local server that accepts connections and
      // never answers (each attempt waits out NOTIFY_TIMEOUT_MS, then is retried with back-off, so the
      // dead pair keeps the stuck deliveries of its earlier runs going during the later ones). Each pair
      // has a database, a stub and a QUEUE_PREFIX of its own: a worker's sweepers read every unfinished
      // task and every due delivery of its database, so on a shared one the idle pair would take part
      // in the other's runs. Order: warm-up (dead receiver, then none), then A B B A.
      if (runs('notifications')) {
        const deadIds = new Set<string>();
        const deadSockets = new Set<Socket>();
        let deadConnections = 0;
        let deadUnsigned = 0;
        const deadServer = http.createServer((req) => {
          // Reads the request, never answers: the worker's attempt ends at its own timeout.
          req.resume();
          const id = req.headers['x-webhook-id'];
          if (typeof id === 'string') deadIds.add(id);
          if (!/^t=\d+,v1=[0-9a-f]{64}$/.test(String(req.headers['x-webhook-signature']))) deadUnsigned++;
        });
        deadServer.requestTimeout = 0;
        deadServer.on('connection', (socket) => {
          deadConnections++;
          deadSockets.add(socket);
          socket.on('close', () => deadSockets.delete(socket));
        });
        await new Promise<void>((resolve) => deadServer.listen(0, '127.0.0.1', resolve));
        const deadUrl = `http://127.0.0.1:${(deadServer.address() as AddressInfo).port}/webhook`;
        const stubs: OpenhimCoreStub[] = [];
        const databases: Db[] = [];
        const pairProcs: RunningProcess[] = [];
        const probe = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
        try {
          const redisPid = Number((await probe.info('server')).match(/process_id:(\d+)/)?.[1]);
          /** An API and a worker on a database, a stub and a queue prefix of their own. */
          const startPair = async (name: string, variantEnv: Record<string, string>) => {
            queueRound++;
            const database = client!.db(`openhim-bench-notify-${name}`);
            databases.push(database);
            const pairStub = await OpenhimCoreStub.start(database);
            stubs.push(pairStub);
            pairStub.behave({ latencyMs: 20 });
            const env = {
              MONGODB_URI: `${mongoUrl}/openhim-bench-notify-${name}`,
              QUEUE_PREFIX: `bench-${queueRound}-${name}`,
              RERUN_HTTP_PORT: String(pairStub.port),
              ...variantEnv,
            };
            const api = await startApi(env, database);
            pairProcs.push(api.api);
            const workers = await startWorkers(1, env);
            pairProcs.push(...workers);
            return { ...api, workers, db: database, stub: pairStub };
          };
          const none = await startPair('none', {});
          const dead = await startPair('dead', {
            WEBHOOK_URLS: deadUrl,
            WEBHOOK_SECRET: 'bench-webhook-secret-0123456789',
          });
          const notifyTimeoutMs = 10000; // NOTIFY_TIMEOUT_MS's default: the dead pair does not set it
          type Pair = typeof none;
          const EVENT_TYPES = ['task.created', 'task.started', 'task.completed'];
          /**
           * One task of `count` reruns on `pair`; then (clock stopped) what it emitted: on the dead pair the
           * three events of the task, recorded, sent to the dead receiver and not delivered; on the other
           * pair nothing.
           */
          const notifyRun = async (pair: Pair, count: number) => {
            const tids = await insertTransactions(pair.db, count);
            const other = pair === dead ? none : dead;
            const watched = [pair.workers[0], mongo!, pair.api, other.workers[0], other.api].map((p) => p.child.pid);
            watched.push(redisPid);
            const cpuBefore = watched.map(cpuSeconds);
            const machineBefore = machineCpuSeconds();
            const selfBefore = process.cpuUsage();
            const connectionsBefore = deadConnections;
            const run = await runTasks(pair, [tids]);
            const openAtEnd = deadSockets.size;
            const connections = deadConnections - connectionsBefore;
            // CPU per rerun (ms) of the pair's worker and API, the MongoDB-compatible server and
            // redis-server; the idle pair's worker and API in cores (the dead pair retries meanwhile).
            const used = watched.map((pid, i) => cpuSeconds(pid) - cpuBefore[i]);
            const [worker, mongoMs, api] = used.slice(0, 3).map((seconds) => (seconds * 1000) / count);
            const redisMs = (used[5] * 1000) / count;
            const idleCores = (used[3] + used[4]) / run.seconds;
            const machine = machineCpuSeconds();
            const self = process.cpuUsage(selfBefore);
            const ours = used.reduce((a, b) => a + b, 0) + (self.user + self.system) / 1e6;
            const others = Math.max(0, machine.busy - machineBefore.busy - ours) / run.seconds;
            const taskId = run.requests[0].taskId!;
            const notifications = pair.db.collection('notifications');
            let events: Array<Record<string, unknown>>;
            let verified: boolean;
            if (pair === dead) {
              // task.completed is emitted after the task is, off the engine's path: waited for (at most 10 s).
              const deadline = Date.now() + 10000;
              for (;;) {
                events = await notifications.find({ taskId }).toArray();
                const ids = events.map((event) => String(event._id));
                if (
                  (events.length >= EVENT_TYPES.length && ids.every((id) => deadIds.has(id))) ||
                  Date.now() > deadline
                )
                  break;
                await new Promise((resolve) => setTimeout(resolve, 100));
              }
              const types = events.map((event) => String((event.event as Record<string, unknown>).type)).sort();
              verified =
                JSON.stringify(types) === JSON.stringify([...EVENT_TYPES].sort()) &&
                events.every((event) => deadIds.has(String(event._id))) &&
                events.every((event) =>
                  (event.deliveries as Array<Record<string, unknown>>).every(
                    (delivery) =>
                      delivery.kind === 'webhook' && delivery.url === deadUrl && delivery.state === 'pending',
                  ),
                ) &&
                connections > 0;
            } else {
              // Same pause as the dead pair's shortest wait, then nothing may have been recorded.
              await new Promise((resolve) => setTimeout(resolve, 1000));
              events = await notifications.find({ taskId }).toArray();
              verified = events.length === 0;
            }
            const { requests: _requests, ...figures } = run;
            return {
              ...figures,
              verified,
              events: events.length,
              connections,
              openAtEnd,
              others,
              idleCores,
              cpuMs: { worker, api, mongo: mongoMs, redis: redisMs },
            };
          };
          type CpuMs = { worker: number; api: number; mongo: number; redis: number };
          const cpuText = (ms: CpuMs) =>
            `worker ${ms.worker.toFixed(3)}, API ${ms.api.toFixed(3)}, mongo ${ms.mongo.toFixed(3)}, redis ${ms.redis.toFixed(3)}`;
          const meanCpu = (x: { cpuMs: CpuMs }, y: typeof x): CpuMs => ({
            worker: (x.cpuMs.worker + y.cpuMs.worker) / 2,
            api: (x.cpuMs.api + y.cpuMs.api) / 2,
            mongo: (x.cpuMs.mongo + y.cpuMs.mongo) / 2,
            redis: (x.cpuMs.redis + y.cpuMs.redis) / 2,
          });
          const warmDead = await notifyRun(dead, Math.round(NOTIFY_RERUNS / 2));
          const warm = await notifyRun(none, Math.round(NOTIFY_RERUNS / 2));
          print(
            `6. warm-up: dead receiver ${warmDead.perSecond.toFixed(0)}/s, no webhooks ${warm.perSecond.toFixed(0)}/s`,
          );
          const a1 = await notifyRun(none, NOTIFY_RERUNS);
          const b1 = await notifyRun(dead, NOTIFY_RERUNS);
          const b2 = await notifyRun(dead, NOTIFY_RERUNS);
          const a2 = await notifyRun(none, NOTIFY_RERUNS);
          for (const [label, run] of [
            ['no webhooks', a1],
            ['dead receiver', b1],
            ['dead receiver', b2],
            ['no webhooks', a2],
          ] as const)
            print(
              `6. ${label}: ${run.perSecond.toFixed(0)}/s (${run.seconds.toFixed(1)} s), notifications as expected ${run.verified ? 'yes' : 'NO'} (${run.events} recorded, ${run.connections} connections to the dead receiver during the run, ${run.openAtEnd} open at its end); CPU ms per rerun: ${cpuText(run.cpuMs)}; idle pair ${run.idleCores.toFixed(2)} cores; other work on the machine ${run.others.toFixed(2)} cores`,
            );
          // Stuck: no delivery of the dead pair was ever delivered, and attempts end at NOTIFY_TIMEOUT_MS
          // and are retried (the oldest, the warm-up's, are past it by now; waited for if not).
          const deadNotifications = dead.db.collection('notifications');
          const timedOut = { state: 'pending', attempts: { $gte: 1 }, lastError: /^no answer within/ };
          const stuckDeadline = Date.now() + notifyTimeoutMs + 5000;
          while (
            (await deadNotifications.countDocuments({ deliveries: { $elemMatch: timedOut } })) === 0 &&
            Date.now() < stuckDeadline
          )
            await new Promise((resolve) => setTimeout(resolve, 250));
          const [recorded, timedOutCount, delivered, noneRecorded] = await Promise.all([
            deadNotifications.countDocuments({}),
            deadNotifications.countDocuments({ deliveries: { $elemMatch: timedOut } }),
            deadNotifications.countDocuments({ 'deliveries.state': { $ne: 'pending' } }),
            none.db.collection('notifications').countDocuments({}),
          ]);
          const all = [warmDead, warm, a1, b1, b2, a2];
          const verified =
            all.every((run) => run.verified) &&
            recorded === [warmDead, b1, b2].reduce((sum, run) => sum + run.events, 0) &&
            timedOutCount > 0 &&
            delivered === 0 &&
            noneRecorded === 0 &&
            deadUnsigned === 0;
          const withDead = (b1.perSecond + b2.perSecond) / 2;
          const without = (a1.perSecond + a2.perSecond) / 2;
          const ratio = withDead / without;
          const othersMax = Math.max(...[a1, b1, b2, a2].map((run) => run.others));
          const row = {
            bench: `6. ${NOTIFY_RERUNS} reruns, 1 task, batchSize ${BATCH_SIZE}, 20 ms, 1 worker: webhooks to a receiver that never answers vs no WEBHOOK_URLS, ABBA`,
            figure: `dead receiver ${withDead.toFixed(0)}/s (${b1.perSecond.toFixed(0)}, ${b2.perSecond.toFixed(0)})`,
            baseline: `no webhooks ${without.toFixed(0)}/s (${a1.perSecond.toFixed(0)}, ${a2.perSecond.toFixed(0)})`,
            ratio,
            target: verified ? '>= 0.95' : '>= 0.95 (notifications NOT as expected)',
            pass: verified && ratio >= 0.95,
            limits:
              `notifications ${verified ? 'as expected' : 'NOT as expected'}: ${recorded} recorded by the dead pair (${EVENT_TYPES.join(', ')} per run, each sent signed to the dead receiver), ${delivered} delivered or given up, ${timedOutCount} with an attempt ended by 'no answer within ${notifyTimeoutMs} ms' and retried; ` +
              `${deadConnections} connections to the dead receiver in all, ${b1.openAtEnd}/${b2.openAtEnd} open at the end of the dead runs; ${noneRecorded} recorded without WEBHOOK_URLS; ` +
              `CPU ms per rerun dead receiver ${cpuText(meanCpu(b1, b2))} | no webhooks ${cpuText(meanCpu(a1, a2))}; ` +
              `idle pair (cores) ${[a1, b1, b2, a2].map((run) => run.idleCores.toFixed(2)).join('/')} and other work on the machine (cores) ${[a1, b1, b2, a2].map((run) => run.others.toFixed(2)).join('/')} in ABBA order; ` +
              `dead receiver ${b1.load} | no webhooks ${a1.load}`,
          } satisfies Row;
          rows.push(row);
          print(`${row.bench}: ${row.figure} vs ${row.baseline}, ratio ${row.ratio.toFixed(3)}`);
          if (othersMax >= 0.3)
            print(
              `6. note: other work on the machine reached ${othersMax.toFixed(2)} cores during a run: the ratio is noise-bound, compare the CPU ms per rerun`,
            );
        } finally {
          // The dead pair's worker waits up to WORKER_SHUTDOWN_MS (10 s) for its stuck attempts before
          // cutting them: given that long and more, so that it exits by itself (and writes its profile).
          await Promise.all(
            pairProcs.map(async (proc) => {
              await stopProcess(proc, 15000);
              procs.delete(proc);
            }),
          );
          probe.disconnect();
          await Promise.all(stubs.map((pairStub) => pairStub.close().catch(() => undefined)));
          for (const socket of deadSockets) socket.destroy();
          await new Promise((resolve) => deadServer.close(resolve));
          await Promise.all(databases.map((database) => database.dropDatabase().catch(() => undefined)));
        }
      }

      // 3. Large task ---------------------------------------------------------------------------------
      stubRef.behave({ latencyMs: 0 });
      const large: Record<
        number,
        { perItemMs: number; workerRss: number; postMs: number; apiRss: number; apiRssBefore: number; load: string }
      > = {};
      for (const count of runs('large') ? [SMALL, LARGE, HUGE] : []) {
        const tids = await insertTransactions(db, count);
        large[count] = await phase(1, async (ctx) => {
          const apiRssBefore = peakRssMb(ctx.api.child.pid);
          stubRef.requests.length = 0;
          const t0 = Date.now();
          const created = await createTask(ctx.port, ctx.auth, tids);
          const apiRss = peakRssMb(ctx.api.child.pid);
          const cpuBefore = cpuSeconds(mongo!.child.pid);
          const workerCpuBefore = cpuSeconds(ctx.workers[0].child.pid);
          const deadline = Date.now() + TASK_TIMEOUT_MS;
          let task;
          for (;;) {
            task = await db.collection('tasks').findOne({ _id: new ObjectId(created.id) });
            if (task?.status === 'Completed') break;
            if (Date.now() > deadline) throw new Error(`large task not completed within ${TASK_TIMEOUT_MS} ms`);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          const seconds = (Date.now() - t0) / 1000;
          if (stubRef.requests.length !== count)
            throw new Error(`the stub received ${stubRef.requests.length}, expected ${count}`);
          return {
            perItemMs: (seconds * 1000) / count,
            workerRss: peakRssMb(ctx.workers[0].child.pid),
            postMs: created.ms,
            apiRss,
            apiRssBefore,
            load: `CPU cores: mongo ${((cpuSeconds(mongo!.child.pid) - cpuBefore) / seconds).toFixed(2)}, worker ${((cpuSeconds(ctx.workers[0].child.pid) - workerCpuBefore) / seconds).toFixed(2)}`,
          };
        });
        print(`3. ${count} items: POST ${large[count].postMs} ms, ${large[count].perItemMs.toFixed(3)} ms/item`);
      }
      const [s, l] = [large[SMALL], large[LARGE]];
      if (s && l) {
        rows.push({
          bench: `3. POST /tasks with ${LARGE} tids`,
          figure: `${(l.postMs / 1000).toFixed(2)} s; API peak RSS ${l.apiRss.toFixed(0)} MB (${l.apiRssBefore.toFixed(0)} MB before)`,
          baseline: `${SMALL} tids: ${(s.postMs / 1000).toFixed(2)} s`,
          ratio: l.postMs / s.postMs,
          target: '< 5 s',
          pass: l.postMs < 5000,
        });
        rows.push({
          bench: `3. run at 0 ms, 1 worker: time per item ${LARGE} vs ${SMALL}`,
          figure: `${l.perItemMs.toFixed(3)} ms/item`,
          baseline: `${s.perItemMs.toFixed(3)} ms/item`,
          ratio: l.perItemMs / s.perItemMs,
          target: '<= 1.5',
          pass: l.perItemMs / s.perItemMs <= 1.5,
          limits: `${LARGE}: ${l.load}; ${SMALL}: ${s.load}`,
        });
        rows.push({
          bench: `3. worker peak RSS ${LARGE} vs ${SMALL}`,
          figure: `${l.workerRss.toFixed(0)} MB`,
          baseline: `${s.workerRss.toFixed(0)} MB`,
          ratio: l.workerRss / s.workerRss,
          target: '<= 1.2 (no growth)',
          pass: l.workerRss / s.workerRss <= 1.2,
        });
      }
      const h = large[HUGE];
      if (l && h) {
        rows.push({
          bench: `3. worker peak RSS ${HUGE} vs ${LARGE}`,
          figure: `${h.workerRss.toFixed(0)} MB`,
          baseline: `${l.workerRss.toFixed(0)} MB`,
          ratio: h.workerRss / l.workerRss,
          target: '<= 1.2 (no growth)',
          pass: h.workerRss / l.workerRss <= 1.2,
          limits: `time per item ${h.perItemMs.toFixed(3)} ms (${LARGE}: ${l.perItemMs.toFixed(3)} ms); POST ${(h.postMs / 1000).toFixed(2)} s, API peak RSS ${h.apiRss.toFixed(0)} MB`,
        });
      }

      // 2. API (last: its tasks stay queued, no workers) ------------------------------------------------
      const [tid] = await insertTransactions(db, 1);
      if (runs('api'))
        await phase(0, async (ctx) => {
          const { id } = await createTask(ctx.port, ctx.auth, [tid]);
          const post = JSON.stringify({ tids: [tid], batchSize: 1 });
          const measure = (call: () => Call, status: number) => load(ctx.port, API_REQUESTS, 20, call, status, 120000);
          const get = () => ({ method: 'GET', path: `/tasks/${id}`, headers: ctx.auth() });
          const create = () => ({
            method: 'POST',
            path: '/tasks',
            headers: { ...ctx.auth(), 'content-type': 'application/json', 'content-length': String(post.length) },
            body: post,
          });
          // Both warmed alike: the first thousand or so of either run slower while V8 compiles their paths.
          await measure(get, 200);
          await measure(create, 201);
          const cpuBefore = cpuSeconds(mongo!.child.pid);
          const apiCpuBefore = cpuSeconds(ctx.api.child.pid);
          const g = await measure(get, 200);
          const p = await measure(create, 201);
          const total = g.seconds + p.seconds;
          const [gps, pps] = [API_REQUESTS / g.seconds, API_REQUESTS / p.seconds];
          rows.push({
            bench: `2. POST /tasks (1 tid, token auth), 20 concurrent, ${API_REQUESTS} requests`,
            figure: `${pps.toFixed(0)}/s, p99 ${percentile(p.latencies, 99).toFixed(1)} ms`,
            baseline: `GET /tasks/:id ${gps.toFixed(0)}/s, p99 ${percentile(g.latencies, 99).toFixed(1)} ms`,
            ratio: pps / gps,
            target: '>= 0.9',
            pass: pps / gps >= 0.9,
            limits: `CPU cores over both: API ${((cpuSeconds(ctx.api.child.pid) - apiCpuBefore) / total).toFixed(2)}, mongo ${((cpuSeconds(mongo!.child.pid) - cpuBefore) / total).toFixed(2)}`,
          });
        });

      printTable(rows);
    } finally {
      await Promise.all([...procs].map(stop));
      await stub?.close().catch(() => undefined);
      await client?.close().catch(() => undefined);
      await stopProcess(mongo);
      await redis?.stop();
    }
  },
  3 * 60 * 60 * 1000,
);

async function waitForValue<T>(
  probe: () => Promise<T | null | undefined>,
  what: string,
  timeoutMs = 30000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function printTable(rows: Row[]): void {
  const header = ['Benchmark', 'Figure', 'Baseline (same run)', 'Ratio', 'Target', 'Result'];
  const cells = rows.map((row) => [
    row.bench,
    row.figure,
    row.baseline,
    row.ratio === undefined ? '-' : row.ratio.toFixed(2),
    row.target ?? '-',
    row.pass === undefined ? '-' : row.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  const out = [
    `Machine: ${cpus().length} cores, scale ${SCALE}`,
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
    '',
    'What limits each figure (CPU cores used by each process while it ran):',
    ...rows.filter((row) => row.limits).map((row) => `- ${row.bench}: ${row.limits}`),
  ];
  print(out.join('\n'));
}

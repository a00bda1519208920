import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db, MongoClient, ObjectId } from 'mongodb';
import { startPrivateRedis, type PrivateRedis } from '../../src/bootstrap/private-redis';
import { findFreePort } from '../../src/common/net/free-port';
import { request, type HttpResult } from '../support/http';
import { ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from '../support/openhim-auth';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { mongoWireVersionArgs } from '../support/mongodb-version';
import { distEntry, mongoWireCli, runNode, type RunningProcess } from '../support/processes';
import { waitFor } from '../support/wait';
import { guardDriverWrites } from '../../src/database/driver/driver-write-guard';

/** The embedded server runs as a one-member replica set, as Jembi's platform runs MongoDB for OpenHIM 8. */
const REPLICA_SET = 'rs0';

/** Engine settings that make a dead worker's work move on within seconds. */
export const FAULT_ENGINE = {
  WORKER_LEASE_MS: '3000',
  SWEEP_INTERVAL_MS: '500',
  WORKER_FLUSH_MS: '100',
  RERUN_TIMEOUT_MS: '2000',
  RERUN_RETRY_DELAY_MS: '300',
  RERUN_RETRY_WINDOW_MS: '120000',
  // Longer than the stub (like core) may hold a request before storing its child: 5 s of retries.
  RERUN_RETRY_SETTLE_MS: '6000',
};

/**
 * The channels' circuit breakers (docs/design.md, "Outage recovery"), quick enough for a scenario:
 * opened by 10 failed reruns in a row, probed after 0.5 s, then 1 s, then every 2 s. Only reruns
 * of transactions with a `channelID` count; the other scenarios' transactions have none, so their
 * outages never open a breaker.
 */
export const FAULT_BREAKER = {
  BREAKER_FAILURES: '10',
  BREAKER_BACKOFF_MS: '500',
  BREAKER_BACKOFF_MAX_MS: '2000',
};

/** One answer (or non-answer) of the API while faults were injected. */
export interface Probe {
  at: number;
  path: string;
  status: number;
  ms: number;
  error?: string;
}

/**
 * The whole service as separate processes, the way it is deployed: the standalone
 * MongoDB-compatible server (with --dbpath, so it can be stopped and started again like a mongod),
 * a real redis-server, an API process, worker processes, and a stub of OpenHIM core's rerun port.
 */
export class FaultBench {
  mongo!: RunningProcess;
  redis!: PrivateRedis;
  client!: MongoClient;
  db!: Db;
  stub!: OpenhimCoreStub;
  api!: RunningProcess;
  apiUrl!: string;
  readonly workers: RunningProcess[] = [];
  /** Every worker ever started, for the logs. */
  private readonly allWorkers: RunningProcess[] = [];
  readonly probes: Probe[] = [];
  private readonly dbPath = mkdtempSync(join(tmpdir(), 'openhim-rerun-faults-'));
  private mongoPort = 0;
  private salt = '';
  private probing?: Promise<void>;
  private stopProbing = false;

  /** As in production (README, "MongoDB"): a replica set, majority writes. */
  get mongoUri(): string {
    return `mongodb://127.0.0.1:${this.mongoPort}/openhim_faults?replicaSet=${REPLICA_SET}&w=majority`;
  }

  private serviceEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      MONGODB_URI: this.mongoUri,
      REDIS_URL: this.redis.url,
      QUEUE_PREFIX: 'faults',
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(this.stub.port),
      LOG_LEVEL: 'warn',
      ...FAULT_ENGINE,
      ...FAULT_BREAKER,
      ...extra,
    };
  }

  static async start(workers = 2): Promise<FaultBench> {
    // The test's own client survives the server's stop like the service's (a driver defect otherwise
    // leaves an operation, or its heartbeat, pending forever: src/database/driver/driver-write-guard.ts).
    guardDriverWrites();
    const bench = new FaultBench();
    bench.mongoPort = await findFreePort();
    await bench.startMongo();
    bench.redis = await startPrivateRedis();
    // Patient: the test's own connection has to outlive the MongoDB stop as well.
    bench.client = await MongoClient.connect(bench.mongoUri, { serverSelectionTimeoutMS: 30000 });
    bench.db = bench.client.db();
    bench.stub = await OpenhimCoreStub.start(bench.db);
    const apiPort = await findFreePort();
    bench.api = runNode(
      distEntry('main.api.js'),
      [],
      bench.serviceEnv({ API_PORT: String(apiPort), API_HOST: '127.0.0.1', API_PROTOCOL: 'http' }),
    );
    bench.apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor('the API to be ready', async () => (await bench.get('/health/ready')).status === 200, 60000, 100);
    const answer = await bench.get(`/authenticate/${encodeURIComponent(ROOT_EMAIL)}`);
    bench.salt = (JSON.parse(answer.body) as { salt: string }).salt;
    for (let i = 0; i < workers; i++) await bench.startWorker();
    return bench;
  }

  async startMongo(): Promise<void> {
    this.mongo = runNode(mongoWireCli(), [
      '--port',
      String(this.mongoPort),
      '--dbpath',
      this.dbPath,
      '--replSet',
      REPLICA_SET,
      ...mongoWireVersionArgs(),
    ]);
    await this.mongo.waitForOutput(/listening at mongodb:\/\//, 30000);
  }

  /** SIGTERM (the server saves to --dbpath and exits), `downMs` of nothing, then the same port again. */
  async restartMongo(downMs: number): Promise<void> {
    this.mongo.kill('SIGTERM');
    const code = await this.mongo.exited;
    if (code !== 0) throw new Error(`the MongoDB-compatible server exited with ${code}:\n${this.mongo.output()}`);
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.startMongo();
  }

  /**
   * The primary steps down (`replSetStepDown` with `force`, as in a one-member set) and is elected
   * again after `seconds`: meanwhile every write is refused with NotWritablePrimary (10107) and every
   * primary read with 13435; connections stay open (MongoDB 4.2+).
   */
  async stepDown(seconds: number): Promise<void> {
    await this.client.db('admin').command({ replSetStepDown: seconds, force: true });
  }

  async restartRedis(downMs: number): Promise<void> {
    await this.redis.stop();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.redis.start();
  }

  async startWorker(): Promise<RunningProcess> {
    const worker = runNode(distEntry('main.worker.js'), [], this.serviceEnv({ LOG_LEVEL: 'info' }));
    await worker.waitForOutput(/Rerun worker started/, 60000);
    this.workers.push(worker);
    this.allWorkers.push(worker);
    return worker;
  }

  /** SIGKILLs a running worker; resolves once it is gone. */
  async killWorker(worker: RunningProcess): Promise<void> {
    worker.kill('SIGKILL');
    await worker.exited;
    this.workers.splice(this.workers.indexOf(worker), 1);
  }

  /** The running worker a lease or probe `owner` (host:pid:random) names, if it is one of ours. */
  workerOf(owner: string): RunningProcess | undefined {
    const pid = Number(/:(\d+):[^:]*$/.exec(owner)?.[1]);
    return this.workers.find((worker) => worker.child.pid === pid);
  }

  /** Every log line of every worker (dead ones included) that `pattern` matches, with the worker's pid. */
  workerLines(pattern: RegExp): Array<{ pid: number; line: string }> {
    return this.allWorkers.flatMap((worker) =>
      worker
        .output()
        .split('\n')
        .filter((line) => pattern.test(line))
        .map((line) => ({ pid: worker.child.pid!, line })),
    );
  }

  headers(): Record<string, string> {
    return tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, this.salt);
  }

  get(path: string, timeoutMs = 20000): Promise<HttpResult> {
    return this.call('GET', path, undefined, timeoutMs);
  }

  call(method: string, path: string, body?: object, timeoutMs = 20000): Promise<HttpResult> {
    const headers = path.startsWith('/authenticate') ? {} : this.headers();
    return request(`${this.apiUrl}${path}`, { method, headers, body, timeoutMs });
  }

  /** What an operator would look at when a task is stuck: the task, its unfinished items, the logs. */
  async diagnose(taskId: string): Promise<string> {
    const id = new ObjectId(taskId);
    const task = await this.db.collection('tasks').findOne({ _id: id }, { projection: { transactions: 0 } });
    const items = await this.db
      .collection('taskitems')
      .find({ taskId: id, tstatus: { $ne: 'Completed' } })
      .limit(20)
      .toArray();
    const tail = (proc: RunningProcess) => proc.output().split('\n').slice(-40).join('\n');
    return [
      `task: ${JSON.stringify(task)}`,
      `unfinished items (first 20): ${JSON.stringify(items)}`,
      ...this.workers.map((worker, i) => `--- worker ${i} (pid ${worker.child.pid}) ---\n${tail(worker)}`),
      `--- api ---\n${tail(this.api)}`,
    ].join('\n');
  }

  /** Every log line (all workers, dead ones included) and stub arrival that names one of `tids`. */
  linesAbout(tids: string[]): string {
    const lines = [...this.allWorkers, this.api].flatMap((proc) =>
      proc
        .output()
        .split('\n')
        .filter((line) => tids.some((tid) => line.includes(tid)))
        .map((line) => `[pid ${proc.child.pid}] ${line}`),
    );
    const arrivals = this.stub.requests
      .filter((request) => tids.includes(request.parentId ?? ''))
      .map(
        (request) => `[stub] ${new Date(request.arrivedAt).toISOString()} ${request.parentId} child=${request.childId}`,
      );
    return [...lines, ...arrivals].join('\n');
  }

  /** Polls the API (a task read, the list, liveness) every `everyMs` until `stopProbes`. */
  startProbes(taskId: string, everyMs = 250): void {
    this.stopProbing = false;
    const paths = [`/tasks/${taskId}?filterPage=0&filterLimit=5`, '/tasks?filterLimit=5', '/health/live'];
    this.probing = (async () => {
      for (let i = 0; !this.stopProbing; i++) {
        const path = paths[i % paths.length];
        const at = Date.now();
        try {
          const answer = await this.get(path, 15000);
          this.probes.push({ at, path, status: answer.status, ms: Date.now() - at });
        } catch (error) {
          this.probes.push({ at, path, status: 0, ms: Date.now() - at, error: (error as Error).message });
        }
        await new Promise((resolve) => setTimeout(resolve, everyMs));
      }
    })();
  }

  async stopProbes(): Promise<Probe[]> {
    this.stopProbing = true;
    await this.probing;
    return this.probes.splice(0);
  }

  async stop(): Promise<void> {
    this.stopProbing = true;
    await this.probing;
    const all = [...this.workers, this.api, this.mongo].filter(Boolean);
    for (const proc of all) proc.kill('SIGTERM');
    const killer = setTimeout(() => all.forEach((proc) => proc.kill('SIGKILL')), 10000);
    await Promise.all(all.map((proc) => proc.exited));
    clearTimeout(killer);
    await this.stub?.close();
    await this.client?.close().catch(() => undefined);
    await this.redis?.stop();
    rmSync(this.dbPath, { recursive: true, force: true });
  }
}

/** A small seeded generator, so that a failing run can be repeated with FAULT_SEED. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

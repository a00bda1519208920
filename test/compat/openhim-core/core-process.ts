import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');
export const CORE_SERVER = join(ROOT, 'node_modules', 'openhim-core', 'lib', 'server.js');
const PRELOAD = join(__dirname, 'offline-root-cas.cjs');
export const CORE_VERSION = (
  JSON.parse(readFileSync(join(ROOT, 'node_modules', 'openhim-core', 'package.json'), 'utf8')) as { version: string }
).version;

/** Every port OpenHIM core 4.0.5 listens on (config/default.json), plus the disabled audit servers. */
export interface CorePorts {
  routerHttp: number;
  routerHttps: number;
  api: number;
  rerun: number;
  tcpReceiver: number;
  polling: number;
  auditUdp: number;
  auditTls: number;
  auditTcp: number;
}

export interface CoreOptions {
  /** `mongodb://...` for both `mongo.url` and `mongo.atnaUrl`. */
  mongoUri: string;
  /** Core's own task runner (`rerun.processor.enabled`); off unless a test compares against it. */
  taskProcessor?: boolean;
  /** `rerun.processor.pollPeriodMillis` (default 2000). */
  pollPeriodMillis?: number;
  /** `logger.logToDB` (core's default is true: every log line also goes to a capped collection). */
  logToDb?: boolean;
  startTimeoutMs?: number;
  /** Extra Node arguments for core's processes (the cluster worker inherits them), e.g. a profiling preload. */
  nodeArgs?: string[];
  /** Extra environment variables (e.g. CPU_PROFILE_DIR for bench/cpu-profile.cjs). */
  env?: Record<string, string>;
}

/** Entries that show core itself broke: its worker died, or an exception or rejection went unhandled. */
const CRASH_PATTERNS: RegExp[] = [
  /worker \d+ died/,
  /uncaughtException|Uncaught /i,
  /UnhandledPromiseRejection|Unhandled promise rejection/i,
];

/** Entries core logs when a request or a rerun went wrong (error level, failed task updates). */
const ERROR_PATTERNS: RegExp[] = [...CRASH_PATTERNS, /- error: /, /could not be updated/];

/**
 * Core 4's own races, whoever sends the requests (core's own task runner provokes them too):
 * - every rerun makes core write an audit, and concurrent audits read-modify-save one `auditMeta`
 *   document with mongoose versioning: while it still gains new codes, the losers fail with a
 *   VersionError (the audits themselves are stored);
 * - `setFinalStatus` can record metrics before the unawaited `storeResponse` has stored the
 *   response time, and the NaN fails to cast in an unhandled promise. This is the race that kills
 *   core's worker on Node >= 15 without `--unhandled-rejections=warn`; it loses one metrics sample.
 */
const KNOWN_CORE_RACES: RegExp[] = [
  /No matching document found for id "[0-9a-f]{24}" version \d+ modifiedPaths "eventType/,
  /UnhandledPromiseRejectionWarning: CastError: Cast to number failed for value "NaN" at path "(max|min)ResponseTime"/,
];

/** Lines Node adds after a warning, not entries of their own. */
const NODE_FOLLOW_UPS = [
  /UnhandledPromiseRejectionWarning: Unhandled promise rejection\. This error originated/,
  /^\(Use `node --trace-warnings/,
];

const isKnownRace = (entry: string) => KNOWN_CORE_RACES.some((pattern) => pattern.test(entry));

/**
 * OpenHIM core 4.0.5 (the npm package) as a child process: `lib/server.js` (a cluster master and one
 * worker) on free loopback ports, in its own process group so that stopping it leaves nothing behind.
 *
 * Booleans go through a `conf` file, not the environment: core 4 reads the environment with nconf
 * 0.8, which keeps values as strings, so `rerun_processor_enabled=false` is the truthy string
 * "false" and leaves core's task runner ON.
 */
export class OpenhimCore {
  private text = '';
  /** Per stream, so that a multi-line entry is not split by lines of the other stream. */
  private readonly streams = { stdout: '', stderr: '' };
  private readonly exitedPromise: Promise<void>;
  private stopped = false;
  private readonly killOnExit = () => this.killGroup('SIGKILL');

  private constructor(
    readonly child: ChildProcess,
    readonly ports: CorePorts,
    private readonly workDir: string,
  ) {
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      this.text += chunk.toString();
      this.streams[stream] += chunk.toString();
    };
    child.stdout?.on('data', onData('stdout'));
    child.stderr?.on('data', onData('stderr'));
    this.exitedPromise = new Promise((resolve) => child.once('exit', () => resolve()));
    process.once('exit', this.killOnExit);
  }

  static async start(options: CoreOptions): Promise<OpenhimCore> {
    const ports = await freePorts();
    const workDir = mkdtempSync(join(tmpdir(), 'openhim-core-'));
    const conf = join(workDir, 'config.json');
    writeFileSync(
      conf,
      JSON.stringify({
        // Level info (core's default): readiness and the crash check read the log.
        logger: { level: 'info', logToDB: options.logToDb ?? true },
        rerun: {
          processor: { enabled: options.taskProcessor ?? false, pollPeriodMillis: options.pollPeriodMillis ?? 2000 },
        },
        alerts: { enableAlerts: false },
        reports: { enableReports: false },
        bodyCull: { enabled: false },
        statsd: { enabled: false },
        auditing: { servers: { udp: { enabled: false }, tls: { enabled: false }, tcp: { enabled: false } } },
      }),
    );
    const host = '127.0.0.1';
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: workDir,
      TZ: 'UTC',
      conf,
      mongo_url: options.mongoUri,
      mongo_atnaUrl: options.mongoUri,
      bindAddress: host,
      router_externalHostname: host,
      router_httpPort: String(ports.routerHttp),
      router_httpsPort: String(ports.routerHttps),
      api_httpsPort: String(ports.api),
      rerun_host: host,
      rerun_httpPort: String(ports.rerun),
      tcpAdapter_httpReceiver_host: host,
      tcpAdapter_httpReceiver_httpPort: String(ports.tcpReceiver),
      polling_host: host,
      polling_pollingPort: String(ports.polling),
      auditing_servers_udp_port: String(ports.auditUdp),
      auditing_servers_tls_port: String(ports.auditTls),
      auditing_servers_tcp_port: String(ports.auditTcp),
      auditing_auditEvents_host: host,
      auditing_auditEvents_port: String(ports.auditTls),
      ...options.env,
    };
    // --unhandled-rejections=warn: a race inside core 4 otherwise kills its worker on Node >= 15.
    const args = ['--unhandled-rejections=warn', '--require', PRELOAD, ...(options.nodeArgs ?? []), CORE_SERVER];
    const child = spawn(process.execPath, args, {
      cwd: workDir,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const core = new OpenhimCore(child, ports, workDir);
    try {
      await core.waitForLog(/OpenHIM server started/, options.startTimeoutMs ?? 30000);
    } catch (error) {
      await core.stop();
      throw error;
    }
    return core;
  }

  get apiUrl(): string {
    return `https://127.0.0.1:${this.ports.api}`;
  }

  get routerUrl(): string {
    return `http://127.0.0.1:${this.ports.routerHttp}`;
  }

  /** Core's log so far, without colours. */
  get log(): string {
    // eslint-disable-next-line no-control-regex
    return this.text.replace(/\u001b\[[0-9;]*m/g, '');
  }

  /**
   * The log as entries, per stream: a line that starts with whitespace (a stack frame), or one of
   * Node's follow-ups to a warning, belongs to the entry before it.
   */
  entries(): string[] {
    const entries: string[] = [];
    for (const text of Object.values(this.streams)) {
      let previous: number | undefined;
      // eslint-disable-next-line no-control-regex
      for (const line of text.replace(/\u001b\[[0-9;]*m/g, '').split('\n')) {
        const continuation = /^\s/.test(line) || NODE_FOLLOW_UPS.some((pattern) => pattern.test(line));
        if (continuation && previous !== undefined) entries[previous] += `\n${line}`;
        else if (line.trim()) previous = entries.push(line) - 1;
      }
    }
    return entries;
  }

  /** Entries that show core crashed (empty when all is well); core must also still be running. */
  crashes(): string[] {
    const found = this.entries().filter(
      (entry) => CRASH_PATTERNS.some((pattern) => pattern.test(entry)) && !isKnownRace(entry),
    );
    if (!this.stopped && (this.child.exitCode !== null || this.child.signalCode !== null))
      found.push(`core exited (${this.child.exitCode ?? this.child.signalCode})`);
    return found;
  }

  /** Crashes plus every error core logged, except its known internal races. */
  errors(): string[] {
    const logged = this.entries().filter(
      (entry) => ERROR_PATTERNS.some((pattern) => pattern.test(entry)) && !isKnownRace(entry),
    );
    return [...new Set([...this.crashes(), ...logged])];
  }

  /** Waits until the log (from `from`, an offset into it) matches. */
  waitForLog(pattern: RegExp, timeoutMs = 15000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const poll = () => {
        const match = this.log.slice(from).match(pattern);
        if (match) return resolve(match);
        if (this.child.exitCode !== null || this.child.signalCode !== null) {
          return reject(new Error(`OpenHIM core exited before ${pattern}:\n${this.log}`));
        }
        if (Date.now() - started > timeoutMs)
          return reject(new Error(`OpenHIM core: timed out waiting for ${pattern}:\n${this.log}`));
        setTimeout(poll, 50);
      };
      poll();
    });
  }

  /**
   * SIGTERM to the whole group (the worker shuts its servers down; the master has no handler and
   * dies), then SIGKILL for anything still there after `graceMs`. Idempotent.
   */
  async stop(graceMs = 8000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.killGroup('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (this.groupAlive() && Date.now() < deadline) await sleep(50);
    if (this.groupAlive()) this.killGroup('SIGKILL');
    while (this.groupAlive()) await sleep(20);
    await this.exitedPromise;
    process.removeListener('exit', this.killOnExit);
    rmSync(this.workDir, { recursive: true, force: true });
  }

  private groupAlive(): boolean {
    if (this.child.pid === undefined) return false;
    try {
      process.kill(-this.child.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  private killGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Nine distinct free loopback ports, held open together so none is handed out twice. */
async function freePorts(): Promise<CorePorts> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < 9; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      ports.push((server.address() as { port: number }).port);
    }
    const [routerHttp, routerHttps, api, rerun, tcpReceiver, polling, auditUdp, auditTls, auditTcp] = ports;
    return { routerHttp, routerHttps, api, rerun, tcpReceiver, polling, auditUdp, auditTls, auditTcp };
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

import Bull from 'bull';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { RERUN_QUEUE } from '../../src/rerun/rerun.constants';
import { RerunScheduler } from '../../src/rerun/rerun-scheduler.service';
import type { TestEnvironment } from './test-environment';

const ROOT = join(__dirname, '..', '..');
const WORKER_ENTRY = join(ROOT, 'dist', 'main.worker.js');

/** Newest modification time of the sources that go into dist/. */
function newestSource(dir = join(ROOT, 'src')): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts'))
      newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function builtAt(): number {
  try {
    return statSync(WORKER_ENTRY).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Builds dist/ when it is older than src/ (`npm test` builds first, so usually nothing to do).
 * Test files run in parallel: a lock directory makes one of them build while the others wait.
 */
export async function ensureBuilt(): Promise<void> {
  if (builtAt() >= newestSource()) return;
  const lock = join(tmpdir(), `openhim-rerun-build-${createHash('sha1').update(ROOT).digest('hex').slice(0, 12)}.lock`);
  const deadline = Date.now() + 120000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 120000) rmdirSync(lock); // left by a killed run
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the build lock ${lock}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    if (builtAt() >= newestSource()) return;
    const started = Date.now();
    const output = await new Promise<string>((resolve) =>
      execFile(
        process.execPath,
        [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')],
        { cwd: ROOT },
        (_error, stdout, stderr) => resolve(`${stdout}${stderr}`),
      ),
    );
    // tsc emits even with type errors elsewhere in the tree; what matters here is a fresh worker.
    if (builtAt() < started - 1000) throw new Error(`npm run build did not produce ${WORKER_ENTRY}:\n${output}`);
  } finally {
    rmdirSync(lock);
  }
}

/** `node dist/main.worker.js` as a separate process, configured for the test environment. */
export class WorkerProcess {
  private output = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static async start(env: TestEnvironment, overrides: Record<string, string> = {}): Promise<WorkerProcess> {
    const config = env.config(overrides);
    const vars: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      TZ: 'UTC',
      MONGODB_URI: config.MONGODB_URI!,
      REDIS_URL: config.REDIS_URL!,
      QUEUE_PREFIX: config.QUEUE_PREFIX,
      TASKS_COLLECTION: config.TASKS_COLLECTION,
      ...overrides,
      LOG_LEVEL: 'info',
    };
    const worker = new WorkerProcess(
      spawn(process.execPath, [WORKER_ENTRY], { env: vars, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const deadline = Date.now() + 30000;
    while (!worker.output.includes('Rerun worker started')) {
      if (worker.child.exitCode !== null || Date.now() > deadline) {
        worker.child.kill('SIGKILL');
        throw new Error(`Worker process did not start:\n${worker.output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return worker;
  }

  get log(): string {
    return this.output;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** A producer on the test environment's queue, as the tasks API holds one. */
export function openScheduler(
  env: TestEnvironment,
  overrides: Record<string, string> = {},
): { scheduler: RerunScheduler; close: () => Promise<void> } {
  const config = env.config(overrides);
  const queue = new Bull(RERUN_QUEUE, config.REDIS_URL!, { prefix: config.QUEUE_PREFIX });
  queue.on('error', () => undefined);
  return { scheduler: new RerunScheduler(queue as never), close: () => queue.close() };
}

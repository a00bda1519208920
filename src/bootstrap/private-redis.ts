import { ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { findFreePort } from '../common/net/free-port';
import { StartupError } from './startup-errors';

export class RedisNotInstalledError extends StartupError {
  constructor(binary: string) {
    super(
      `Cannot start a private Redis: '${binary}' was not found on PATH. ` +
        'Install one (Debian/Ubuntu: apt-get install -y redis-server) or set REDIS_URL=redis://host:6379.',
    );
  }
}

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server; with `keepPort` it can be started again on the same port (fault tests). */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface PrivateRedisOptions {
  binary?: string;
  port?: number;
  /**
   * Runs redis-server in a process group of its own, so a Ctrl-C in the terminal (SIGINT to the
   * whole foreground group) reaches only this process, which stops Redis itself, after the
   * application is closed (`npm start`). The tests leave it in theirs: a killed test run takes
   * its servers with it.
   */
  ownProcessGroup?: boolean;
}

/** Every private redis-server of this process that is running: stopped when the process exits, however it exits. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function stopAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: a signal is all that can be sent from an 'exit' listener. Redis saves nothing.
  process.on('exit', () => {
    for (const child of running) child.kill('SIGTERM');
  });
}

/** What redis-server printed last (its reason for exiting at start, e.g. a port or config problem). */
function lastLines(output: string): string {
  const lines = output.trim().split('\n').slice(-2);
  return lines.map((line) => line.replace(/^\d+:[A-Z] .*? [*#-] /, '').trim()).join(' / ');
}

/**
 * Starts `redis-server` from PATH on a free loopback port, keeping nothing on disk.
 * Used by `npm start` when REDIS_URL is unset, and by the tests.
 */
export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const binary = options.binary ?? 'redis-server';
  const port = options.port ?? (await findFreePort());
  let child: ChildProcess | undefined;
  stopAllOnExit();

  const start = async () => {
    child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: options.ownProcessGroup === true },
    );
    const spawned = child;
    running.add(spawned);
    spawned.once('exit', () => running.delete(spawned));
    // Read (and, once started, drop) what it prints, so it never blocks on a full pipe.
    let output = '';
    const collect = (chunk: Buffer) => {
      if (output.length < 16384) output += chunk.toString();
    };
    spawned.stdout?.on('data', collect);
    spawned.stderr?.on('data', collect);
    const failed = new Promise<never>((_, reject) => {
      spawned.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'ENOENT'
            ? new RedisNotInstalledError(binary)
            : new StartupError(`Cannot start a private redis-server ('${binary}'): ${error.message}`),
        ),
      );
      spawned.once('exit', (code, signal) =>
        reject(
          new StartupError(
            `The private redis-server on 127.0.0.1:${port} exited while starting (${signal ?? `code ${code}`}` +
              `${output.trim() ? `: ${lastLines(output)}` : ''}). Set REDIS_URL=redis://host:6379 to use another Redis.`,
          ),
        ),
      );
    });
    try {
      await Promise.race([waitForPong(port, 10000), failed]);
    } catch (error) {
      if (spawned.exitCode === null && spawned.signalCode === null) spawned.kill('SIGKILL');
      throw error;
    }
    spawned.removeAllListeners('exit');
    spawned.once('exit', () => running.delete(spawned));
    spawned.stdout?.off('data', collect).resume();
    spawned.stderr?.off('data', collect).resume();
  };

  const stop = async () => {
    const stopping = child;
    child = undefined;
    if (!stopping || stopping.exitCode !== null || stopping.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      stopping.once('exit', () => resolve());
      stopping.kill('SIGTERM');
      setTimeout(() => stopping.kill('SIGKILL'), 3000).unref();
    });
  };

  await start();
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}

async function waitForPong(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ping(port)) return;
    if (Date.now() > deadline)
      throw new StartupError(
        `The private redis-server on 127.0.0.1:${port} did not answer PING within ${timeoutMs / 1000} s. ` +
          'Set REDIS_URL=redis://host:6379 to use another Redis.',
      );
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(500);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });
}

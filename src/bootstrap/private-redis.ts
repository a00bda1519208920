import { ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { findFreePort } from '../common/net/free-port';

export class RedisNotInstalledError extends Error {
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

/**
 * Starts `redis-server` from PATH on a free loopback port, keeping nothing on disk.
 * Used by `npm start` when REDIS_URL is unset, and by the tests.
 */
export async function startPrivateRedis(options: { binary?: string; port?: number } = {}): Promise<PrivateRedis> {
  const binary = options.binary ?? 'redis-server';
  const port = options.port ?? (await findFreePort());
  let child: ChildProcess | undefined;

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
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const spawned = child;
    const failed = new Promise<never>((_, reject) => {
      spawned.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'ENOENT' ? new RedisNotInstalledError(binary) : error),
      );
      spawned.once('exit', (code) => reject(new Error(`redis-server exited with code ${code} while starting`)));
    });
    await Promise.race([waitForPong(port, 10000), failed]);
    spawned.removeAllListeners('exit');
  };

  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGTERM');
      setTimeout(() => running.kill('SIGKILL'), 3000).unref();
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
      throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
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

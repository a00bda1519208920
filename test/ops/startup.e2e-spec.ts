import { request as httpsRequest } from 'node:https';
import { createConnection, createServer, Server } from 'node:net';
import { MongoWireServer, type MongoDBVersion } from '@openhim-rerun/mongo-wire';
import mongoose from 'mongoose';
import { findFreePort } from '../../src/common/net/free-port';
import { distEntry, mongoWireCli, runNode, RunningProcess } from '../support/processes';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

function getHealth(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/health', rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

type LogLine = Record<string, unknown> & { level: string; msg: string };

/** Every line of the output as JSON (stdout is a pipe, not a terminal): throws on a line that is not. */
function jsonLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    });
}

/** A port some other process holds. */
async function occupyPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

const privateRedisPort = (output: string) =>
  Number(output.match(/private redis-server at redis:\/\/127\.0\.0\.1:(\d+)/)?.[1] ?? NaN);

function portIsOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

describe('npm start (all-in-one on embedded defaults)', () => {
  let service: RunningProcess;
  let port: number;
  let startedAt: number;

  beforeAll(async () => {
    port = await findFreePort();
    startedAt = Date.now();
    service = runNode(distEntry('main.js'), [], { API_PORT: String(port), LOG_LEVEL: 'info' });
  });
  afterAll(async () => {
    service.kill('SIGKILL');
    await service.exited;
  });

  // The target is 15 s (about 3 s on a quiet 2-core machine); the bound leaves room for a CI
  // machine busy with the other suites running in parallel.
  it('serves GET https://localhost:<port>/health = 200', async () => {
    const health = await waitFor(
      'health 200',
      async () => {
        const answer = await getHealth(port);
        return answer.status === 200 ? answer : undefined;
      },
      30000,
    );
    console.log(`npm start: /health answered 200 after ${Date.now() - startedAt} ms`);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok', mongo: 'up', redis: 'up' });
  });

  it('says loudly that data is lost at exit and how to use a real MongoDB', () => {
    expect(service.output()).toMatch(/ALL DATA IS LOST WHEN THE PROCESS EXITS/);
    expect(service.output()).toMatch(/Set MONGODB_URI=mongodb:\/\//);
    expect(service.output()).toMatch(/started a private redis-server at redis:\/\/127\.0\.0\.1:(\d+)/);
  });

  it('logs every line as JSON when stdout is not a terminal, from the first one', () => {
    const lines = jsonLines(service.output());
    expect(lines[0]).toMatchObject({ level: 'warn', context: 'Bootstrap', role: 'all' });
    expect(lines[0].msg).toMatch(/^MONGODB_URI is not set: using the embedded in-memory/);
    expect(lines[1].msg).toMatch(/^REDIS_URL is not set: started a private redis-server/);
    for (const line of lines) expect(line).toMatchObject({ level: expect.any(String), msg: expect.any(String) });
  });

  it('stops cleanly on SIGTERM, taking its private Redis with it', async () => {
    const redisPort = Number(service.output().match(/private redis-server at redis:\/\/127\.0\.0\.1:(\d+)/)![1]);
    expect(await portIsOpen(redisPort)).toBe(true);
    service.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(await portIsOpen(port)).toBe(false);
    expect(await portIsOpen(redisPort)).toBe(false);
  });
});

describe('configuration errors', () => {
  it('stop the process with one message listing every problem', async () => {
    const service = runNode(distEntry('main.js'), [], { API_PORT: 'eighty', API_PROTOCOL: 'ftp', LOG_LEVEL: 'loud' });
    expect(await service.exited).toBe(1);
    const lines = jsonLines(service.output());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'fatal', context: 'Bootstrap' });
    expect(lines[0].msg).toMatch(/^Invalid configuration: API_PORT .*; API_PROTOCOL .*; LOG_LEVEL .*\. Correct these/);
  });

  it('npm start without REDIS_URL and without redis-server on PATH says how to get one', async () => {
    const service = runNode(distEntry('main.js'), [], { PATH: '/nonexistent', API_PORT: '0' });
    expect(await service.exited).toBe(1);
    expect(service.output()).toContain("'redis-server' was not found on PATH");
    expect(service.output()).toContain('apt-get install -y redis-server');
    expect(service.output()).toContain('REDIS_URL=redis://');
  });

  it.each(['main.api.js', 'main.worker.js'])('%s refuses to start without MONGODB_URI and REDIS_URL', async (entry) => {
    const service = runNode(distEntry(entry));
    expect(await service.exited).toBe(1);
    expect(service.output()).toMatch(/MONGODB_URI must be set for the (api|worker) role/);
  });
});

describe('npm run mongo-server (standalone embedded MongoDB-compatible server)', () => {
  it('prints its URI, serves a mongoose app in another process, and stops on SIGTERM', async () => {
    const port = await findFreePort();
    const server = runNode(mongoWireCli(), ['--port', String(port)]);
    try {
      const [, uri] = await server.waitForOutput(/MongoDB-compatible server listening at (mongodb:\/\/\S+)/);
      expect(uri).toBe(`mongodb://127.0.0.1:${port}`);
      const connection = await mongoose.createConnection(`${uri}/standalone_check?directConnection=true`).asPromise();
      const Note = connection.model('Note', new mongoose.Schema({ text: String, n: Number }));
      await Note.create([
        { text: 'a', n: 1 },
        { text: 'b', n: 2 },
      ]);
      expect(await Note.countDocuments({ n: { $gte: 2 } })).toBe(1);
      await connection.close();
    } finally {
      server.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });
});

describe('Ctrl-C (SIGINT to the whole process group, as a terminal sends it)', () => {
  it('closes the application first and stops the private Redis last: no connection errors, nothing left running', async () => {
    const port = await findFreePort();
    const service = runNode(
      distEntry('main.js'),
      [],
      { API_PORT: String(port), LOG_LEVEL: 'info' },
      { ownGroup: true },
    );
    try {
      await service.waitForOutput(/listening at https:\/\/localhost/);
      const redisPort = privateRedisPort(service.output());
      expect(await portIsOpen(redisPort)).toBe(true);
      const before = jsonLines(service.output()).length;

      service.kill('SIGINT');
      expect(await service.exited).toBe(0);
      // Start-up work still finishing in the background (index builds) may log before the signal.
      const lines = jsonLines(service.output());
      const received = lines.findIndex((line) => line.msg === 'SIGINT received: closing');
      expect(received).toBeGreaterThanOrEqual(before);
      const shutdown = lines.slice(received);
      expect(shutdown[0]).toMatchObject({ context: 'Shutdown', msg: 'SIGINT received: closing' });
      expect(shutdown[shutdown.length - 1]).toMatchObject({ context: 'Shutdown', msg: 'Stopped' });
      // Redis outlived the application's close: nothing lost its connection to it.
      expect(service.output()).not.toMatch(/ECONNREFUSED|Connection is closed/);
      expect(shutdown.filter((line) => line.level === 'warn' || line.level === 'error')).toEqual([]);
      expect(await portIsOpen(port)).toBe(false);
      expect(await portIsOpen(redisPort)).toBe(false);
    } finally {
      service.kill('SIGKILL');
    }
  });
});

describe('start-up failures: one clear line, exit 1, nothing left running', () => {
  it('API_PORT in use: names the port and the setting, before starting anything', async () => {
    const { port, server } = await occupyPort();
    try {
      const startedAt = Date.now();
      const service = runNode(distEntry('main.js'), [], { API_PORT: String(port) });
      expect(await service.exited).toBe(1);
      expect(Date.now() - startedAt).toBeLessThan(15000);
      const lines = jsonLines(service.output());
      expect(lines).toEqual([
        expect.objectContaining({
          level: 'fatal',
          context: 'Bootstrap',
          msg:
            `Cannot listen on 0.0.0.0:${port}: port ${port} is already in use by another process. ` +
            `Stop that process, or set API_PORT to a free port (e.g. API_PORT=${port + 1}).`,
        }),
      ]);
    } finally {
      server.close();
    }
  });

  it('a TLS file that cannot be read, after the embedded servers started: they are stopped too', async () => {
    const service = runNode(distEntry('main.js'), [], {
      API_PORT: String(await findFreePort()),
      TLS_CERT_FILE: '/nonexistent/cert.pem',
      TLS_KEY_FILE: '/nonexistent/key.pem',
    });
    expect(await service.exited).toBe(1);
    const lines = jsonLines(service.output());
    const redisPort = privateRedisPort(service.output());
    expect(redisPort).toBeGreaterThan(0);
    expect(await portIsOpen(redisPort)).toBe(false);
    expect(lines.filter((line) => line.level === 'fatal' || line.level === 'error')).toEqual([
      expect.objectContaining({
        level: 'fatal',
        msg:
          'Cannot read TLS_CERT_FILE /nonexistent/cert.pem: no such file. Set TLS_CERT_FILE and TLS_KEY_FILE to a ' +
          'readable PEM certificate and its key, or unset both to serve a generated self-signed certificate.',
      }),
    ]);
    expect(lines[lines.length - 1].level).toBe('fatal');
  });

  it('WORKER_HTTP_PORT in use: the worker names it', async () => {
    const env = await TestEnvironment.start();
    const { port, server } = await occupyPort();
    try {
      const worker = runNode(distEntry('main.worker.js'), [], {
        MONGODB_URI: env.mongoUri,
        REDIS_URL: env.redis.url,
        WORKER_HTTP_PORT: String(port),
      });
      expect(await worker.exited).toBe(1);
      expect(jsonLines(worker.output())).toEqual([
        expect.objectContaining({
          level: 'fatal',
          role: 'worker',
          msg: expect.stringContaining(
            `port ${port} is already in use by another process. Stop that process, or set WORKER_HTTP_PORT to a free port`,
          ),
        }),
      ]);
    } finally {
      server.close();
      await env.stop();
    }
  });
});

describe('MongoDB versions at start (supported: 4.2 to 8.2)', () => {
  let redis: TestEnvironment;
  beforeAll(async () => {
    redis = await TestEnvironment.start();
  });
  afterAll(() => redis?.stop());

  /** Runs `entry` against an embedded server announcing `version`; returns once it exited or is ready. */
  async function startAgainst(version: string, entry: string, until: 'exit' | 'ready') {
    const mongo = new MongoWireServer({ port: 0, mongodbVersion: version as MongoDBVersion });
    await mongo.start();
    const uri = mongo.uri('openhim_versions');
    const service = runNode(distEntry(entry), [], {
      MONGODB_URI: uri,
      REDIS_URL: redis.redis.url,
      API_PORT: String(await findFreePort()),
      QUEUE_PREFIX: `versions-${version}`,
    });
    try {
      if (until === 'exit') await service.exited;
      else await service.waitForOutput(/Rerun (API listening|worker started)/, 60000);
      return { service, uri };
    } finally {
      service.kill('SIGKILL');
      await service.exited;
      await mongo.stop();
    }
  }

  it.each([
    ['4.0', 7, 'main.api.js'],
    ['3.6', 6, 'main.worker.js'],
    ['4.0', 7, 'main.js'],
  ])(
    'MongoDB %s: exits 1 at once with one fatal line naming the version found and the range',
    async (version, wire, entry) => {
      const startedAt = Date.now();
      const { service, uri } = await startAgainst(version, entry, 'exit');
      expect(await service.exited).toBe(1);
      expect(Date.now() - startedAt).toBeLessThan(15000);
      expect(jsonLines(service.output())).toEqual([
        expect.objectContaining({
          level: 'fatal',
          context: 'Bootstrap',
          msg:
            `MongoDB at ${uri} (MONGODB_URI) is MongoDB ${version} (wire version ${wire}); this service supports MongoDB 4.2 to 8.2 ` +
            '(wire versions 8-27). Upgrade MongoDB to 4.2 or later (what OpenHIM core 8 runs on).',
        }),
      ]);
    },
  );

  it.each([
    ['4.2', 'main.api.js'],
    ['4.2', 'main.worker.js'],
    ['8.0', 'main.api.js'],
  ])('MongoDB %s: %s starts', async (version, entry) => {
    const { service } = await startAgainst(version, entry, 'ready');
    expect(jsonLines(service.output()).filter((line) => line.level === 'fatal')).toEqual([]);
  });

  it('MongoDB unreachable: exits 1 after MONGODB_CONNECT_TIMEOUT_MS with one fatal line naming the URI, password masked', async () => {
    const port = await findFreePort();
    const startedAt = Date.now();
    const service = runNode(distEntry('main.api.js'), [], {
      MONGODB_URI: `mongodb://rerun:s3cret@127.0.0.1:${port}/openhim`,
      REDIS_URL: redis.redis.url,
      API_PORT: '0',
      MONGODB_CONNECT_TIMEOUT_MS: '2000',
    });
    expect(await service.exited).toBe(1);
    expect(Date.now() - startedAt).toBeLessThan(15000);
    const lines = jsonLines(service.output());
    expect(lines).toEqual([expect.objectContaining({ level: 'fatal', context: 'Bootstrap' })]);
    expect(lines[0].msg).toMatch(
      new RegExp(
        `^Cannot connect to MongoDB at mongodb://rerun:\\*\\*\\*@127\\.0\\.0\\.1:${port}/openhim \\(MONGODB_URI\\) within 2 s`,
      ),
    );
    expect(lines[0].msg).toContain('Check that MongoDB is running and reachable there');
    expect(service.output()).not.toContain('s3cret');
  });
});

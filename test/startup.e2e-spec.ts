import { request as httpsRequest } from 'node:https';
import { createConnection } from 'node:net';
import mongoose from 'mongoose';
import { findFreePort } from '../src/common/net/free-port';
import { distEntry, runNode, RunningProcess } from './support/processes';
import { waitFor } from './support/wait';

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
    const output = service.output();
    expect(output).toContain('Invalid configuration');
    expect(output).toContain('API_PORT');
    expect(output).toContain('API_PROTOCOL');
    expect(output).toContain('LOG_LEVEL');
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
    const server = runNode(distEntry('mongo-wire/cli.js'), ['--port', String(port)]);
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

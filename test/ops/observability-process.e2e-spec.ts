import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { parse } from 'yaml';
import { findFreePort } from '../../src/common/net/free-port';
import { headersFor, ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { distEntry, runNode, RunningProcess } from '../support/processes';
import { waitFor } from '../support/wait';
import { TestEnvironment } from '../support/test-environment';

// The built entry points, started as the README says, with their real stdout.

type LogLine = Record<string, unknown> & { level: string; msg: string };

function logLines(output: string): LogLine[] {
  return output
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as LogLine);
}

function processEnv(env: TestEnvironment, extra: Record<string, string>): Record<string, string> {
  return { MONGODB_URI: env.mongoUri, REDIS_URL: env.redis.url, QUEUE_PREFIX: `test-${env.dbName}`, ...extra };
}

describe('logs of the API (node dist/main.api.js)', () => {
  let env: TestEnvironment;
  let api: RunningProcess;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    const port = await findFreePort();
    api = runNode(
      distEntry('main.api.js'),
      [],
      processEnv(env, { API_PORT: String(port), API_HOST: '127.0.0.1', LOG_LEVEL: 'info' }),
    );
    await api.waitForOutput(/Rerun API listening at/);
    baseUrl = `https://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    api.kill('SIGTERM');
    await api.exited;
    await env.stop();
  });

  it('are one JSON object per line, with level name, ISO time, role and message', () => {
    const lines = logLines(api.output());
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      expect(line).toEqual(
        expect.objectContaining({
          level: expect.any(String),
          msg: expect.any(String),
          role: 'api',
          pid: expect.any(Number),
        }),
      );
      expect(new Date(line.time as string).toISOString()).toBe(line.time);
    }
    expect(lines.find((line) => /Rerun API listening at/.test(line.msg))).toMatchObject({
      level: 'info',
      context: 'Bootstrap',
    });
  });

  it("give every line of a request its id, keeping the caller's x-request-id and echoing it", async () => {
    const ok = await request(baseUrl)
      .get('/tasks')
      .set(await headersFor(env.db, ROOT_EMAIL, ROOT_PASSWORD))
      .set('x-request-id', 'trace-ok-1')
      .expect(200);
    expect(ok.headers['x-request-id']).toBe('trace-ok-1');

    const denied = await request(baseUrl)
      .get('/tasks')
      .set('authorization', `Basic ${Buffer.from(`${ROOT_EMAIL}:not-the-password`).toString('base64')}`)
      .set('x-request-id', 'trace-denied-1')
      .expect(401);
    expect(denied.headers['x-request-id']).toBe('trace-denied-1');

    const generated = await request(baseUrl).get('/health').expect(200);
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    await api.waitForOutput(/GET \/tasks 401/);
    const lines = logLines(api.output());
    expect(lines.find((line) => line.msg.startsWith('GET /tasks 200'))).toMatchObject({
      reqId: 'trace-ok-1',
      level: 'info',
      req: { method: 'GET', url: '/tasks' },
      res: { statusCode: 200 },
    });
    // The guard's own line, written while handling the request, carries the same id.
    const guardLine = lines.find((line) => line.msg.startsWith('Authentication failed'))!;
    expect(guardLine).toMatchObject({ reqId: 'trace-denied-1', level: 'warn', context: 'Authentication' });
    expect(lines.find((line) => line.msg.startsWith('GET /tasks 401'))).toMatchObject({
      reqId: 'trace-denied-1',
      level: 'warn',
    });
    // Health checks are logged at debug only.
    expect(lines.find((line) => line.reqId === generated.headers['x-request-id'])).toBeUndefined();
  });

  it('never contain credentials: token headers, Basic credentials or passwords', async () => {
    const secretPassword = 'Sup3r-Secret-Pa55word';
    const basicValue = Buffer.from(`${ROOT_EMAIL}:${secretPassword}`).toString('base64');
    const token = await headersFor(env.db, ROOT_EMAIL, ROOT_PASSWORD);
    await request(baseUrl)
      .get('/tasks')
      .set(token)
      .set('cookie', 'session=cookie-secret-value')
      .set('x-request-id', 'trace-secrets-1')
      .expect(200);
    await request(baseUrl)
      .get('/tasks')
      .set('authorization', `Basic ${basicValue}`)
      .set('x-request-id', 'trace-secrets-2')
      .expect(401);
    await request(baseUrl)
      .get('/queues')
      .set('authorization', `Basic ${basicValue}`)
      .set('x-request-id', 'trace-secrets-3')
      .expect(401);
    await request(baseUrl).get(`/authenticate/${ROOT_EMAIL}`).expect(200);
    await api.waitForOutput(/trace-secrets-3/);

    const output = api.output();
    for (const secret of [
      secretPassword,
      basicValue,
      token['auth-token'],
      token['auth-salt'],
      ROOT_PASSWORD,
      'cookie-secret-value',
    ]) {
      expect(output).not.toContain(secret);
    }
    const line = logLines(output).find((entry) => entry.reqId === 'trace-secrets-1' && entry.req)!;
    expect(line.req).toMatchObject({ headers: { 'auth-username': ROOT_EMAIL } });
  });

  it('follow LOG_LEVEL: with warn, no info lines', async () => {
    const port = await findFreePort();
    const quiet = runNode(
      distEntry('main.api.js'),
      [],
      processEnv(env, { API_PORT: String(port), API_HOST: '127.0.0.1', LOG_LEVEL: 'warn' }),
    );
    try {
      await waitFor(
        'quiet API',
        async () => (await request(`https://127.0.0.1:${port}`).get('/health')).status === 200,
        20000,
      );
      await request(`https://127.0.0.1:${port}`).get('/tasks').expect(401);
      await quiet.waitForOutput(/GET \/tasks 401/);
      const levels = new Set(logLines(quiet.output()).map((line) => line.level));
      expect(levels.has('info')).toBe(false);
      expect(levels.has('warn')).toBe(true);
    } finally {
      quiet.kill('SIGTERM');
      await quiet.exited;
    }
  });
});

describe('a worker started with WORKER_HTTP_PORT (node dist/main.worker.js)', () => {
  let env: TestEnvironment;
  let worker: RunningProcess;
  let url: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    const port = await findFreePort();
    worker = runNode(
      distEntry('main.worker.js'),
      [],
      processEnv(env, { WORKER_HTTP_PORT: String(port), WORKER_HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'info' }),
    );
    await worker.waitForOutput(/Rerun worker started/);
    url = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    worker.kill('SIGKILL');
    await worker.exited;
    await env.stop();
  });

  it('serves its metrics and health on that port', async () => {
    const metrics = await request(url).get('/metrics').expect(200);
    expect(metrics.text).toContain('openhim_rerun_reruns_in_flight 0');
    expect(metrics.text).toContain('openhim_rerun_tasks{status="Queued"} 0');
    expect((await request(url).get('/health').expect(200)).body).toEqual({ status: 'ok', mongo: 'up', redis: 'up' });
    expect((await request(url).get('/health/live').expect(200)).body).toMatchObject({ status: 'ok' });
  });

  it('logs JSON lines tagged with the worker role, and says where it listens', () => {
    const lines = logLines(worker.output());
    expect(lines.every((line) => line.role === 'worker')).toBe(true);
    expect(lines.find((line) => line.msg.startsWith('Worker metrics and health at http://127.0.0.1:'))).toBeDefined();
  });

  it('stops cleanly on SIGTERM, closing the port', async () => {
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    await expect(request(url).get('/health/live')).rejects.toThrow();
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8'));

  it('gives each worker its metrics and health port on the compose network only, with a healthcheck', () => {
    const worker = compose.services.worker;
    expect(worker.environment.WORKER_HTTP_PORT).toBe('9464');
    expect(worker.expose).toEqual(['9464']);
    expect(worker.ports).toBeUndefined();
    expect(worker.healthcheck.test.join(' ')).toContain('http://127.0.0.1:9464/health');
  });
});

import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { RerunMetrics } from '../../src/rerun/metrics/rerun-metrics';
import { headersFor, insertUser, ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { TestEnvironment } from '../support/test-environment';

const basic = (email: string, password: string) => `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`;
const ROOT_BASIC = basic(ROOT_EMAIL, ROOT_PASSWORD);
const VIEWER = { email: 'viewer@example.org', password: 'viewer-password', groups: ['viewers'] };

/** One sample of the Prometheus text, e.g. sample(text, 'openhim_rerun_tasks', {status: 'Queued'}). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (
      Object.entries(labels).every(([key, value]) => found[key] === value) &&
      Object.keys(found).length === Object.keys(labels).length
    ) {
      return Number(match[3]);
    }
  }
  return undefined;
}

describe('operations on the API', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ app, baseUrl } = await env.startApi({ METRICS_CACHE_MS: '0' }));
    await insertUser(env.db, VIEWER);
  });
  afterAll(() => env.stop());

  const scrape = async () => {
    const response = await request(baseUrl).get('/metrics').expect(200);
    return response.text;
  };

  describe('GET /metrics', () => {
    it('serves Prometheus text without credentials, with process metrics', async () => {
      const response = await request(baseUrl).get('/metrics').expect(200);
      expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(response.text).toContain('# TYPE openhim_rerun_tasks gauge');
      expect(response.text).toContain('# TYPE openhim_rerun_reruns_total counter');
      expect(response.text).toContain('# TYPE openhim_rerun_rerun_duration_seconds histogram');
      expect(response.text).toContain('# TYPE openhim_rerun_http_request_duration_seconds histogram');
      expect(sample(response.text, 'openhim_rerun_reruns_in_flight')).toBe(0);
      expect(sample(response.text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(sample(response.text, 'openhim_rerun_metrics_source_up', { source: 'mongodb' })).toBe(1);
      expect(sample(response.text, 'openhim_rerun_metrics_source_up', { source: 'redis' })).toBe(1);
    });

    it('counts tasks by status from the database: a task created through the API shows up as Queued', async () => {
      const before = await scrape();
      expect(sample(before, 'openhim_rerun_tasks', { status: 'Queued' })).toBe(0);
      expect(sample(before, 'openhim_rerun_tasks', { status: 'Completed' })).toBe(0);

      const created = await request(baseUrl)
        .post('/tasks')
        .set(await headersFor(env.db, ROOT_EMAIL, ROOT_PASSWORD))
        .send({ tids: [new ObjectId().toHexString(), new ObjectId().toHexString()], batchSize: 2 });
      expect(created.status).toBe(201);
      await env.db.collection('tasks').insertOne({ status: 'Completed', transactions: [], created: new Date() });

      const after = await scrape();
      expect(sample(after, 'openhim_rerun_tasks', { status: 'Queued' })).toBe(1);
      expect(sample(after, 'openhim_rerun_tasks', { status: 'Completed' })).toBe(1);
      expect(sample(after, 'openhim_rerun_tasks', { status: 'Paused' })).toBe(0);
      // No worker runs here: the task's two lane jobs wait in the queue.
      expect(sample(after, 'openhim_rerun_queue_jobs', { state: 'waiting' })).toBe(2);
      expect(sample(after, 'openhim_rerun_queue_jobs', { state: 'active' })).toBe(0);
      expect(sample(after, 'openhim_rerun_queue_jobs', { state: 'failed' })).toBe(0);
    });

    it('times HTTP requests by route pattern and status, including refused and unknown ones', async () => {
      const id = new ObjectId().toHexString();
      await request(baseUrl).get(`/tasks/${id}`).set('authorization', ROOT_BASIC).expect(404);
      await request(baseUrl).get(`/tasks/${new ObjectId().toHexString()}`).set('authorization', ROOT_BASIC).expect(404);
      await request(baseUrl).get('/tasks').expect(401);
      await request(baseUrl).get(`/no/such/path/${id}`).expect(404);

      const text = await scrape();
      const count = (route: string, status: string, method = 'GET') =>
        sample(text, 'openhim_rerun_http_request_duration_seconds_count', { method, route, status_code: status });
      expect(count('/tasks/:id', '404')).toBe(2);
      expect(count('/tasks', '401')).toBe(1);
      expect(count('/tasks', '201', 'POST')).toBe(1);
      expect(count('unmatched', '404')).toBe(1);
      expect(text).not.toContain(id);
    });

    it('shows reruns by outcome, their latency and reruns in flight as the engine records them', async () => {
      const metrics = app.get(RerunMetrics);
      const rerun = metrics.start();
      expect(sample(await scrape(), 'openhim_rerun_reruns_in_flight')).toBe(1);
      rerun.end('successful');
      metrics.recordRerun('failed', 0.3);

      const text = await scrape();
      expect(sample(text, 'openhim_rerun_reruns_in_flight')).toBe(0);
      expect(sample(text, 'openhim_rerun_reruns_total', { outcome: 'successful' })).toBe(1);
      expect(sample(text, 'openhim_rerun_reruns_total', { outcome: 'failed' })).toBe(1);
      expect(sample(text, 'openhim_rerun_rerun_duration_seconds_bucket', { outcome: 'failed', le: '0.25' })).toBe(0);
      expect(sample(text, 'openhim_rerun_rerun_duration_seconds_bucket', { outcome: 'failed', le: '0.5' })).toBe(1);
    });
  });

  describe('the queue dashboard at /queues', () => {
    it("asks for Basic credentials without any (401, WWW-Authenticate), in the API's text/plain", async () => {
      const response = await request(baseUrl).get('/queues').expect(401);
      expect(response.headers['www-authenticate']).toBe('Basic realm="queues", charset="UTF-8"');
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toBe('Unauthorized');
      await request(baseUrl).get('/queues/api/queues').expect(401);
      await request(baseUrl).get('/queues').set('authorization', basic(ROOT_EMAIL, 'wrong-password')).expect(401);
    });

    it('refuses a user who is not an admin (403)', async () => {
      const response = await request(baseUrl)
        .get('/queues')
        .set('authorization', basic(VIEWER.email, VIEWER.password))
        .expect(403);
      expect(response.text).toBe('User viewer@example.org is not an admin, access to queues denied.');
      await request(baseUrl)
        .get('/queues/api/queues')
        .set(await headersFor(env.db, VIEWER.email, VIEWER.password))
        .expect(403);
    });

    it('serves the board and its API to an admin with Basic or token credentials', async () => {
      const page = await request(baseUrl).get('/queues').set('authorization', ROOT_BASIC).expect(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.text).toContain('<base href="/queues/" />');
      expect(page.headers['x-frame-options']).toBe('DENY');

      const api = await request(baseUrl)
        .get('/queues/api/queues')
        .set(await headersFor(env.db, ROOT_EMAIL, ROOT_PASSWORD))
        .expect(200);
      const queue = (api.body.queues as Array<{ name: string; counts: Record<string, number> }>).find(
        (q) => q.name === 'rerun',
      );
      expect(queue).toBeDefined();
      expect(queue!.counts.waiting).toBe(2);
    });

    it('refuses requests another site makes a logged-in browser send', async () => {
      const response = await request(baseUrl)
        .put('/queues/api/queues/rerun/retry/failed')
        .set('authorization', ROOT_BASIC)
        .set('origin', 'https://evil.example')
        .expect(403);
      expect(response.text).toBe('Cross-site requests to the queue dashboard are not allowed');
    });
  });
});

describe('GET /metrics with METRICS_PUBLIC=false', () => {
  let env: TestEnvironment;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ baseUrl } = await env.startApi({ METRICS_PUBLIC: 'false', QUEUE_DASHBOARD: 'false' }));
    await insertUser(env.db, VIEWER);
  });
  afterAll(() => env.stop());

  it('needs admin credentials: 401 without, 403 for a non-admin, 200 with Basic or token', async () => {
    const anonymous = await request(baseUrl).get('/metrics').expect(401);
    expect(anonymous.text).toBe('Unauthorized');
    expect(anonymous.headers['www-authenticate']).toContain('Basic');
    await request(baseUrl).get('/metrics').set('authorization', basic(VIEWER.email, VIEWER.password)).expect(403);
    const withBasic = await request(baseUrl).get('/metrics').set('authorization', ROOT_BASIC).expect(200);
    expect(withBasic.text).toContain('openhim_rerun_tasks');
    await request(baseUrl)
      .get('/metrics')
      .set(await headersFor(env.db, ROOT_EMAIL, ROOT_PASSWORD))
      .expect(200);
  });

  it('has no dashboard with QUEUE_DASHBOARD=false', async () => {
    await request(baseUrl).get('/queues').set('authorization', ROOT_BASIC).expect(404);
  });
});

describe("the worker's HTTP port", () => {
  let env: TestEnvironment;
  beforeAll(async () => {
    env = await TestEnvironment.start();
  });
  afterAll(() => env.stop());

  it('is off by default', async () => {
    const worker = await env.startWorker();
    expect('getHttpServer' in worker).toBe(false);
  });

  it('serves /metrics, /health and /health/live when WORKER_HTTP_PORT is set, and nothing else', async () => {
    const worker = (await env.startWorker({
      WORKER_HTTP_PORT: '0',
      WORKER_HTTP_HOST: '127.0.0.1',
    })) as INestApplication;
    const { port } = worker.getHttpServer().address() as { port: number };
    const url = `http://127.0.0.1:${port}`;

    const metrics = await request(url).get('/metrics').expect(200);
    expect(sample(metrics.text, 'openhim_rerun_reruns_in_flight')).toBe(0);
    expect(metrics.text).toContain('openhim_rerun_queue_jobs{state="waiting"}');
    expect((await request(url).get('/health').expect(200)).body).toEqual({ status: 'ok', mongo: 'up', redis: 'up' });
    expect((await request(url).get('/health/live').expect(200)).body.status).toBe('ok');
    await request(url).get('/tasks').expect(404);
    await request(url).get('/queues').expect(404);
    await request(url).get('/authenticate/root@openhim.org').expect(404);
  });
});

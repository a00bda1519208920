import request from 'supertest';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

describe('GET /health', () => {
  let env: TestEnvironment;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ baseUrl } = await env.startApi({ METRICS_CACHE_MS: '0' }));
  });
  afterAll(() => env.stop());

  it('answers 200 without authentication when MongoDB and Redis answer', async () => {
    const response = await request(baseUrl).get('/health').expect(200);
    expect(response.body).toEqual({ status: 'ok', mongo: 'up', redis: 'up' });
  });

  it('answers the same at /health/ready, and liveness at /health/live', async () => {
    expect((await request(baseUrl).get('/health/ready').expect(200)).body).toEqual({
      status: 'ok',
      mongo: 'up',
      redis: 'up',
    });
    const live = await request(baseUrl).get('/health/live').expect(200);
    expect(live.body).toEqual({ status: 'ok', uptimeSeconds: expect.any(Number) });
  });

  it('answers 503 naming Redis while it is down, and 200 again once it is back', async () => {
    await env.redis.stop();
    try {
      const response = await request(baseUrl).get('/health').expect(503);
      expect(response.body.status).toBe('down');
      expect(response.body.redis).toEqual(expect.any(String));
      expect(response.body.mongo).toBeUndefined();
      expect((await request(baseUrl).get('/health/ready').expect(503)).body.redis).toEqual(expect.any(String));
      // The process is fine: liveness must not get every replica restarted over a Redis outage.
      await request(baseUrl).get('/health/live').expect(200);
      // A scrape still answers, without the queue counts, and says Redis did not answer.
      const metrics = await request(baseUrl).get('/metrics').expect(200);
      expect(metrics.text).not.toContain('openhim_rerun_queue_jobs{');
      expect(metrics.text).toContain('openhim_rerun_tasks{status="Queued"} 0');
      expect(metrics.text).toContain('openhim_rerun_metrics_source_up{source="redis"} 0');
      expect(metrics.text).toContain('openhim_rerun_metrics_source_up{source="mongodb"} 1');
    } finally {
      await env.redis.start();
    }
    await waitForStatus(baseUrl, 200);
  });

  it('answers 503 naming MongoDB while it is down', async () => {
    await env.mongo.pause();
    try {
      const response = await request(baseUrl).get('/health').expect(503);
      expect(response.body.mongo).toEqual(expect.any(String));
      await request(baseUrl).get('/health/live').expect(200);
    } finally {
      await env.mongo.resume();
    }
    await waitForStatus(baseUrl, 200);
  });
});

function waitForStatus(baseUrl: string, status: number) {
  return waitFor(`/health to answer ${status}`, async () => (await request(baseUrl).get('/health')).status === status, {
    timeoutMs: 15000,
    intervalMs: 200,
    failFast: true,
  });
}

import type { INestApplication } from '@nestjs/common';
import { getQueueToken } from '@nestjs/bull';
import Bull, { Queue } from 'bull';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ObjectId } from 'mongodb';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import request from 'supertest';
import { RERUN_QUEUE } from '../../src/rerun/rerun.constants';
import { headersFor, insertUser, ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

// A real headless Chromium against the running service: what an operator sees in Swagger UI and
// in the queue dashboard. Screenshots go to build/screenshots/.
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(__dirname, '..', '..', 'build', 'screenshots');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `SKIPPED test/ops/browser.e2e-spec.ts: ${CHROMIUM} is missing (Debian: apt-get install -y chromium; .ci/run installs it).`,
  );
}
const describeInBrowser = haveChromium ? describe : describe.skip;

describeInBrowser('in a real browser (headless Chromium)', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    env = await TestEnvironment.start();
    ({ app, baseUrl } = await env.startApi());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await env?.stop();
  });

  /** A browser context that reaches only the service (the dashboard links a web font; no internet in tests). */
  async function openContext(credentials?: { username: string; password: string }): Promise<BrowserContext> {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      httpCredentials: credentials,
      viewport: { width: 1280, height: 900 },
    });
    await context.route(
      (url) => !url.href.startsWith(baseUrl),
      (route) => route.abort(),
    );
    return context;
  }

  async function withPage<T>(
    credentials: { username: string; password: string } | undefined,
    use: (page: Page) => Promise<T>,
  ): Promise<T> {
    const context = await openContext(credentials);
    try {
      return await use(await context.newPage());
    } finally {
      await context.close();
    }
  }

  it('Swagger UI at /api-docs renders the tasks API and /authenticate', async () => {
    await withPage(undefined, async (page) => {
      await page.goto(`${baseUrl}/api-docs`);
      await page.locator('.opblock').first().waitFor({ timeout: 20000 });
      const operations = await page.$$eval('.opblock-summary', (blocks) =>
        blocks.map((block) => {
          const method = block.querySelector('.opblock-summary-method')?.textContent?.trim();
          const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path');
          return `${method} ${path}`;
        }),
      );
      expect(operations).toEqual(
        expect.arrayContaining([
          'POST /tasks',
          'GET /tasks',
          'GET /tasks/{id}',
          'PUT /tasks/{id}',
          'DELETE /tasks/{id}',
          'GET /authenticate/{email}',
          'GET /health',
          'GET /metrics',
        ]),
      );
      await expect(page.locator('.info .title').textContent()).resolves.toContain('OpenHIM transaction rerun service');
      await page.screenshot({ path: join(SCREENSHOTS, 'swagger-ui.png'), fullPage: true });
    });
  });

  it('the queue dashboard challenges a browser without admin credentials', async () => {
    // No credentials: the 401 asks for Basic ones, which headless Chromium cannot supply.
    await withPage(undefined, async (page) => {
      await expect(page.goto(`${baseUrl}/queues`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    });
    // Wrong ones: tried, refused again, and the refusal is shown.
    await withPage({ username: ROOT_EMAIL, password: 'not-the-password' }, async (page) => {
      const response = await page.goto(`${baseUrl}/queues`);
      expect(response?.status()).toBe(401);
      await expect(page.locator('body').textContent()).resolves.toBe('Unauthorized');
    });
    // A valid user outside the admin group sees why.
    await insertUser(env.db, { email: 'viewer@example.org', password: 'viewer-password', groups: ['viewers'] });
    await withPage({ username: 'viewer@example.org', password: 'viewer-password' }, async (page) => {
      const response = await page.goto(`${baseUrl}/queues`);
      expect(response?.status()).toBe(403);
      await expect(page.locator('body').textContent()).resolves.toBe(
        'User viewer@example.org is not an admin, access to queues denied.',
      );
    });
  });

  it('lets an admin retry a failed job from the dashboard', async () => {
    const queue = app.get<Queue>(getQueueToken(RERUN_QUEUE));
    const jobId = `lane:${new ObjectId().toHexString()}:0`;
    // A consumer that fails the job (runs while the queue holds nothing else), as a broken worker would.
    const consumer = new Bull(RERUN_QUEUE, env.redis.url, { prefix: `test-${env.dbName}` });
    try {
      void consumer.process('lane', async () => {
        throw new Error('OpenHIM core unreachable');
      });
      await queue.add('lane', { taskId: 'failing' }, { jobId, removeOnFail: false });
      await waitUntil('the job to fail', async () => (await queue.getJob(jobId))?.failedReason !== undefined);
    } finally {
      await consumer.close();
    }

    await withPage({ username: ROOT_EMAIL, password: ROOT_PASSWORD }, async (page) => {
      await page.goto(`${baseUrl}/queues/queue/${RERUN_QUEUE}?status=failed`);
      await page.locator('main').getByText(jobId, { exact: true }).waitFor({ timeout: 20000 });
      await page.locator('main').getByText('OpenHIM core unreachable').first().waitFor({ timeout: 10000 });
      await page.screenshot({ path: join(SCREENSHOTS, 'queue-failed.png'), fullPage: true });

      await page.getByRole('button', { name: 'Retry all' }).click();
      const confirm = page.getByRole('button', { name: /^(Confirm|Retry|Yes)/ }).last();
      if (await confirm.isVisible({ timeout: 2000 }).catch(() => false)) await confirm.click();
      await waitUntil(
        'the job to wait again',
        async () => (await (await queue.getJob(jobId))!.getState()) === 'waiting',
      );
    });
    await (await queue.getJob(jobId))!.remove();
  });

  it('the queue dashboard at /queues shows the rerun queue to an admin (Basic) with its waiting jobs', async () => {
    // A task created through the API: its two lane jobs wait (no worker runs here).
    const created = await request(baseUrl)
      .post('/tasks')
      .set(await headersFor(env.db, ROOT_EMAIL, ROOT_PASSWORD))
      .send({ tids: [new ObjectId().toHexString(), new ObjectId().toHexString()], batchSize: 2 });
    expect(created.status).toBe(201);

    await withPage({ username: ROOT_EMAIL, password: ROOT_PASSWORD }, async (page) => {
      const response = await page.goto(`${baseUrl}/queues`);
      expect(response?.status()).toBe(200);
      const queueCard = page.locator('main').getByText(RERUN_QUEUE, { exact: true }).first();
      await queueCard.waitFor({ timeout: 20000 });
      await expect(page.locator('aside').getByText(RERUN_QUEUE, { exact: true }).count()).resolves.toBe(1);
      await page.getByText('2 Jobs').waitFor({ timeout: 10000 });
      await page.screenshot({ path: join(SCREENSHOTS, 'queues.png'), fullPage: true });

      await page.goto(`${baseUrl}/queues/queue/${RERUN_QUEUE}?status=waiting`);
      await page
        .locator('main')
        .getByText(/^lane:/)
        .first()
        .waitFor({ timeout: 20000 });
      const jobIds = await page
        .locator('main')
        .getByText(/^lane:/)
        .allTextContents();
      expect(jobIds.sort()).toEqual(
        [`lane:${created.text.split(' ').pop()}:0`, `lane:${created.text.split(' ').pop()}:1`].sort(),
      );
      await page.screenshot({ path: join(SCREENSHOTS, 'queue-waiting.png'), fullPage: true });
    });
  });
});

/** Polls `check` until it is true (15 s at most); an error it throws fails the test at once. */
function waitUntil(what: string, check: () => Promise<boolean>): Promise<boolean> {
  return waitFor(what, check, { timeoutMs: 15000, failFast: true });
}

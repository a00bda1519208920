import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { findFreePort } from '../../src/common/net/free-port';
import { signWebhook } from '../../src/notifications/webhook-signature';
import { ApiSuite, startApiSuite } from '../support/api-suite';
import { insertTransactions } from '../support/database-fixtures';
import { waitFor } from '../support/wait';
import { readmeBlock } from '../support/readme-blocks';

const SECRET = 'readme-receiver-secret-0123';

/**
 * README "Notifications": the receiver example, run as given, gets the service's signed deliveries
 * (printing each event once) and refuses a request whose signature is wrong.
 */
describe('README webhook receiver example', () => {
  let suite: ApiSuite;
  let receiver: ChildProcess;
  let dir: string;
  let port: number;
  let output = '';

  beforeAll(async () => {
    const code = await readmeBlock('webhook-receiver', 'js');
    dir = await mkdtemp(join(tmpdir(), 'receiver-'));
    await writeFile(join(dir, 'receiver.js'), code);
    port = await findFreePort();
    receiver = spawn(process.execPath, [join(dir, 'receiver.js')], {
      env: { PATH: process.env.PATH ?? '', WEBHOOK_SECRET: SECRET, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    receiver.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    receiver.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor('the receiver to listen', async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' })).status === 401;
      } catch {
        return false;
      }
    });
    suite = await startApiSuite(
      { WEBHOOK_URLS: `http://127.0.0.1:${port}/`, WEBHOOK_SECRET: SECRET, NOTIFY_RETRY_DELAY_MS: '100' },
      { withWorker: true },
    );
  });
  afterAll(async () => {
    receiver?.kill();
    await suite?.env.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints each event the service delivers, and refuses a forged one', async () => {
    const tids = await insertTransactions(suite.env.db, 1);
    const answer = await request(suite.baseUrl)
      .post('/tasks')
      .set(suite.as('admin'))
      .send({ tids, paused: true })
      .expect(201);
    const taskId = /([0-9a-f]{24})$/.exec(answer.text)![1];
    await waitFor('the receiver to print task.created', () => output.includes(`task.created task ${taskId}`));
    const stored = await waitFor('the delivery to be recorded delivered', async () => {
      const found = await suite.env.db.collection('notifications').findOne({ 'event.task.id': taskId });
      return found?.deliveries?.[0]?.state === 'delivered' ? found : undefined;
    });
    expect(stored.event.type).toBe('task.created');

    const body = JSON.stringify({ id: 'forged', type: 'task.completed', at: new Date().toISOString() });
    const forged = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'x-webhook-signature': signWebhook(body, 'not-the-secret-at-all') },
      body,
    });
    expect(forged.status).toBe(401);
    const signed = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'x-webhook-signature': signWebhook(body, SECRET) },
      body,
    });
    expect(signed.status).toBe(204);
    expect(output).not.toContain('Error');
  });
});

import request from 'supertest';
import { verifyWebhookSignature } from '../../src/notifications/webhook-signature';
import { WebhookReceiver } from '../notifications/webhook-receiver';
import { ApiSuite, startApiSuite } from '../support/api-suite';
import { insertChannel, insertTransactions } from '../support/database-fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { waitFor } from '../support/wait';

const SECRET = 'task-notifications-secret-0123';

interface Event {
  id: string;
  type: string;
  task?: { id: string; status?: string; user?: string; totalTransactions?: number; failed?: number };
  channel?: { id: string; failures?: number };
  reason?: string;
  user?: string;
  tasks?: string[];
}

/**
 * What the tasks API and the engine tell a webhook receiver over a task's life (issue 25): created,
 * started, completed with counts (or failed, all reruns failed), cancelled, a breaker opened and
 * closed with the tasks it paused and resumed, an emergency stop and its release; each signed.
 */
describe('Notifications emitted by the API and the engine', () => {
  let suite: ApiSuite;
  let stub: OpenhimCoreStub;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    suite = await startApiSuite({ WEBHOOK_URLS: receiver.url('/hook'), WEBHOOK_SECRET: SECRET }, { withWorker: false });
    stub = await OpenhimCoreStub.start(suite.env.db);
    await suite.env.startWorker({
      WEBHOOK_URLS: receiver.url('/hook'),
      WEBHOOK_SECRET: SECRET,
      RERUN_HOST: '127.0.0.1',
      RERUN_HTTP_PORT: String(stub.port),
      RERUN_RETRY_WINDOW_MS: '0',
      WORKER_FLUSH_MS: '50',
      SWEEP_INTERVAL_MS: '300',
      AUTO_PAUSE_AFTER_FAILURES: '0',
      BREAKER_FAILURES: '3',
      BREAKER_BACKOFF_MS: '300',
    });
  });
  afterAll(async () => {
    await suite?.env.stop();
    await stub?.close();
    await receiver?.close();
  });

  /** The events received so far, signatures checked. */
  const events = (): Event[] =>
    receiver.received.map((hook) => {
      expect(verifyWebhookSignature(String(hook.headers['x-webhook-signature']), hook.body, SECRET, 300)).toBe(true);
      return JSON.parse(hook.body) as Event;
    });
  const ofTask = (taskId: string) => events().filter((event) => event.task?.id === taskId);
  const create = async (body: object) => {
    const answer = await request(suite.baseUrl).post('/tasks').set(suite.as('admin')).send(body).expect(201);
    return /([0-9a-f]{24})$/.exec(answer.text)![1];
  };

  it('tells of a task created, started and completed (with its failed count), each once', async () => {
    stub.behave((req) => (req.parentId?.endsWith('0') ? { status: 500 } : {}));
    const tids = await insertTransactions(suite.env.db, 4);
    const taskId = await create({ tids, batchSize: 2 });
    const types = await waitFor('created, started and completed', () => {
      const seen = ofTask(taskId).map((event) => event.type);
      return seen.includes('task.completed') ? seen : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(
      ofTask(taskId)
        .map((event) => event.type)
        .sort(),
    ).toEqual(['task.completed', 'task.created', 'task.started']);
    expect(types).toContain('task.created');
    const completed = ofTask(taskId).find((event) => event.type === 'task.completed')!;
    const failed = tids.filter((tid) => tid.endsWith('0')).length;
    expect(completed.task).toMatchObject({ status: 'Completed', totalTransactions: 4, failed });
    expect(ofTask(taskId).find((event) => event.type === 'task.created')).toMatchObject({
      task: { totalTransactions: 4, status: 'Queued' },
      user: expect.stringContaining('@'),
    });
  });

  it('tells of a task whose reruns all failed as task.failed, and of a cancelled task', async () => {
    stub.behave({ status: 500 });
    const failing = await create({ tids: await insertTransactions(suite.env.db, 2), batchSize: 1 });
    await waitFor('task.failed', () => ofTask(failing).find((event) => event.type === 'task.failed'));
    expect(ofTask(failing).some((event) => event.type === 'task.completed')).toBe(false);

    const paused = await create({ tids: await insertTransactions(suite.env.db, 2), paused: true });
    await request(suite.baseUrl)
      .put(`/tasks/${paused}`)
      .set(suite.as('admin'))
      .send({ status: 'Cancelled' })
      .expect(200);
    const cancelled = await waitFor('task.cancelled', () => ofTask(paused).find((e) => e.type === 'task.cancelled'));
    expect(cancelled.task?.status).toBe('Cancelled');
  });

  it('tells of a breaker opened and closed, the tasks it paused and resumed, and an emergency stop', async () => {
    const channelID = await insertChannel(suite.env.db, {});
    let down = true;
    stub.behave(() => (down ? { status: 500, latencyMs: 10 } : {}));
    const taskId = await create({
      tids: await insertTransactions(suite.env.db, 20, () => ({ channelID })),
      batchSize: 1,
    });
    const opened = await waitFor('breaker.opened', () =>
      events().find((e) => e.type === 'breaker.opened' && e.channel?.id === channelID.toHexString()),
    );
    expect(opened.channel?.failures).toBeGreaterThanOrEqual(3);
    await waitFor('task.auto-paused', () => ofTask(taskId).find((e) => e.type === 'task.auto-paused'));
    down = false;
    await waitFor('breaker.closed', () =>
      events().find((e) => e.type === 'breaker.closed' && e.channel?.id === channelID.toHexString()),
    );
    await waitFor('task.auto-resumed', () => ofTask(taskId).find((e) => e.type === 'task.auto-resumed'));

    // A running task for the stop to pause.
    await create({ tids: await insertTransactions(suite.env.db, 1), paused: false, batchSize: 1 });
    await request(suite.baseUrl)
      .post('/tasks/pause-all')
      .set(suite.as('admin'))
      .send({ reason: 'maintenance' })
      .expect(200);
    const stop = await waitFor('tasks.paused-all', () => events().find((e) => e.type === 'tasks.paused-all'));
    expect(stop).toMatchObject({ reason: 'maintenance', user: expect.stringContaining('@'), tasks: expect.any(Array) });
    await request(suite.baseUrl).post('/tasks/resume-all').set(suite.as('admin')).expect(200);
    await waitFor('tasks.resumed-all', () => events().find((e) => e.type === 'tasks.resumed-all'));
  });
});

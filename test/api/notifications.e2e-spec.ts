import { ObjectId } from 'mongodb';
import request from 'supertest';
import type { StoredNotification } from '../../src/database/schemas';
import { Notifier } from '../../src/notifications/notifier.service';
import { WebhookReceiver } from '../notifications/webhook-receiver';
import { ApiSuite, startApiSuite } from '../support/api-suite';
import { insertTask } from '../support/database-fixtures';
import { USERS } from '../support/fixtures';
import { waitFor } from '../support/wait';

type OpenApi = {
  paths: Record<string, Record<string, { responses: Record<string, unknown>; parameters?: Array<{ name: string }> }>>;
};

/** GET /notifications?taskId= (no worker here: every delivery stays pending). */
describe('GET /notifications', () => {
  let suite: ApiSuite;
  let receiver: WebhookReceiver;
  let taskId: string;
  let ids: string[];

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    suite = await startApiSuite({
      WEBHOOK_URLS: `${receiver.url('/hook')}?token=very-secret,http://user:password@127.0.0.1:9/other`,
      WEBHOOK_SECRET: 'api-notifications-secret-0123',
    });
    // A task created by a user who is not an admin: they may read its notifications too.
    taskId = await insertTask(suite.env.db, [], { status: 'Paused' });
    await suite.env.db
      .collection('tasks')
      .updateOne({ _id: new ObjectId(taskId) }, { $set: { user: USERS.rerunner.email } });
    const notifier = suite.app.get(Notifier);
    notifier.emit({
      type: 'task.created',
      task: { id: taskId, user: USERS.rerunner.email },
      user: USERS.rerunner.email,
    });
    await waitFor('the first event recorded', () =>
      suite.env.db.collection('notifications').countDocuments({ taskId }),
    );
    notifier.emit({ type: 'task.auto-paused', task: { id: taskId, status: 'Paused' }, reason: '20 failed in a row' });
    // Another task's event is not listed.
    notifier.emit({ type: 'task.created', task: { id: new ObjectId().toHexString() } });
    const recorded = await waitFor('both events recorded', async () => {
      const found = await suite.env.db
        .collection<StoredNotification>('notifications')
        .find({ taskId })
        .sort({ createdAt: -1, _id: -1 })
        .toArray();
      return found.length === 2 ? found : undefined;
    });
    ids = recorded.map((notification) => notification._id);
  });
  afterAll(async () => {
    await suite?.env.stop();
    await receiver?.close();
  });

  const list = (query: string) => request(suite.baseUrl).get(`/notifications${query}`);

  it("lists the task's events newest first, with their webhook bodies and deliveries (URLs without secrets)", async () => {
    const response = await list(`?taskId=${taskId}`).set(suite.as('admin')).expect(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toHaveLength(2);
    expect(response.body.map((event: { id: string }) => event.id)).toEqual(ids);
    const [paused, created] = response.body;
    expect(paused).toMatchObject({
      type: 'task.auto-paused',
      event: {
        id: ids[0],
        type: 'task.auto-paused',
        task: { id: taskId, status: 'Paused' },
        reason: '20 failed in a row',
      },
    });
    expect(created).toMatchObject({ type: 'task.created', event: { id: ids[1], user: USERS.rerunner.email } });
    expect(created.at).toBe(created.event.at);
    expect(created.deliveries).toEqual([
      { kind: 'webhook', url: `${receiver.url('/hook')}?…`, state: 'pending', attempts: 0 },
      { kind: 'webhook', url: 'http://127.0.0.1:9/other', state: 'pending', attempts: 0 },
    ]);
    expect(JSON.stringify(response.body)).not.toMatch(/very-secret|password/);
  });

  it("lets the task's creator read them, and refuses other users (403)", async () => {
    await list(`?taskId=${taskId}`).set(suite.as('rerunner')).expect(200);
    const refused = await list(`?taskId=${taskId}`).set(suite.as('viewer')).expect(403);
    expect(refused.text).toBe(
      `User ${USERS.viewer.email} may not read the notifications of task ${taskId}: only admins and the user who created it may.`,
    );
  });

  it('answers 400 for a missing or malformed taskId or another parameter, 404 for an unknown task, 401 without credentials', async () => {
    expect((await list('').set(suite.as('admin')).expect(400)).text).toMatch(/^taskId is required/);
    expect((await list('?taskId=abc').set(suite.as('admin')).expect(400)).text).toBe(
      'Invalid taskId "abc": expected a 24-character hex id',
    );
    await list(`?taskId=${taskId}&taskId=${taskId}`).set(suite.as('admin')).expect(400);
    expect((await list(`?taskId=${taskId}&limit=5`).set(suite.as('admin')).expect(400)).text).toBe(
      'Unknown query parameter "limit" (allowed: taskId)',
    );
    const unknown = new ObjectId().toHexString();
    expect((await list(`?taskId=${unknown}`).set(suite.as('admin')).expect(404)).text).toBe(
      `We could not find a Task with this ID: ${unknown}.`,
    );
    await list(`?taskId=${taskId}`).expect(401);
  });

  it('lists nothing for a task without events', async () => {
    const quiet = await insertTask(suite.env.db, []);
    expect((await list(`?taskId=${quiet}`).set(suite.as('root')).expect(200)).body).toEqual([]);
  });

  it('is documented: the query, its answers and the event schema', async () => {
    const doc = (await request(suite.baseUrl).get('/api-docs-json').expect(200)).body as OpenApi & {
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    const operation = doc.paths['/notifications'].get;
    expect(operation.parameters!.map((parameter) => parameter.name)).toEqual(['taskId']);
    expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '403', '404', '429', '503']);
    expect(Object.keys(doc.components.schemas.NotificationEventView.properties)).toEqual(
      expect.arrayContaining(['id', 'type', 'at', 'task', 'channel', 'reason', 'user', 'tasks']),
    );
  });
});

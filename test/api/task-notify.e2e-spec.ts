import request from 'supertest';
import { ApiSuite, startApiSuite } from '../support/api-suite';
import { insertTransactions } from '../support/database-fixtures';
import { waitFor } from '../support/wait';

/**
 * A task's own `notify` (issue 25): the OpenHIM contact groups e-mailed about its events instead of
 * NOTIFY_GROUPS; a group that does not exist is a 400 and nothing is written.
 */
describe('POST /tasks notify', () => {
  let suite: ApiSuite;

  beforeAll(async () => {
    suite = await startApiSuite({
      // E-mail configured (no message is sent here: the task is created paused, nothing is delivered).
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: '2525',
      EMAIL_FROM: 'openhim@example.org',
      NOTIFY_GROUPS: 'night-shift',
    });
    await suite.env.db.collection('contactgroups').insertMany([
      { group: 'lab-operators', users: [{ user: 'lab@example.org', method: 'email', maxAlerts: 'no max' }] },
      { group: 'night-shift', users: [{ user: 'night@example.org', method: 'email', maxAlerts: '1 per hour' }] },
    ]);
  });
  afterAll(() => suite?.env.stop());

  const create = (body: object) => request(suite.baseUrl).post('/tasks').set(suite.as('admin')).send(body);
  const emailGroupsOf = (taskId: string) =>
    waitFor(`the notification of task ${taskId}`, async () => {
      const found = await suite.env.db.collection('notifications').findOne({ 'event.task.id': taskId });
      return found?.deliveries?.find((delivery: { kind: string }) => delivery.kind === 'email')?.groups as
        string[] | undefined;
    });

  it("stores the task's groups, shows them, and e-mails them instead of NOTIFY_GROUPS", async () => {
    const tids = await insertTransactions(suite.env.db, 1);
    const answer = await create({ tids, paused: true, notify: ['lab-operators'] }).expect(201);
    const taskId = /([0-9a-f]{24})$/.exec(answer.text)![1];
    const shown = await request(suite.baseUrl).get(`/tasks/${taskId}`).set(suite.as('admin')).expect(200);
    expect(shown.body.notify).toEqual(['lab-operators']);
    expect(await emailGroupsOf(taskId)).toEqual(['lab-operators']);

    const byDefault = await create({ tids, paused: true }).expect(201);
    expect(await emailGroupsOf(/([0-9a-f]{24})$/.exec(byDefault.text)![1])).toEqual(['night-shift']);
  });

  it.each([
    [{ notify: ['lab-operators', 'nobody-here'] }, 'notify names contact groups that do not exist: nobody-here'],
    [{ notify: 'lab-operators' }, 'notify must be an array of at most 20 contact group names'],
    [{ notify: [''] }, 'notify must hold names of 1 to 200 characters'],
  ])('refuses %j with a 400 and writes nothing', async (options, message) => {
    const tids = await insertTransactions(suite.env.db, 1);
    const before = await suite.env.db.collection('tasks').countDocuments();
    const answer = await create({ tids, ...options }).expect(400);
    expect(answer.text).toContain(message);
    expect(await suite.env.db.collection('tasks').countDocuments()).toBe(before);
    expect(await suite.env.db.collection('taskitems').countDocuments({ tid: tids[0] })).toBe(0);
  });
});

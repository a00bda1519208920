import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { laneJobs, legacyTaskDoc, UserName, USERS } from '../support/fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';

const CREATED = /^User (\S+) created task with id ([0-9a-f]{24})$/;
const UPDATED = 'The Task was successfully updated';
const DELETED = 'The Task was successfully deleted';
const ALLOWED =
  'Allowed changes: Queued, Processing or Pending Async to Paused (pause); Paused to Queued (resume); ' +
  'any status but Completed to Cancelled (cancel)';

/**
 * PUT /tasks/:id (pause, resume, cancel) and DELETE /tasks/:id, as the console sends them, for tasks
 * of this service and tasks created by OpenHIM core. No worker runs: lane jobs stay in the queue.
 */
describe('Tasks API: pause, resume, cancel, delete', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite());
  });
  afterAll(() => env?.stop());

  const tasks = () => env.db.collection('tasks');
  const statusOf = async (id: string) => (await tasks().findOne({ _id: new ObjectId(id) }))?.status;
  const put = (id: string, body: unknown, user: UserName = 'admin') =>
    request(baseUrl)
      .put(`/tasks/${id}`)
      .set(as(user))
      .send(body as object);
  const create = async (body: Record<string, unknown> = {}) => {
    const response = await request(baseUrl)
      .post('/tasks')
      .set(as('admin'))
      .send({ tids: [new ObjectId().toHexString(), new ObjectId().toHexString()], batchSize: 2, ...body })
      .expect(201);
    return CREATED.exec(response.text)![2];
  };
  /** A task whose status the engine has moved (inserted directly). */
  const withStatus = async (status: string) => {
    const id = await create({ paused: true });
    await tasks().updateOne({ _id: new ObjectId(id) }, { $set: { status } });
    return id;
  };
  const lanes = (id: string) => [`lane:${id}:0`, `lane:${id}:1`];

  it("pauses, resumes and cancels with the console's body {_id, status}, keeping the queue in step", async () => {
    const id = await create();
    expect(await laneJobs(app, id)).toEqual(lanes(id));

    const paused = await put(id, { _id: id, status: 'Paused' }).expect(200);
    expect(paused.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(paused.text).toBe(UPDATED);
    expect(await statusOf(id)).toBe('Paused');
    expect(await laneJobs(app, id)).toEqual([]);

    expect((await put(id, { _id: id, status: 'Queued' }).expect(200)).text).toBe(UPDATED);
    expect(await statusOf(id)).toBe('Queued');
    expect(await laneJobs(app, id)).toEqual(lanes(id));

    expect((await put(id, { _id: id, status: 'Cancelled' }).expect(200)).text).toBe(UPDATED);
    expect(await statusOf(id)).toBe('Cancelled');
    expect(await laneJobs(app, id)).toEqual([]);
  });

  it.each([
    ['Processing', 'Paused'],
    ['Pending Async', 'Paused'],
    ['Processing', 'Cancelled'],
    ['Pending Async', 'Cancelled'],
    ['Paused', 'Cancelled'],
    ['Queued', 'Cancelled'],
  ])('allows %s -> %s', async (from, to) => {
    const id = await withStatus(from);
    expect((await put(id, { status: to }).expect(200)).text).toBe(UPDATED);
    expect(await statusOf(id)).toBe(to);
  });

  it.each(['Queued', 'Paused', 'Cancelled', 'Completed', 'Processing'])(
    'setting the current status again (%s) is a 200 no-op',
    async (status) => {
      const id = await withStatus(status);
      const before = await tasks().findOne({ _id: new ObjectId(id) });
      expect((await put(id, { _id: id, status }).expect(200)).text).toBe(UPDATED);
      expect(await tasks().findOne({ _id: new ObjectId(id) })).toEqual(before);
      // A no-op resume does not queue anything either.
      expect(await laneJobs(app, id)).toEqual([]);
    },
  );

  it.each([
    ['Completed', 'Paused', `Cannot change a task from Completed to Paused. ${ALLOWED}`],
    ['Completed', 'Cancelled', `Cannot change a task from Completed to Cancelled. ${ALLOWED}`],
    ['Completed', 'Queued', `Cannot change a task from Completed to Queued. ${ALLOWED}`],
    ['Cancelled', 'Queued', `Cannot change a task from Cancelled to Queued. ${ALLOWED}`],
    ['Cancelled', 'Paused', `Cannot change a task from Cancelled to Paused. ${ALLOWED}`],
    ['Processing', 'Queued', `Cannot change a task from Processing to Queued. ${ALLOWED}`],
    [
      'Paused',
      'Processing',
      `The status Processing cannot be set through the API (the rerun engine sets it). ${ALLOWED}`,
    ],
    [
      'Queued',
      'Completed',
      `The status Completed cannot be set through the API (the rerun engine sets it). ${ALLOWED}`,
    ],
    [
      'Paused',
      'Pending Async',
      `The status Pending Async cannot be set through the API (the rerun engine sets it). ${ALLOWED}`,
    ],
  ])('refuses %s -> %s with a 400 listing the allowed changes', async (from, to, message) => {
    const id = await withStatus(from);
    const response = await put(id, { status: to }).expect(400);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.text).toBe(message);
    expect(await statusOf(id)).toBe(from);
  });

  it('accepts a whole task echoed back, but changes only the status', async () => {
    const id = await create({ paused: true });
    const read = await request(baseUrl).get(`/tasks/${id}`).set(as('admin')).expect(200);
    const echoed = {
      ...read.body,
      status: 'Queued',
      batchSize: 99,
      user: 'mallory@example.org',
      remainingTransactions: 0,
    };
    expect((await put(id, echoed).expect(200)).text).toBe(UPDATED);
    expect(await tasks().findOne({ _id: new ObjectId(id) })).toMatchObject({
      status: 'Queued',
      batchSize: 2,
      user: USERS.admin.email,
      remainingTransactions: 2,
    });
    expect(await laneJobs(app, id)).toEqual(lanes(id));
  });

  it.each([
    [{}, 'status is required'],
    [
      { status: 'Done' },
      'status must be one of Queued, Processing, Paused, Cancelled, Completed, Pending Async (got "Done")',
    ],
    [{ status: 'Paused', leases: [] }, expect.stringMatching(/^Unknown field "leases" \(allowed: status, _id, /)],
    [{ status: 'Paused', _id: 'x' }, '_id must be a 24-character hex id (got "x")'],
    [
      { status: 'Paused', _id: '65f0c0ffee0000000000c001' },
      expect.stringMatching(/^_id in the body \(65f0c0ffee0000000000c001\) is not the task id in the path/),
    ],
  ])('400 for the body %j', async (body, message) => {
    const id = await create({ paused: true });
    expect((await put(id, body).expect(400)).text).toEqual(message);
    expect(await statusOf(id)).toBe('Paused');
  });

  it('415 for a body that is not JSON; 404 for a missing task; 400 for a malformed id; 403 for non-admins', async () => {
    const id = await create({ paused: true });
    const wrongType = await request(baseUrl)
      .put(`/tasks/${id}`)
      .set(as('admin'))
      .type('text')
      .send('status=Queued')
      .expect(415);
    expect(wrongType.text).toBe('Content-Type must be application/json');
    const missing = new ObjectId().toHexString();
    expect((await put(missing, { status: 'Paused' }).expect(404)).text).toBe(
      `We could not find a Task with this ID: ${missing}.`,
    );
    expect((await put('12345', { status: 'Paused' }).expect(400)).text).toBe(
      'Invalid task id "12345": expected a 24-character hex id',
    );
    expect((await put(id, { status: 'Queued' }, 'rerunner').expect(403)).text).toBe(
      `User ${USERS.rerunner.email} is not an admin, API access to updateTask denied.`,
    );
    expect(await statusOf(id)).toBe('Paused');
  });

  describe('tasks created by OpenHIM core (embedded transactions)', () => {
    it('pause, resume (queued for the engine to adopt), cancel, delete', async () => {
      const legacy = legacyTaskDoc({ status: 'Queued', batchSize: 3, items: [{ tid: new ObjectId().toHexString() }] });
      await tasks().insertOne(legacy);
      const id = legacy._id.toHexString();
      expect((await put(id, { _id: id, status: 'Paused' }).expect(200)).text).toBe(UPDATED);
      expect(await statusOf(id)).toBe('Paused');
      expect((await put(id, { _id: id, status: 'Queued' }).expect(200)).text).toBe(UPDATED);
      expect(await laneJobs(app, id)).toEqual([`lane:${id}:0`, `lane:${id}:1`, `lane:${id}:2`]);
      expect((await put(id, { _id: id, status: 'Cancelled' }).expect(200)).text).toBe(UPDATED);
      expect(await laneJobs(app, id)).toEqual([]);
      // The embedded items are untouched by status changes.
      expect((await tasks().findOne({ _id: legacy._id }))?.transactions).toEqual(legacy.transactions);
      expect((await request(baseUrl).delete(`/tasks/${id}`).set(as('admin')).expect(200)).text).toBe(DELETED);
      expect(await tasks().findOne({ _id: legacy._id })).toBeNull();
    });
  });

  describe('DELETE /tasks/:id', () => {
    it('stops the outstanding work, then removes the task and its items', async () => {
      const id = await create();
      expect(await laneJobs(app, id)).toEqual(lanes(id));
      const response = await request(baseUrl).delete(`/tasks/${id}`).set(as('admin')).expect(200);
      expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(response.text).toBe(DELETED);
      expect(await tasks().findOne({ _id: new ObjectId(id) })).toBeNull();
      expect(await env.db.collection('taskitems').countDocuments({ taskId: new ObjectId(id) })).toBe(0);
      expect(await laneJobs(app, id)).toEqual([]);
      // Gone: a second delete, a read and an update are 404s.
      const notFound = `We could not find a Task with this ID: ${id}.`;
      expect((await request(baseUrl).delete(`/tasks/${id}`).set(as('admin')).expect(404)).text).toBe(notFound);
      expect((await request(baseUrl).get(`/tasks/${id}`).set(as('admin')).expect(404)).text).toBe(notFound);
      expect((await put(id, { status: 'Paused' }).expect(404)).text).toBe(notFound);
    });

    it('400 for a malformed id; 403 for non-admins (nothing deleted)', async () => {
      const id = await create({ paused: true });
      expect((await request(baseUrl).delete('/tasks/zzz').set(as('admin')).expect(400)).text).toBe(
        'Invalid task id "zzz": expected a 24-character hex id',
      );
      expect((await request(baseUrl).delete(`/tasks/${id}`).set(as('viewer')).expect(403)).text).toBe(
        `User ${USERS.viewer.email} is not an admin, API access to removeTask denied.`,
      );
      expect(await statusOf(id)).toBe('Paused');
      expect(await env.db.collection('taskitems').countDocuments({ taskId: new ObjectId(id) })).toBe(2);
    });
  });
});

import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { BulkRerunService } from '../../src/tasks/bulk-rerun.service';
import { insertChannel, insertTransactions, readTask, waitForTaskStatus } from '../support/database-fixtures';
import { CHANNELS, legacyTaskDoc, seedUsersAndChannels, tokenSigner, transactionDoc, USERS } from '../support/fixtures';
import type { UserName } from '../support/fixtures';
import { OpenhimCoreStub } from '../support/openhim-core-stub';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

type History = Array<{ at: string; action: string; user?: string; reason?: string }>;

const createdId = (text: string) => /created task with id ([0-9a-f]{24})$/.exec(text)![1];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Far ahead: a task created with it stays Queued (the lanes wait for it), so there is something to pause. */
const LATER = '2030-01-01T00:00:00Z';
const REASON = 'Downstream EMR down since 09:40, incident 4711';

/**
 * The emergency stop (POST /tasks/pause-all, POST /tasks/resume-all), end to end: the real API with
 * a worker, Redis, the embedded database and a stand-in for core's rerun port. It pauses the
 * unfinished tasks (a running one stops starting reruns) and holds, so that tasks created through the
 * API or adopted from OpenHIM core later start Paused; resume-all resumes exactly what it paused.
 */
describe('emergency stop', () => {
  let env: TestEnvironment;
  let stub: OpenhimCoreStub;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    stub = await OpenhimCoreStub.start(env.db);
    ({ app, baseUrl } = await env.startApi(
      {
        AUTH_FAILURE_LIMIT: '0',
        RERUN_HOST: '127.0.0.1',
        RERUN_HTTP_PORT: String(stub.port),
        SWEEP_INTERVAL_MS: '300',
        WORKER_FLUSH_MS: '50',
        RERUN_RETRY_SETTLE_MS: '300',
      },
      { withWorker: true },
    ));
    await seedUsersAndChannels(env.db);
    as = await tokenSigner(env.db);
  });
  afterAll(async () => {
    await env?.stop();
    await stub?.close();
  });
  beforeEach(() => stub.behave({}));
  // Each test starts without a hold and without unfinished tasks of earlier tests.
  afterEach(async () => {
    await env.db.collection('rerunholds').deleteMany({});
    await env.db
      .collection('tasks')
      .updateMany({ status: { $in: ['Queued', 'Processing', 'Pending Async', 'Paused'] } }, {
        $set: { status: 'Cancelled' },
        $unset: { heldBy: '' },
      } as never);
  });

  const holds = () => env.db.collection('rerunholds').find().toArray();
  const create = async (body: object, user: UserName = 'admin') =>
    createdId((await request(baseUrl).post('/tasks').set(as(user)).send(body).expect(201)).text);
  const read = async (id: string) =>
    (await request(baseUrl).get(`/tasks/${id}?filterLimit=0`).set(as('admin')).expect(200)).body;
  const put = (id: string, status: string) =>
    request(baseUrl).put(`/tasks/${id}`).set(as('admin')).send({ status }).expect(200);
  const pauseAll = (body: object, user: UserName = 'admin') =>
    request(baseUrl).post('/tasks/pause-all').set(as(user)).send(body);
  const resumeAll = (body?: object, user: UserName = 'admin') => {
    const pending = request(baseUrl).post('/tasks/resume-all').set(as(user));
    return body === undefined ? pending : pending.send(body);
  };
  const actions = (history: History) => history.map((entry) => entry.action);
  const lastEntry = async (id: string) => ((await read(id)).history as History).at(-1);
  const stopped = (user: UserName = 'admin', reason = REASON) => ({
    at: expect.any(String),
    action: 'emergency-paused',
    user: USERS[user].email,
    reason,
  });
  const onChannel = (channelID: ObjectId, count = 1) =>
    insertTransactions(
      env.db,
      Array.from({ length: count }, () => ({ ...transactionDoc(), channelID })),
    );

  it('pauses every unfinished task, answers their ids and the hold; a running task stops starting reruns', async () => {
    const [tid] = await insertTransactions(env.db, [transactionDoc()]);
    const queued = await create({ tids: [tid], startAt: LATER });
    const wide = await create({ tids: [tid], startAt: LATER, batchSize: 3 });
    const pausedByPerson = await create({ tids: [tid], paused: true });
    const done = await create({ tids: [tid] });
    await waitForTaskStatus(env.db, done, 'Completed');
    stub.behave({ latencyMs: 100 });
    const tids = await insertTransactions(env.db, 40);
    const running = await create({ tids });
    await waitFor('the task to run', () => stub.forTask(running).length >= 2);

    const response = await pauseAll({ reason: REASON }).expect(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect([...response.body.paused].sort()).toEqual([queued, wide, running].sort());
    const [hold] = await holds();
    expect(response.body.hold).toEqual({
      _id: String(hold._id),
      scope: 'all',
      reason: REASON,
      user: USERS.admin.email,
      at: expect.any(String),
    });
    for (const id of [queued, wide, running]) {
      const task = await read(id);
      expect(task.status).toBe('Paused');
      expect(task.history.at(-1)).toEqual(stopped());
    }
    expect(await read(pausedByPerson)).toMatchObject({ status: 'Paused' });
    expect(actions((await read(pausedByPerson)).history)).toEqual(['created']);
    expect((await read(done)).status).toBe('Completed');

    // Reruns in flight finish; nothing new starts.
    await sleep(800);
    const sent = stub.forTask(running).length;
    await sleep(1000);
    expect(stub.forTask(running).length).toBe(sent);
    expect(sent).toBeLessThan(40);

    // Once lifted, the running task finishes: each transaction rerun once.
    stub.behave({});
    const resumed = await resumeAll().expect(200);
    expect([...resumed.body.resumed].sort()).toEqual([queued, wide, running].sort());
    await waitForTaskStatus(env.db, running, 'Completed');
    expect(stub.countsByTid(running).size).toBe(40);
    expect([...stub.countsByTid(running).values()].every((count) => count === 1)).toBe(true);
    expect(actions((await read(running)).history)).toEqual([
      'created',
      'started',
      'emergency-paused',
      'emergency-resumed',
      'completed',
    ]);
  });

  it('holds: tasks created later through POST /tasks, /bulkrerun and rerun-failed start Paused, with the hold in their history', async () => {
    await pauseAll({ reason: REASON }, 'root').expect(200);
    const [tid] = await insertTransactions(env.db, [transactionDoc()]);

    const created = await create({ tids: [tid] }, 'rerunner');
    const task = await read(created);
    expect(task.status).toBe('Paused');
    expect(task.history).toEqual([
      { at: expect.any(String), action: 'created', user: USERS.rerunner.email },
      stopped('root'),
    ]);

    const channel = await insertChannel(env.db, { txRerunAcl: [] });
    await onChannel(channel, 2);
    const before = new Set((await env.db.collection('tasks').find().toArray()).map((doc) => String(doc._id)));
    await request(baseUrl)
      .post('/bulkrerun')
      .set(as('admin'))
      .send({ filters: { channelID: channel.toHexString() } })
      .expect(200);
    await app.get(BulkRerunService).idle();
    const bulk = (await env.db.collection('tasks').find().toArray()).filter((doc) => !before.has(String(doc._id)));
    expect(bulk).toHaveLength(1);
    expect(await read(String(bulk[0]._id))).toMatchObject({
      status: 'Paused',
      history: [{ action: 'created', user: USERS.admin.email, reason: 'bulk rerun' }, stopped('root')],
    });

    // A finished task with a failed item: its rerun of failures is held too.
    const source = await create({ tids: [tid], paused: true });
    await env.db.collection('tasks').updateOne({ _id: new ObjectId(source) }, { $set: { status: 'Cancelled' } });
    await env.db
      .collection('taskitems')
      .updateMany({ taskId: new ObjectId(source) }, { $set: { tstatus: 'Completed', rerunStatus: 'Failed' } });
    const rerun = createdId(
      (await request(baseUrl).post(`/tasks/${source}/rerun-failed`).set(as('admin')).expect(201)).text,
    );
    expect(await read(rerun)).toMatchObject({ status: 'Paused', history: [{ action: 'created' }, stopped('root')] });

    // Asked for Paused: its creator's, not the stop's.
    const ownPause = await create({ tids: [tid], paused: true });
    expect(actions((await read(ownPause)).history)).toEqual(['created']);
    await sleep(700);
    expect(stub.forTask(created)).toEqual([]);

    const resumed = await resumeAll({}).expect(200);
    expect([...resumed.body.resumed].sort()).toEqual([created, String(bulk[0]._id), rerun].sort());
    await waitForTaskStatus(env.db, created, 'Completed');
    expect(await lastEntry(created)).toMatchObject({ action: 'completed' });
    expect(((await read(created)).history as History).find((entry) => entry.action === 'emergency-resumed')).toEqual({
      at: expect.any(String),
      action: 'emergency-resumed',
      user: USERS.admin.email,
      reason: REASON,
    });
    expect((await read(ownPause)).status).toBe('Paused');
    // Lifted: a new task runs.
    expect((await read(await create({ tids: [tid], startAt: LATER }))).status).toBe('Queued');
  });

  it('adopts a task OpenHIM core creates on a held channel (its auto-retry task, user internal) Paused; others run', async () => {
    const held = await insertChannel(env.db, { txRerunAcl: [] });
    const other = await insertChannel(env.db, { txRerunAcl: [] });
    const response = await pauseAll({ reason: 'Lab system down', channelID: held.toHexString() }).expect(200);
    expect(response.body.hold).toMatchObject({ scope: 'channel', channelID: held.toHexString() });

    const heldTids = await onChannel(held, 3);
    const otherTids = await onChannel(other, 2);
    const heldCore = legacyTaskDoc({
      status: 'Queued',
      user: 'internal',
      items: heldTids.map((tid) => ({ tid })),
    });
    const otherCore = legacyTaskDoc({ status: 'Queued', user: 'internal', items: otherTids.map((tid) => ({ tid })) });
    await env.db.collection('tasks').insertMany([heldCore, otherCore]);
    const heldId = heldCore._id.toHexString();
    const otherId = otherCore._id.toHexString();

    // The sweeper hands both to a lane, which adopts them.
    await waitForTaskStatus(env.db, otherId, 'Completed');
    const adopted = await waitFor('the held core task to be adopted', async () => {
      const task = await readTask(env.db, heldId);
      return task?.itemsStore === 'items' ? task : null;
    });
    expect(adopted).toMatchObject({ status: 'Paused', transactions: [], remainingTransactions: 3 });
    expect(adopted.history).toEqual([
      { at: expect.any(Date), action: 'emergency-paused', user: USERS.admin.email, reason: 'Lab system down' },
    ]);
    await sleep(700);
    expect(stub.forTask(heldId)).toEqual([]);
    expect(stub.forTask(otherId)).toHaveLength(2);

    const resumed = await resumeAll({ channelID: held.toHexString() }).expect(200);
    expect(resumed.body.resumed).toEqual([heldId]);
    await waitForTaskStatus(env.db, heldId, 'Completed');
    expect(stub.countsByTid(heldId).size).toBe(3);
  });

  it('resume-all resumes only the tasks the stop paused that are still Paused', async () => {
    const [tid] = await insertTransactions(env.db, [transactionDoc()]);
    const untouched = await create({ tids: [tid], startAt: LATER });
    const pausedBefore = await create({ tids: [tid], startAt: LATER });
    await put(pausedBefore, 'Paused');
    const resumedByPerson = await create({ tids: [tid], startAt: LATER });
    const pausedAgain = await create({ tids: [tid], startAt: LATER });
    const cancelled = await create({ tids: [tid], startAt: LATER });

    const paused = (await pauseAll({ reason: REASON }).expect(200)).body.paused;
    expect([...paused].sort()).toEqual([untouched, resumedByPerson, pausedAgain, cancelled].sort());
    await put(resumedByPerson, 'Queued');
    await put(pausedAgain, 'Queued');
    await put(pausedAgain, 'Paused');
    await put(cancelled, 'Cancelled');
    const historyBefore = {
      resumedByPerson: (await read(resumedByPerson)).history,
      pausedAgain: (await read(pausedAgain)).history,
      pausedBefore: (await read(pausedBefore)).history,
    };

    const response = await resumeAll().expect(200);
    expect(response.body).toEqual({ resumed: [untouched] });
    const task = await read(untouched);
    expect(task.status).toBe('Queued');
    expect(task.history.at(-1)).toEqual({
      at: expect.any(String),
      action: 'emergency-resumed',
      user: USERS.admin.email,
      reason: REASON,
    });
    expect(await read(resumedByPerson)).toMatchObject({ status: 'Queued', history: historyBefore.resumedByPerson });
    expect(await read(pausedAgain)).toMatchObject({ status: 'Paused', history: historyBefore.pausedAgain });
    expect(await read(pausedBefore)).toMatchObject({ status: 'Paused', history: historyBefore.pausedBefore });
    expect((await read(cancelled)).status).toBe('Cancelled');
    expect(await holds()).toEqual([]);

    // Nothing holds any more.
    const text = (await resumeAll().expect(404)).text;
    expect(text).toBe('No emergency stop holds every task (POST /tasks/pause-all without channelID puts one)');
  });

  it('with channelID: pauses and holds only the tasks with transactions still to rerun on that channel', async () => {
    const held = await insertChannel(env.db, { txRerunAcl: [] });
    const other = await insertChannel(env.db, { txRerunAcl: [] });
    const [heldTid, heldTid2] = await onChannel(held, 2);
    const [otherTid] = await onChannel(other);
    const onHeld = await create({ tids: [heldTid], startAt: LATER });
    const mixed = await create({ tids: [otherTid, heldTid2], startAt: LATER });
    const onOther = await create({ tids: [otherTid], startAt: LATER });
    // Its item on the held channel is done: nothing of it still goes there.
    const doneThere = await create({ tids: [heldTid, otherTid], startAt: LATER });
    await env.db
      .collection('taskitems')
      .updateOne(
        { taskId: new ObjectId(doneThere), seq: 0 },
        { $set: { tstatus: 'Completed', rerunStatus: 'Failed' } },
      );
    // Core's runner was running it (not adopted: items embedded).
    const core = legacyTaskDoc({ status: 'Processing', items: [{ tid: otherTid }, { tid: heldTid }] });
    await env.db.collection('tasks').insertOne(core);
    const coreId = core._id.toHexString();

    const response = await pauseAll({ reason: 'Lab system down', channelID: held.toHexString() }).expect(200);
    expect([...response.body.paused].sort()).toEqual([onHeld, mixed, coreId].sort());
    expect(response.body.hold).toEqual({
      _id: expect.stringMatching(/^[0-9a-f]{24}$/),
      scope: 'channel',
      channelID: held.toHexString(),
      reason: 'Lab system down',
      user: USERS.admin.email,
      at: expect.any(String),
    });
    expect((await read(onOther)).status).toBe('Queued');
    expect((await read(doneThere)).status).toBe('Queued');
    expect(await lastEntry(coreId)).toEqual(stopped('admin', 'Lab system down'));

    // Later tasks: held on that channel only.
    expect((await read(await create({ tids: [otherTid, heldTid] }))).status).toBe('Paused');
    expect((await read(await create({ tids: [otherTid], startAt: LATER }))).status).toBe('Queued');

    // No hold on every task: that resume-all is a 404, and changes nothing.
    await resumeAll().expect(404);
    expect((await read(onHeld)).status).toBe('Paused');

    // A second stop of the same channel restates the hold (one per scope).
    const again = await pauseAll({ reason: 'still down', channelID: held.toHexString() }, 'root').expect(200);
    expect(again.body.paused).toEqual([]);
    expect(again.body.hold).toMatchObject({
      _id: response.body.hold._id,
      reason: 'still down',
      user: USERS.root.email,
    });
    expect(await holds()).toHaveLength(1);

    const resumed = await resumeAll({ channelID: held.toHexString() }).expect(200);
    expect(resumed.body.resumed).toHaveLength(4);
    expect(resumed.body.resumed).toEqual(expect.arrayContaining([onHeld, mixed, coreId]));
    expect(await lastEntry(mixed)).toEqual({
      at: expect.any(String),
      action: 'emergency-resumed',
      user: USERS.admin.email,
      reason: 'still down',
    });
  });

  it('keeps a task another hold still covers Paused when one hold is lifted', async () => {
    const held = await insertChannel(env.db, { txRerunAcl: [] });
    const [heldTid] = await onChannel(held);
    const task = await create({ tids: [heldTid], startAt: LATER });
    await pauseAll({ reason: 'everything', channelID: undefined }).expect(200);
    await pauseAll({ reason: 'this channel', channelID: held.toHexString() }).expect(200);
    expect((await resumeAll().expect(200)).body.resumed).toEqual([]);
    expect((await read(task)).status).toBe('Paused');
    expect(await lastEntry(task)).toEqual(stopped('admin', 'this channel'));
    expect((await resumeAll({ channelID: held.toHexString() }).expect(200)).body.resumed).toEqual([task]);
    expect((await read(task)).status).toBe('Queued');
  });

  describe('refusals write nothing', () => {
    let queued: string;
    let historyBefore: History;
    beforeEach(async () => {
      const [tid] = await insertTransactions(env.db, [transactionDoc()]);
      queued = await create({ tids: [tid], startAt: LATER });
      historyBefore = (await read(queued)).history;
    });
    afterEach(async () => {
      expect(await holds()).toEqual([]);
      expect(await read(queued)).toMatchObject({ status: 'Queued', history: historyBefore });
    });

    it('403 for a user who is not an admin', async () => {
      expect((await pauseAll({ reason: REASON }, 'rerunner').expect(403)).text).toBe(
        `User ${USERS.rerunner.email} is not an admin, API access to pauseAllTasks denied.`,
      );
      expect((await resumeAll({}, 'viewer').expect(403)).text).toBe(
        `User ${USERS.viewer.email} is not an admin, API access to resumeAllTasks denied.`,
      );
      await request(baseUrl).post('/tasks/pause-all').send({ reason: REASON }).expect(401);
    });

    it.each([
      ['no reason', {}, 'reason is required'],
      ['an empty reason', { reason: '' }, 'reason must not be empty'],
      ['a reason of spaces', { reason: '   ' }, 'reason must not be empty'],
      ['a reason that is not a string', { reason: 42 }, 'reason must be a string (got 42)'],
      ['a reason of 501 characters', { reason: 'x'.repeat(501) }, 'reason must be at most 500 characters (got 501)'],
      [
        'a channelID that is not an id',
        { reason: REASON, channelID: 'abc' },
        'channelID must be a 24-character hex channel id (got "abc")',
      ],
      [
        'a channelID that is a number',
        { reason: REASON, channelID: 7 },
        'channelID must be a 24-character hex channel id (got 7)',
      ],
      ['an unknown field', { reason: REASON, channel: 'x' }, 'Unknown field "channel" (allowed: reason, channelID)'],
    ])('pause-all with %s: 400 naming the field', async (_, body, message) => {
      const response = await pauseAll(body).expect(400);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
      expect(response.text).toBe(message);
    });

    it('pause-all with a reason of 500 characters is accepted (then undone here)', async () => {
      await pauseAll({ reason: 'x'.repeat(500) }).expect(200);
      await resumeAll().expect(200);
      // The stop and its release are in the history; the hold is gone.
      historyBefore = [
        ...historyBefore,
        stopped('admin', 'x'.repeat(500)),
        { at: expect.any(String), action: 'emergency-resumed', user: USERS.admin.email, reason: 'x'.repeat(500) },
      ];
    });

    it('resume-all: 400 naming the field, 404 without such a hold', async () => {
      expect((await resumeAll({ channelID: 'abc' }).expect(400)).text).toBe(
        'channelID must be a 24-character hex channel id (got "abc")',
      );
      expect((await resumeAll({ reason: 'x' }).expect(400)).text).toBe('Unknown field "reason" (allowed: channelID)');
      expect((await resumeAll().expect(404)).text).toMatch(/^No emergency stop holds every task/);
      const channel = CHANNELS.acl._id.toHexString();
      expect((await resumeAll({ channelID: channel }).expect(404)).text).toBe(
        `No emergency stop holds channel ${channel} (POST /tasks/pause-all with this channelID puts one)`,
      );
    });

    it('404 for an unknown channel; 415 for a body that is not JSON', async () => {
      const unknown = new ObjectId().toHexString();
      expect((await pauseAll({ reason: REASON, channelID: unknown }).expect(404)).text).toBe(
        `We could not find a channel with this ID: ${unknown}.`,
      );
      await request(baseUrl)
        .post('/tasks/pause-all')
        .set(as('admin'))
        .set('Content-Type', 'text/plain')
        .send('stop')
        .expect(415);
    });

    it('the paths are not taken for task ids', async () => {
      await request(baseUrl).get('/tasks/pause-all').set(as('admin')).expect(400);
      await request(baseUrl).put('/tasks/resume-all').set(as('admin')).send({ status: 'Queued' }).expect(400);
    });
  });
});

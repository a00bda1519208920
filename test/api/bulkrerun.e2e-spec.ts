import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { BulkRerunService } from '../../src/tasks/bulk-rerun.service';
import { CHANNELS, laneJobs, transactionDoc, TransactionOptions, UserName, USERS } from '../support/fixtures';
import { insertTransactions } from '../support/database-fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';

const STARTED = { success: true, message: 'Tasks created for bulk rerun of transactions' };
const COMPLETED_WITH_ERRORS = 'Completed with error(s)';

/** A transaction document with more of what core stores (routes, orchestrations, properties...). */
function withFields(doc: ReturnType<typeof transactionDoc>, fields: Record<string, unknown>) {
  const { request: requestFields, ...rest } = fields as { request?: Record<string, unknown> };
  return Object.assign(doc, rest, { request: { ...doc.request, ...requestFields } });
}
const route = (name: string, path: string, status: number) => ({
  name,
  request: { host: 'upstream', port: '3447', path, querystring: '', method: 'POST' },
  response: { status, body: '' },
});
const DISABLED = 'Cannot queue task as there are transactions with disabled or deleted channels';
const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 10, minute));

/**
 * POST /bulkrerun (OpenHIM ≥ 7.1): transactions selected by filters become tasks of
 * BULK_RERUN_TASK_SIZE (3 here), oldest first, created in the background after the answer.
 */
describe('POST /bulkrerun', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;
  /** Seven failed transactions on the ACL channel, inserted newest first (the API must sort them). */
  let failed: string[];
  let others: Record<string, string>;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({ BULK_RERUN_TASK_SIZE: '3' }));
    // Two share a timestamp: ties are broken by id, so the order is stable.
    const failedDocs = [6, 5, 4, 3, 2, 2, 0].map((minute) => transactionDoc({ timestamp: at(minute) }));
    failed = (await insertTransactions(env.db, failedDocs)).reverse();
    const tie = failed.slice(1, 3).sort();
    failed.splice(1, 2, ...tie);
    const named: Record<string, TransactionOptions> = {
      successful: { status: 'Successful', timestamp: at(1), responseStatus: 200 },
      noAcl: { channel: 'noAcl', timestamp: at(7) },
      get404: { status: 'Completed', method: 'GET', path: '/fhir/Patient(1).*', responseStatus: 404, timestamp: at(8) },
      later: { status: 'Completed', timestamp: new Date(Date.UTC(2024, 5, 1)), path: '/other', responseStatus: 503 },
    };
    others = {};
    for (const [name, options] of Object.entries(named)) {
      [others[name]] = await insertTransactions(env.db, [transactionDoc(options)]);
    }
    // Three 'Completed with error(s)' transactions with what the console's other filters look at.
    const base = { status: 'Completed with error(s)', responseStatus: 500 };
    const withError = [
      withFields(transactionDoc({ ...base, timestamp: at(20) }), {
        request: { host: 'his.example.org', port: '8080', querystring: 'patient=123&x=1' },
        properties: { 'order-type': 'lab' },
        childIDs: [new ObjectId()],
        routes: [route('FHIR', '/fhir/Observation', 201)],
        orchestrations: [route('Lookup', '/lookup/patient', 200)],
      }),
      withFields(transactionDoc({ ...base, timestamp: at(21) }), {
        properties: { 'order-type': 'rx', flagged: true },
        routes: [route('Archive', '/archive', 503)],
        orchestrations: [route('Lookup', '/lookup/other', 404)],
      }),
      transactionDoc({ ...base, timestamp: at(22) }),
    ];
    [others.e1, others.e2, others.e3] = await insertTransactions(env.db, withError);
  });
  afterAll(() => env?.stop());

  const bulk = (body: unknown, user: UserName = 'admin') =>
    request(baseUrl)
      .post('/bulkrerun')
      .set(as(user))
      .send(body as object);
  const taskIds = async () =>
    (
      await env.db
        .collection('tasks')
        .find({}, { projection: { _id: 1 } })
        .toArray()
    ).map((t) => t._id.toHexString());
  /** Runs a bulk rerun and returns the tasks it created (after their background creation), oldest first. */
  const run = async (body: object, user: UserName = 'admin') => {
    const before = new Set(await taskIds());
    const response = await bulk(body, user).expect(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toEqual(STARTED);
    await app.get(BulkRerunService).idle();
    const created = (await taskIds()).filter((id) => !before.has(id)).sort();
    return Promise.all(
      created.map(async (id) => {
        const task = await env.db.collection('tasks').findOne({ _id: new ObjectId(id) });
        const items = await env.db
          .collection('taskitems')
          .find({ taskId: new ObjectId(id) })
          .sort({ seq: 1 })
          .toArray();
        return { id, task: task!, tids: items.map((item) => item.tid) };
      }),
    );
  };
  const dryRun = async (filters: object, user: UserName = 'admin') =>
    (await bulk({ filters, dryRun: true }, user).expect(200)).body;

  it('splits the matching transactions into tasks, oldest first, and queues them', async () => {
    const created = await run({
      filters: { channelID: CHANNELS.acl._id.toHexString(), status: 'Failed' },
      batchSize: 2,
    });
    expect(created.map((task) => task.tids)).toEqual([failed.slice(0, 3), failed.slice(3, 6), failed.slice(6)]);
    for (const { id, task, tids } of created) {
      expect(task).toMatchObject({
        status: 'Queued',
        user: USERS.admin.email,
        batchSize: 2,
        totalTransactions: tids.length,
        remainingTransactions: tids.length,
        itemsStore: 'items',
        transactions: [],
      });
      expect(await laneJobs(app, id)).toEqual([`lane:${id}:0`, `lane:${id}:1`]);
    }
    const flags = await env.db
      .collection('transactions')
      .find({ _id: { $in: failed.map((tid) => new ObjectId(tid)) } })
      .toArray();
    for (const doc of flags) expect(doc).toMatchObject({ autoRetry: false, autoRetryAttempt: 0 });
    expect(
      await env.db.collection('autoretries').countDocuments({ transactionID: { $in: flags.map((doc) => doc._id) } }),
    ).toBe(0);
  });

  it('pauseQueue creates Paused tasks and queues nothing', async () => {
    const created = await run({ filters: { status: 'Successful' }, pauseQueue: true });
    expect(created).toHaveLength(1);
    expect(created[0].tids).toEqual([others.successful]);
    expect(created[0].task.status).toBe('Paused');
    expect(created[0].task.batchSize).toBe(1);
    expect(await laneJobs(app, created[0].id)).toEqual([]);
  });

  it('dryRun answers the count and the planned tasks, and creates nothing', async () => {
    const before = await taskIds();
    expect(await dryRun({ channelID: CHANNELS.acl._id.toHexString(), status: 'Failed' })).toEqual({
      dryRun: true,
      count: 7,
      tasks: [3, 3, 1],
    });
    expect(await dryRun({ status: 'Processing' })).toEqual({ dryRun: true, count: 0, tasks: [] });
    expect(await taskIds()).toEqual(before);
  });

  it.each([
    [
      { 'request.timestamp': JSON.stringify({ $gte: at(2).toISOString(), $lte: at(4).toISOString() }) },
      () => failed.slice(1, 5),
    ],
    [
      { 'request.timestamp': { $gt: at(6).toISOString() }, status: { $in: ['Completed', 'Failed'] } },
      () => [others.noAcl, others.get404, others.later],
    ],
    // Regular expressions, case-insensitive, as OpenHIM (a path without metacharacters: where it appears).
    [{ 'request.path': 'patient\\(1\\)' }, () => [others.get404]],
    [{ 'request.path': '^/OTHER$' }, () => [others.later]],
    [{ 'request.path': '.*', status: 'Successful' }, () => [others.successful]],
    [{ 'request.path': 'atient(1)' }, () => []],
    [{ 'request.method': 'get' }, () => [others.get404]],
    [{ 'response.status': '4xx' }, () => [others.get404]],
    [{ 'response.status': 404 }, () => [others.get404]],
    [{ 'response.status': '5xx', status: 'Completed' }, () => [others.later]],
    [{ clientID: new ObjectId().toHexString() }, () => []],
  ])('filters %j', async (filters, expected) => {
    const tids = expected();
    expect((await dryRun(filters)).count).toBe(tids.length);
    const created = await run({ filters, pauseQueue: true });
    expect(created.flatMap((task) => task.tids)).toEqual(tids);
  });

  it.each([
    [{ childIDs: '{"$exists":true,"$ne":[]}' }, () => [others.e1]],
    [{ childIDs: '{"$eq":[]}' }, () => [others.e2, others.e3]],
    [{ childIDs: { $not: { $size: 0 } } }, () => [others.e1]],
    [{ properties: { 'order-type': 'lab' } }, () => [others.e1]],
    [{ properties: { flagged: null } }, () => [others.e2]],
    [{ 'request.host': 'his.example.org' }, () => [others.e1]],
    [{ 'request.port': 8080 }, () => [others.e1]],
    [{ 'request.querystring': 'PATIENT=\\d+' }, () => [others.e1]],
    [{ 'routes.request.path': '^/fhir/' }, () => [others.e1]],
    [{ 'routes.response.status': '5xx' }, () => [others.e2]],
    [{ 'routes.name': 'FHIR' }, () => [others.e1]],
    [{ 'orchestrations.request.path': 'lookup/patient' }, () => [others.e1]],
    [{ 'orchestrations.response.status': '404' }, () => [others.e2]],
    [{ 'orchestrations.name': 'Lookup' }, () => [others.e1, others.e2]],
  ])('console filters %j (of the Completed with error(s) transactions)', async (filters, expected) => {
    const tids = expected();
    const withStatus = { ...filters, status: COMPLETED_WITH_ERRORS };
    expect((await dryRun(withStatus)).count).toBe(tids.length);
    const created = await run({ filters: JSON.stringify(withStatus), pauseQueue: true });
    expect(created.flatMap((task) => task.tids)).toEqual(tids);
  });

  describe('non-admins: limited to the channels whose txRerunAcl names one of their groups', () => {
    it('without channelID: only those channels', async () => {
      expect(await dryRun({ status: 'Failed' }, 'rerunner')).toMatchObject({ count: 7 });
      expect(await dryRun({ status: 'Failed' }, 'admin')).toMatchObject({ count: 8 });
      const created = await run(
        { filters: { status: 'Failed', 'request.timestamp': { $gte: at(5).toISOString() } }, pauseQueue: true },
        'rerunner',
      );
      expect(created.flatMap((task) => task.tids)).toEqual([failed[5], failed[6]]);
      expect(created[0].task.user).toBe(USERS.rerunner.email);
    });

    it('403 naming a channel they may not rerun; nothing for a user no channel names', async () => {
      const noAcl = CHANNELS.noAcl._id.toHexString();
      const response = await bulk({ filters: { channelID: noAcl } }, 'rerunner').expect(403);
      expect(response.text).toBe(`Forbidden: Unauthorized channel ${noAcl}`);
      expect(await dryRun({}, 'viewer')).toEqual({ dryRun: true, count: 0, tasks: [] });
      expect(await run({ filters: {} }, 'viewer')).toEqual([]);
    });
  });

  it('400 when matching transactions are on a disabled or deleted channel; nothing created', async () => {
    const [disabled] = await insertTransactions(env.db, [
      transactionDoc({ channel: 'disabled', status: 'Processing' }),
    ]);
    try {
      const before = await taskIds();
      const response = await bulk({ filters: { status: 'Processing' } }).expect(400);
      expect(response.text).toBe(DISABLED);
      expect((await bulk({ filters: { status: 'Processing' }, dryRun: true }).expect(400)).text).toBe(DISABLED);
      await app.get(BulkRerunService).idle();
      expect(await taskIds()).toEqual(before);
    } finally {
      await env.db.collection('transactions').deleteOne({ _id: new ObjectId(disabled) });
    }
  });

  it.each([
    [{ batchSize: 2 }, 'filters is required (use {} to select every transaction)'],
    [{ filters: {}, batchSize: 0 }, 'Invalid batch size specified'],
    [{ filters: {}, pauseQueue: 'yes' }, 'pauseQueue must be true or false (got "yes")'],
    [
      { filters: {}, limit: 5 },
      'Unknown field "limit" (allowed: filters, filterLimit, filterPage, batchSize, pauseQueue, dryRun, previewLimit, ratePerSecond, pauseAfterFailures, startAt, autoResume, notify, transform, edits)',
    ],
    [
      { filters: {}, filterLimit: 'all' },
      'filterLimit must be a whole number, 0 or more (got "all"); it is accepted and ignored, as in OpenHIM',
    ],
    [{ filters: 42 }, 'filters must be a JSON object, or a JSON string of one (got 42)'],
    [
      { filters: '{"status":' },
      expect.stringMatching(/^filters must be a JSON object, or a JSON string of one: .*JSON/),
    ],
    [
      { filters: { 'request.body': 'x' } },
      'Unknown transaction filter "request.body" (allowed: channelID, clientID, status, request.timestamp, ' +
        'request.method, request.path, request.querystring, request.host, request.port, response.status, childIDs, ' +
        'properties, and routes.<f> / orchestrations.<f> with <f> one of name, request.host, request.port, ' +
        'request.path, request.querystring, request.method, response.status)',
    ],
    [
      { filters: JSON.stringify({ 'request.path': '(' }) },
      'request.path is not a valid regular expression: Invalid regular expression: /(/i: Unterminated group',
    ],
    [
      { filters: { 'routes.request.path': 'a'.repeat(501) } },
      'routes.request.path must be at most 500 characters (got 501)',
    ],
    [
      { filters: JSON.stringify({ 'request.path': '^(/[a-z]+)+$' }) },
      'request.path must not repeat a group that itself repeats, like (a+)+ (matching such an expression can take exponential time)',
    ],
    [
      { filters: { 'request.path': { $regex: '.*' } } },
      'request.path must be a regular expression as a string (got {"$regex":".*"})',
    ],
    [
      { filters: JSON.stringify({ childIDs: '{"$where":"sleep(1000)"}' }) },
      'Unknown operator in childIDs: "$where" (allowed: $exists, $ne, $eq, $size, $not)',
    ],
    [{ filters: { childIDs: { $ne: null } } }, 'childIDs.$ne may only be [] (got null)'],
    [{ filters: { properties: { $where: '1' } } }, 'properties: "$where" is not a property name'],
    [
      { filters: { properties: { key: { $gt: '' } } } },
      'properties.key must be a string, a number, true/false or null (got {"$gt":""})',
    ],
    [
      { filters: '{"constructor":{"prototype":{}}}' },
      'Filter "constructor" is not allowed (__proto__, constructor and prototype are reserved)',
    ],
    [{ filters: { $where: 'sleep(1000)' } }, expect.stringMatching(/^Unknown transaction filter "\$where"/)],
    [{ filters: { channelID: { $ne: null } } }, 'channelID must be a 24-character hex id (got {"$ne":null})'],
    [
      { filters: { 'response.status': 'teapot' } },
      'response.status must be a status code like 404 or a class like "4xx" (got "teapot")',
    ],
    [
      { filters: { 'request.timestamp': '{"$gte":"soon"}' } },
      'request.timestamp.$gte must be an ISO 8601 date (got "soon")',
    ],
  ])('400 for %j; nothing created', async (body, message) => {
    const before = await taskIds();
    const response = await bulk(body).expect(400);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.text).toEqual(message);
    await app.get(BulkRerunService).idle();
    expect(await taskIds()).toEqual(before);
  });

  it('415 for a body that is not JSON; 401 without credentials', async () => {
    expect((await request(baseUrl).post('/bulkrerun').set(as('admin')).type('text').send('{}').expect(415)).text).toBe(
      'Content-Type must be application/json',
    );
    expect((await request(baseUrl).post('/bulkrerun').send({ filters: {} }).expect(401)).text).toBe('Unauthorized');
  });
});

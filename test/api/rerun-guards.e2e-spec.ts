import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { AppConfig } from '../../src/config/app-config';
import { startApiSuite } from '../support/api-suite';
import { insertTask } from '../support/database-fixtures';
import { CHANNELS, rerunQueue, USERS, type UserName } from '../support/fixtures';
import type { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

const UNAVAILABLE = 'The rerun queue (Redis) is unavailable, so nothing was changed. Try again when it is back.';
const NO_LIMIT_GIVEN =
  'The body must set maxInFlight, maxPerSecond or both (DELETE /rerun-guards/:channelId removes them)';
const ACL = CHANNELS.acl._id.toHexString();
const NO_ACL = CHANNELS.noAcl._id.toHexString();

/** What a channel without a guard document shows of its breaker. */
const CLOSED = { state: 'closed', failures: 0, probing: false };

/**
 * The downstream guards API (GET /rerun-guards, PUT and DELETE /rerun-guards/:channelId, admins
 * only) and its gauges, end to end: the real API, the embedded database and Redis, no worker. The
 * engine's side (a breaker, tasks waiting for it, permits in flight, lanes waiting for one) is
 * written directly where the engine keeps it.
 */
describe('rerun guards API', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;
  /** A second API on the same database and Redis, with GUARD_MAX_IN_FLIGHT=4. */
  let withDefaults: string;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({ QUEUE_TIMEOUT_MS: '1000', METRICS_CACHE_MS: '0' }));
    ({ baseUrl: withDefaults } = await env.startApi({
      AUTH_FAILURE_LIMIT: '0',
      QUEUE_TIMEOUT_MS: '1000',
      METRICS_CACHE_MS: '0',
      GUARD_MAX_IN_FLIGHT: '4',
    }));
  });
  afterAll(() => env?.stop());
  afterEach(async () => {
    await env.db.collection('rerunguards').deleteMany({});
    await env.db.collection('tasks').deleteMany({});
    await env.db.collection('taskitems').deleteMany({});
    const redis = rerunQueue(app).client;
    for (const channel of [ACL, NO_ACL]) await redis.del(inFlightKey(channel), waitingKey(channel));
  });

  const prefix = () => app.get(AppConfig).QUEUE_PREFIX;
  const inFlightKey = (channel: string) => `semaphore:${prefix()}:guard:${channel}:in-flight`;
  const waitingKey = (channel: string) => `${prefix()}:guard:${channel}:waiting`;
  const guardDocs = () =>
    env.db
      .collection('rerunguards')
      .find({}, { projection: { _id: 0 } })
      .toArray();
  const list = async (url = baseUrl) => (await request(url).get('/rerun-guards').set(as('admin')).expect(200)).body;
  const put = (channel: string, body: unknown, user: UserName = 'admin') =>
    request(baseUrl)
      .put(`/rerun-guards/${channel}`)
      .set(as(user))
      .send(body as object);
  const remove = (channel: string, user: UserName = 'admin') =>
    request(baseUrl).delete(`/rerun-guards/${channel}`).set(as(user));
  /** One sample of the Prometheus text, or undefined. */
  const sample = (text: string, name: string, channel: string) => {
    const line = text.split('\n').find((entry) => entry.startsWith(`${name}{channel="${channel}"} `));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  /** A task Paused waiting for the channel's probe, as the breaker leaves it. */
  const waitingTask = async (channel: string, status = 'Paused') => {
    const id = await insertTask(env.db, [new ObjectId().toHexString()], { status: 'Paused' });
    await env.db
      .collection('tasks')
      .updateOne({ _id: new ObjectId(id) }, { $set: { status, waitingFor: new ObjectId(channel) } });
    return id;
  };

  it('lists nothing while no channel has a guard and no default is set', async () => {
    expect(await list()).toEqual([]);
  });

  it('sets, replaces and removes limits: the answers, GET and the rerunguards collection agree', async () => {
    const set = await put(ACL, { maxInFlight: 3, maxPerSecond: 10 }).expect(200);
    expect(set.headers['content-type']).toMatch(/^application\/json/);
    const entry = {
      channelID: ACL,
      name: 'Rerunnable',
      maxInFlight: 3,
      maxPerSecond: 10,
      own: { maxInFlight: 3, maxPerSecond: 10 },
      inFlight: 0,
      breaker: CLOSED,
      waitingTasks: [],
      updatedBy: USERS.admin.email,
      updatedAt: expect.any(String),
    };
    expect(set.body).toEqual(entry);
    expect(Date.now() - Date.parse(set.body.updatedAt)).toBeLessThan(60000);
    expect(await guardDocs()).toEqual([
      {
        channelID: CHANNELS.acl._id,
        maxInFlight: 3,
        maxPerSecond: 10,
        updatedBy: USERS.admin.email,
        updatedAt: expect.any(Date),
      },
    ]);
    expect(await list()).toEqual([entry]);

    // Replaced, not merged: the limit left out falls back to its default (0 here: no limit).
    const replaced = await put(ACL, { maxInFlight: 1 }, 'root').expect(200);
    expect(replaced.body).toEqual({
      ...entry,
      maxInFlight: 1,
      maxPerSecond: 0,
      own: { maxInFlight: 1 },
      updatedBy: USERS.root.email,
    });
    expect(await guardDocs()).toEqual([
      { channelID: CHANNELS.acl._id, maxInFlight: 1, updatedBy: USERS.root.email, updatedAt: expect.any(Date) },
    ]);
    expect(await list()).toEqual([replaced.body]);

    // 0 is "no limit", set for the channel whatever the defaults.
    const unlimited = await put(NO_ACL, { maxInFlight: 0, maxPerSecond: 0 }).expect(200);
    expect(unlimited.body).toMatchObject({
      channelID: NO_ACL,
      maxInFlight: 0,
      own: { maxInFlight: 0, maxPerSecond: 0 },
    });
    expect((await list()).map((guard: { channelID: string }) => guard.channelID)).toEqual([ACL, NO_ACL]);

    // Removed: the defaults apply again, and a guard without limits or breaker state is gone.
    const removed = await remove(ACL).expect(200);
    expect(removed.body).toEqual({
      channelID: ACL,
      name: 'Rerunnable',
      maxInFlight: 0,
      maxPerSecond: 0,
      own: {},
      inFlight: 0,
      breaker: CLOSED,
      waitingTasks: [],
    });
    await remove(NO_ACL).expect(200);
    expect(await guardDocs()).toEqual([]);
    expect(await list()).toEqual([]);
    // Removing what is not there is no error: the channel exists.
    expect((await remove(ACL).expect(200)).body).toEqual(removed.body);
  });

  it('answers 403 to a non-admin on all three routes, and writes nothing', async () => {
    await put(ACL, { maxInFlight: 3 }).expect(200);
    const before = await guardDocs();
    for (const user of ['viewer', 'rerunner'] as const) {
      const denied = (op: string) => `User ${USERS[user].email} is not an admin, API access to ${op} denied.`;
      const get = await request(baseUrl).get('/rerun-guards').set(as(user)).expect(403);
      expect(get.headers['content-type']).toMatch(/^text\/plain/);
      expect(get.text).toBe(denied('getRerunGuards'));
      expect((await put(ACL, { maxInFlight: 9 }, user).expect(403)).text).toBe(denied('updateRerunGuard'));
      expect((await remove(ACL, user).expect(403)).text).toBe(denied('removeRerunGuard'));
    }
    expect(await guardDocs()).toEqual(before);
  });

  it('refuses bad input with a 400 or 404 naming it, and writes nothing', async () => {
    await put(NO_ACL, { maxInFlight: 3 }).expect(200);
    const before = await guardDocs();
    const refusals: Array<[unknown, string]> = [
      [{ maxInFlight: -1 }, 'maxInFlight must be a non-negative integer (got -1)'],
      [{ maxInFlight: 1.5 }, 'maxInFlight must be a non-negative integer (got 1.5)'],
      [{ maxPerSecond: '5' }, 'maxPerSecond must be a non-negative integer (got "5")'],
      [{ maxPerSecond: null }, 'maxPerSecond must be a non-negative integer (got null)'],
      [{ maxInFlight: true, maxPerSecond: 2 }, 'maxInFlight must be a non-negative integer (got true)'],
      [{ maxInFlight: 2, maxPerSecond: [1] }, 'maxPerSecond must be a non-negative integer (got [1])'],
      [{ maxInFlight: 2, extra: 1 }, 'Unknown field "extra" (allowed: maxInFlight, maxPerSecond)'],
      [{}, NO_LIMIT_GIVEN],
      [[], 'The request body must be a JSON object'],
    ];
    for (const [body, message] of refusals) {
      const response = await put(ACL, body).expect(400);
      expect([body, response.text]).toEqual([body, message]);
      expect(response.headers['content-type']).toMatch(/^text\/plain/);
    }
    // Two bad fields: both named.
    expect((await put(ACL, { maxInFlight: -1, maxPerSecond: -2 }).expect(400)).text).toBe(
      'maxInFlight must be a non-negative integer (got -1); maxPerSecond must be a non-negative integer (got -2)',
    );
    expect((await put(ACL, '{"maxInFlight": 1').set('Content-Type', 'application/json').expect(400)).text).toMatch(
      /^Malformed JSON body/,
    );
    expect((await put(ACL, 'maxInFlight=1').set('Content-Type', 'text/plain').expect(415)).text).toBe(
      'Content-Type must be application/json',
    );

    for (const bad of ['abc', `${ACL}0`, 'zz0000000000000000000c01']) {
      const text = `Invalid channel id ${JSON.stringify(bad)}: expected a 24-character hex id`;
      expect((await put(bad, { maxInFlight: 1 }).expect(400)).text).toBe(text);
      expect((await remove(bad).expect(400)).text).toBe(text);
    }
    const unknown = new ObjectId().toHexString();
    const notFound = `We could not find a channel with this ID: ${unknown}.`;
    expect((await put(unknown, { maxInFlight: 1 }).expect(404)).text).toBe(notFound);
    expect((await remove(unknown).expect(404)).text).toBe(notFound);

    expect(await guardDocs()).toEqual(before);
  });

  it("shows a channel's breaker and the tasks waiting for it: Paused by it, and lanes waiting for a permit", async () => {
    const openedAt = new Date(Date.now() - 60000);
    const nextProbeAt = new Date(Date.now() + 30000);
    await env.db.collection('rerunguards').insertOne({
      channelID: CHANNELS.noAcl._id,
      breaker: {
        state: 'open',
        failures: 20,
        lastError: 'OpenHIM answered 502',
        openedAt,
        backoffMs: 30000,
        nextProbeAt,
        probe: { owner: 'worker-1', until: new Date(Date.now() + 10000) },
        probes: 2,
      },
    });
    const paused = await waitingTask(NO_ACL);
    // Not waiting: a task a person resumed or cancelled since (the engine's field may linger).
    await waitingTask(NO_ACL, 'Cancelled');
    await insertTask(env.db, [new ObjectId().toHexString()], { status: 'Paused' });

    const entry = {
      channelID: NO_ACL,
      name: 'Admins only',
      maxInFlight: 0,
      maxPerSecond: 0,
      own: {},
      inFlight: 0,
      breaker: {
        state: 'open',
        failures: 20,
        lastError: 'OpenHIM answered 502',
        openedAt: openedAt.toISOString(),
        nextProbeAt: nextProbeAt.toISOString(),
        backoffMs: 30000,
        probing: true,
      },
      waitingTasks: [paused],
    };
    expect(await list()).toEqual([entry]);

    // A probe whose worker's hold ran out is not "probing".
    await env.db
      .collection('rerunguards')
      .updateOne({ channelID: CHANNELS.noAcl._id }, { $set: { 'breaker.probe.until': new Date(Date.now() - 1000) } });
    expect((await list())[0].breaker.probing).toBe(false);

    // With a limit, lanes waiting for a permit are listed too (entries whose time ran out are not).
    const lane = new ObjectId().toHexString();
    const redis = rerunQueue(app).client;
    await redis.zadd(waitingKey(NO_ACL), Date.now() + 60000, lane);
    await redis.zadd(waitingKey(NO_ACL), Date.now() - 1000, new ObjectId().toHexString());
    const limited = await put(NO_ACL, { maxInFlight: 2 }).expect(200);
    expect(limited.body).toMatchObject({ maxInFlight: 2, breaker: { state: 'open', failures: 20 } });
    expect(limited.body.waitingTasks).toEqual([paused, lane]);
    expect((await list())[0].waitingTasks).toEqual([paused, lane]);

    // Removing the limits leaves the breaker as it is (and its document).
    const removed = await remove(NO_ACL).expect(200);
    expect(removed.body).toMatchObject({ maxInFlight: 0, own: {}, breaker: { state: 'open', failures: 20 } });
    expect(removed.body.waitingTasks).toEqual([paused]);
    expect(await guardDocs()).toEqual([
      expect.objectContaining({ channelID: CHANNELS.noAcl._id, breaker: expect.objectContaining({ state: 'open' }) }),
    ]);
    expect(removed.body).not.toHaveProperty('updatedBy');
  });

  it('lists a guard whose channel is gone (no name), and lets its limits be removed but not set', async () => {
    const gone = new ObjectId();
    await env.db.collection('rerunguards').insertOne({ channelID: gone, maxInFlight: 2 });
    expect(await list()).toEqual([
      {
        channelID: gone.toHexString(),
        maxInFlight: 2,
        maxPerSecond: 0,
        own: { maxInFlight: 2 },
        inFlight: 0,
        breaker: CLOSED,
        waitingTasks: [],
      },
    ]);
    await put(gone.toHexString(), { maxInFlight: 3 }).expect(404);
    expect((await remove(gone.toHexString()).expect(200)).body).toMatchObject({ maxInFlight: 0, own: {} });
    expect(await guardDocs()).toEqual([]);
  });

  it('counts the reruns in flight from Redis, and /metrics shows them and the breakers', async () => {
    await put(ACL, { maxInFlight: 3 }).expect(200);
    await env.db
      .collection('rerunguards')
      .insertOne({ channelID: CHANNELS.noAcl._id, breaker: { state: 'open', failures: 20 } });
    const redis = rerunQueue(app).client;
    // Two permits held now; one whose lease ran out long ago (its worker died) does not count.
    await redis.zadd(inFlightKey(ACL), Date.now(), 'permit-1', Date.now(), 'permit-2');
    await redis.zadd(inFlightKey(ACL), Date.now() - 10 * app.get(AppConfig).WORKER_LEASE_MS, 'permit-0');

    const guards = await list();
    expect(guards.map((guard: { channelID: string; inFlight: number }) => [guard.channelID, guard.inFlight])).toEqual([
      [ACL, 2],
      [NO_ACL, 0],
    ]);

    const metrics = (await request(baseUrl).get('/metrics').expect(200)).text;
    expect(metrics).toContain('# TYPE openhim_rerun_channel_reruns_in_flight gauge');
    expect(metrics).toContain('# TYPE openhim_rerun_channel_breaker_open gauge');
    expect(sample(metrics, 'openhim_rerun_channel_reruns_in_flight', ACL)).toBe(2);
    // No limit in force on the channel whose breaker is open: no in-flight figure.
    expect(sample(metrics, 'openhim_rerun_channel_reruns_in_flight', NO_ACL)).toBeUndefined();
    expect(sample(metrics, 'openhim_rerun_channel_breaker_open', ACL)).toBe(0);
    expect(sample(metrics, 'openhim_rerun_channel_breaker_open', NO_ACL)).toBe(1);
  });

  it('with GUARD_MAX_IN_FLIGHT set, lists every channel with the default, its own limits where set', async () => {
    await put(ACL, { maxInFlight: 1, maxPerSecond: 5 }).expect(200);
    await rerunQueue(app).client.zadd(inFlightKey(NO_ACL), Date.now(), 'permit-1');
    const guards = await list(withDefaults);
    const byDefault = (channel: keyof typeof CHANNELS, inFlight = 0) => ({
      channelID: CHANNELS[channel]._id.toHexString(),
      name: CHANNELS[channel].name,
      maxInFlight: 4,
      maxPerSecond: 0,
      own: {},
      inFlight,
      breaker: CLOSED,
      waitingTasks: [],
    });
    expect(guards).toEqual([
      {
        ...byDefault('acl'),
        maxInFlight: 1,
        maxPerSecond: 5,
        own: { maxInFlight: 1, maxPerSecond: 5 },
        updatedBy: USERS.admin.email,
        updatedAt: expect.any(String),
      },
      byDefault('noAcl', 1),
      byDefault('disabled'),
      byDefault('deleted'),
    ]);

    // A limit left out falls back to the default, here 4.
    const replaced = await request(withDefaults)
      .put(`/rerun-guards/${ACL}`)
      .set(as('admin'))
      .send({ maxPerSecond: 5 })
      .expect(200);
    expect(replaced.body).toMatchObject({ maxInFlight: 4, maxPerSecond: 5, own: { maxPerSecond: 5 } });
    const removed = await request(withDefaults).delete(`/rerun-guards/${ACL}`).set(as('admin')).expect(200);
    expect(removed.body).toEqual(byDefault('acl'));

    const metrics = (await request(withDefaults).get('/metrics').expect(200)).text;
    expect(sample(metrics, 'openhim_rerun_channel_reruns_in_flight', NO_ACL)).toBe(1);
    for (const channel of Object.values(CHANNELS)) {
      expect(sample(metrics, 'openhim_rerun_channel_reruns_in_flight', channel._id.toHexString())).toEqual(
        expect.any(Number),
      );
    }
  });

  it('answers 503 while Redis is away where a figure of it is needed, and writes nothing; /metrics still answers', async () => {
    await env.db
      .collection('rerunguards')
      .insertOne({ channelID: CHANNELS.noAcl._id, breaker: { state: 'open', failures: 20 } });
    await env.redis.stop();
    try {
      // No limit in force anywhere: nothing to read from Redis.
      expect(await list()).toEqual([expect.objectContaining({ channelID: NO_ACL })]);
      const before = await guardDocs();
      for (const response of [
        await put(ACL, { maxInFlight: 3 }).expect(503),
        await remove(NO_ACL).expect(503),
        await request(withDefaults).get('/rerun-guards').set(as('admin')).expect(503),
      ]) {
        expect(response.text).toBe(UNAVAILABLE);
      }
      expect(await guardDocs()).toEqual(before);

      const metrics = (await request(withDefaults).get('/metrics').expect(200)).text;
      expect(metrics).not.toContain('openhim_rerun_channel_reruns_in_flight{');
      expect(sample(metrics, 'openhim_rerun_channel_breaker_open', NO_ACL)).toBe(1);
    } finally {
      await env.redis.start();
    }
    await waitFor('GET /rerun-guards to answer again', async () => {
      const response = await request(withDefaults).get('/rerun-guards').set(as('admin'));
      return response.status === 200 ? true : undefined;
    });
  });
});

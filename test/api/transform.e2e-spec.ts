import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { loadConfig } from '../../src/config/app-config';
import { validateEdits, validateTransform } from '../../src/rerun/transform/request-transform';
import { BulkRerunService } from '../../src/tasks/bulk-rerun.service';
import { TRANSFORM_FORBIDDEN } from '../../src/tasks/task-transforms';
import { PREVIEW_BATCH } from '../../src/tasks/transform-preview.service';
import { insertChannel, insertTransactions, readItems, readTask } from '../support/database-fixtures';
import { CLIENT_ID, transactionDoc, UserName, USERS } from '../support/fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';

const createdId = (text: string) => /created task with id ([0-9a-f]{24})$/.exec(text)![1];

const patient = (id: string, gender: string, system = 'http://old.example.org/id') =>
  JSON.stringify({ resourceType: 'Patient', id, gender, identifier: [{ system, value: id }] });
const HL7 = 'MSH|^~\\&|LAB|OLD_FACILITY|EMR|HOSP|20240501100000||ORU^R01|1|P|2.5\rPID|1||123^^^HOSP||DOE^JANE';

/** A transaction of core's shape (fixtures.ts), with this body, content-type and channel. */
function transaction(
  body: string | undefined,
  options: { contentType?: string; channelID?: ObjectId; path?: string; method?: string; timestamp?: Date } = {},
) {
  const doc = transactionDoc({ timestamp: options.timestamp });
  return {
    ...doc,
    ...(options.channelID ? { channelID: options.channelID } : {}),
    request: {
      ...doc.request,
      method: options.method ?? 'POST',
      path: options.path ?? '/fhir/Patient',
      querystring: '',
      headers: { 'content-type': options.contentType ?? 'application/fhir+json', 'x-legacy-token': 'secret' },
      body,
    },
  };
}

const FHIR_FIX = [
  { op: 'test', path: '/resourceType', value: 'Patient' },
  { op: 'replace', path: '/identifier/0/system', value: 'http://moh.example.org/nid' },
];

/**
 * "Fix, then rerun" (issue 24) through the API: `transform` and `edits` on POST /tasks, POST
 * /bulkrerun and POST /tasks/:id/rerun-failed (stored, shown, audited), who may send them
 * (TRANSFORM_GROUPS), what is refused (400 naming the field, nothing written) and the `dryRun`
 * preview. What the worker then sends is test/engine/transform.e2e-spec.ts's.
 */
describe('transformed reruns (API)', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;
  /** Another API on the same database, with TRANSFORM_GROUPS=rerunners. */
  let widenedUrl: string;

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({ BULK_RERUN_TASK_SIZE: '2' }));
    ({ baseUrl: widenedUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '0', TRANSFORM_GROUPS: 'rerunners' }));
  });
  afterAll(() => env?.stop());

  const tasks = () => env.db.collection('tasks');
  const counts = async () => ({
    tasks: await tasks().countDocuments(),
    items: await env.db.collection('taskitems').countDocuments(),
  });
  const post = (path: string, body: object, user: UserName = 'admin', url = baseUrl) =>
    request(url).post(path).set(as(user)).send(body);
  const create = async (body: object, user: UserName = 'admin', url = baseUrl) =>
    createdId((await post('/tasks', body, user, url).expect(201)).text);
  const read = async (id: string) =>
    (await request(baseUrl).get(`/tasks/${id}?filterLimit=1000`).set(as('admin')).expect(200)).body;
  /** The tasks created since `before` (their ids), oldest first, once the bulk reruns are done. */
  const tasksSince = async (before: Set<string>) => {
    await app.get(BulkRerunService).idle();
    return (await tasks().find().sort({ created: 1, _id: 1 }).toArray()).filter(
      (task) => !before.has(String(task._id)),
    );
  };

  describe('POST /tasks with transform and edits', () => {
    it('stores the transform and the edits, shows the transform, and says so in the history', async () => {
      const tids = await insertTransactions(env.db, [
        transaction(patient('p0', 'male')),
        transaction(patient('p1', 'female')),
        transaction(patient('p2', 'other')),
      ]);
      const transform = {
        body: FHIR_FIX,
        headers: { set: { 'Content-Type': 'application/fhir+json; charset=utf-8' }, remove: ['x-legacy-token'] },
        path: { pattern: '^/fhir/', replacement: '/fhir/r4/' },
      };
      const edit = { tid: tids[1].toUpperCase(), body: patient('p1', 'female', 'http://moh.example.org/nid') };
      const id = await create({ tids, paused: true, transform, edits: [edit] });

      const stored = await readTask(env.db, id);
      // As given, normalised: the default flags are filled in.
      const normalised = { ...transform, path: { ...transform.path, flags: 'g' } };
      expect(stored).toMatchObject({ transform: normalised, hasEdits: true, totalTransactions: 3 });
      const shown = await read(id);
      expect(shown.transform).toEqual(normalised);
      expect(shown).not.toHaveProperty('hasEdits');
      expect(shown.history).toEqual([
        {
          at: expect.any(String),
          action: 'created',
          user: USERS.admin.email,
          reason:
            'transforms its requests: body (JSON Patch, 2 operations), headers (set 1, remove 1), path; 1 single edit',
        },
      ]);
      const listed = (await request(baseUrl).get('/tasks?filterLimit=0').set(as('admin')).expect(200)).body.find(
        (task: { _id: string }) => task._id === id,
      );
      expect(listed.transform).toEqual(normalised);
      // The edit sits on its item (tid in lower case, without the tid), the others have none.
      const items = await readItems(env.db, id);
      expect(items.map((item) => item.edit)).toEqual([undefined, { body: edit.body }, undefined]);
      // The original transactions are untouched.
      const original = await env.db.collection('transactions').findOne({ _id: new ObjectId(tids[0]) });
      expect(original!.request.body).toBe(patient('p0', 'male'));
    });

    it('stores edits alone (no transform), and a task without either has neither', async () => {
      const tids = await insertTransactions(env.db, [transaction(HL7, { contentType: 'x-application/hl7-v2+er7' })]);
      const id = await create({ tids, paused: true, edits: [{ tid: tids[0], headers: { 'x-fixed': 'yes' } }] });
      const stored = await readTask(env.db, id);
      expect(stored).not.toHaveProperty('transform');
      expect(stored).toMatchObject({
        hasEdits: true,
        history: [expect.objectContaining({ reason: 'transforms its requests: 1 single edit' })],
      });
      expect((await readItems(env.db, id))[0].edit).toEqual({ headers: { 'x-fixed': 'yes' } });

      const plain = await readTask(env.db, await create({ tids, paused: true, edits: [] }));
      expect(plain).not.toHaveProperty('transform');
      expect(plain).not.toHaveProperty('hasEdits');
      expect(plain!.history[0]).not.toHaveProperty('reason');
    });

    it('describes a text replacement in the history', async () => {
      const tids = await insertTransactions(env.db, [transaction(HL7, { contentType: 'x-application/hl7-v2+er7' })]);
      const id = await create({
        tids,
        paused: true,
        transform: { bodyReplace: { pattern: '\\|OLD_FACILITY\\|', replacement: '|NEW_FACILITY|' } },
      });
      expect((await read(id)).history[0].reason).toBe('transforms its requests: body (text replacement)');
    });
  });

  describe('who may transform: TRANSFORM_GROUPS', () => {
    it('refuses a user in none of its groups with a 403 naming the setting, and writes nothing', async () => {
      const tids = await insertTransactions(env.db, [transaction(patient('p0', 'male'))]);
      // The rerunner may rerun this transaction (its channel's ACL), just not transform it.
      await create({ tids, paused: true }, 'rerunner');
      const before = await counts();
      for (const body of [
        { tids, transform: { body: FHIR_FIX } },
        { tids, edits: [{ tid: tids[0], body: '{}' }] },
        { tids, dryRun: true },
      ]) {
        const response = await post('/tasks', body, 'rerunner').expect(403);
        expect(response.text).toBe(TRANSFORM_FORBIDDEN);
        expect(response.text).toContain('TRANSFORM_GROUPS');
      }
      await post('/bulkrerun', { filters: {}, transform: { body: FHIR_FIX } }, 'rerunner').expect(
        403,
        TRANSFORM_FORBIDDEN,
      );
      await post('/bulkrerun', { filters: {}, dryRun: true, previewLimit: 1 }, 'rerunner').expect(
        403,
        TRANSFORM_FORBIDDEN,
      );
      await app.get(BulkRerunService).idle();
      expect(await counts()).toEqual(before);
      // A plain dry run of a bulk rerun shows no request: anyone may still ask for it.
      await post('/bulkrerun', { filters: {}, dryRun: true }, 'rerunner').expect(200);
    });

    it('lets the users of a group it lists transform (and admins only when it lists theirs)', async () => {
      const tids = await insertTransactions(env.db, [transaction(patient('p0', 'male'))]);
      const id = await create({ tids, paused: true, transform: { body: FHIR_FIX } }, 'rerunner', widenedUrl);
      expect(await readTask(env.db, id)).toMatchObject({ transform: { body: FHIR_FIX }, user: USERS.rerunner.email });
      const preview = await post(
        '/tasks',
        { tids, transform: { body: FHIR_FIX }, dryRun: true },
        'rerunner',
        widenedUrl,
      ).expect(200);
      expect(preview.body).toMatchObject({ matched: 1, applies: 1 });
      await post('/tasks', { tids, transform: { body: FHIR_FIX } }, 'admin', widenedUrl).expect(
        403,
        TRANSFORM_FORBIDDEN,
      );
      // The channel checks still apply: a transaction the rerunner may not rerun.
      const [adminsOnly] = await insertTransactions(env.db, [transactionDoc({ channel: 'noAcl' })]);
      await post('/tasks', { tids: [adminsOnly], transform: { body: FHIR_FIX } }, 'rerunner', widenedUrl).expect(
        403,
        'Insufficient permissions prevents this rerun task from being created',
      );
      await post('/tasks', { tids: [adminsOnly], dryRun: true }, 'rerunner', widenedUrl).expect(403);
    });

    it('reads the setting as comma-separated group names, their case kept; an empty list is refused', () => {
      expect(loadConfig({}).TRANSFORM_GROUPS).toEqual(['admin']);
      expect(loadConfig({ TRANSFORM_GROUPS: ' admin , Data Fixers,' }).TRANSFORM_GROUPS).toEqual([
        'admin',
        'Data Fixers',
      ]);
      expect(() => loadConfig({ TRANSFORM_GROUPS: ' , ' })).toThrow(/TRANSFORM_GROUPS must name at least one group/);
    });
  });

  describe('what is refused: 400 naming the field, nothing written', () => {
    let tid: string;
    beforeAll(async () => {
      [tid] = await insertTransactions(env.db, [transaction(patient('p0', 'male'))]);
    });
    const other = new ObjectId().toHexString();

    it.each([
      [
        'a patch operation that does not exist',
        { transform: { body: [{ op: 'frobnicate', path: '/a' }] } },
        'transform.body[0].op must be one of add, remove, replace, move, copy, test (got "frobnicate")',
      ],
      [
        'a patch path that is not a JSON Pointer',
        { transform: { body: [{ op: 'remove', path: 'gender' }] } },
        'transform.body[0].path must be a JSON Pointer',
      ],
      [
        'an unsafe regular expression',
        { transform: { bodyReplace: { pattern: '(a+)+$', replacement: 'b' } } },
        'transform.bodyReplace.pattern must not repeat a group that itself repeats, like (a+)+',
      ],
      [
        'a path pattern that does not compile',
        { transform: { path: { pattern: '([', replacement: '/' } } },
        'transform.path.pattern is not a valid regular expression',
      ],
      [
        'body and bodyReplace together',
        { transform: { body: FHIR_FIX, bodyReplace: { pattern: 'a', replacement: 'b' } } },
        'transform may give body (a JSON Patch) or bodyReplace (a text replacement), not both',
      ],
      [
        'a header the rerun sets itself',
        { transform: { headers: { set: { 'Content-Length': '12' } } } },
        'transform.headers.set may not set "Content-Length"',
      ],
      ['an empty transform', { transform: {} }, 'transform must give at least one of body, bodyReplace, headers, path'],
      [
        'an unknown key',
        { transform: { query: { pattern: 'a', replacement: 'b' } } },
        'Unknown key "query" in transform (allowed: body, bodyReplace, headers, path)',
      ],
      ['an edit without a tid', { edits: [{ body: '{}' }] }, 'edits[0].tid must be a 24-character hex transaction id'],
      [
        'more than 1000 edits',
        { edits: Array.from({ length: 1001 }, () => ({ tid: new ObjectId().toHexString(), body: '' })) },
        'edits must hold at most 1000 edits (got 1001)',
      ],
      ['previewLimit above 50', { dryRun: true, previewLimit: 51 }, 'previewLimit must be a whole number from 0 to 50'],
      ['previewLimit without dryRun', { previewLimit: 3 }, 'previewLimit is only used with dryRun: true'],
    ])('%s', async (_, fields, message) => {
      const before = await counts();
      const created = await post('/tasks', { tids: [tid], ...fields }).expect(400);
      expect(created.text).toContain(message);
      const bulk = await post('/bulkrerun', { filters: { channelID: new ObjectId().toHexString() }, ...fields });
      expect([bulk.status, bulk.text]).toEqual([400, expect.stringContaining(message)]);
      await app.get(BulkRerunService).idle();
      expect(await counts()).toEqual(before);
    });

    it('an edit of a transaction the task does not rerun', async () => {
      const before = await counts();
      await post('/tasks', { tids: [tid], edits: [{ tid: other, body: '{}' }] }).expect(
        400,
        `edits[0].tid "${other}" is not among the task's tids: an edit replaces a part of one of the task's own requests`,
      );
      await post('/tasks', { tids: [tid], dryRun: true, edits: [{ tid: other, body: '{}' }] }).expect(400);
      const channel = await insertChannel(env.db, { txRerunAcl: [] });
      await insertTransactions(env.db, [transaction(patient('p9', 'male'), { channelID: channel })]);
      await post('/bulkrerun', {
        filters: { channelID: channel.toHexString() },
        edits: [{ tid, body: '{}' }],
      }).expect(
        400,
        `edits[0].tid "${tid}" is not among the transactions the filters match: an edit replaces a part of one ` +
          "of the task's own requests",
      );
      await app.get(BulkRerunService).idle();
      expect(await counts()).toEqual(before);
    });
  });

  describe('dryRun: the preview', () => {
    it('counts what the transform applies to, fails on and leaves unchanged, with samples before and after', async () => {
      const docs = [
        transaction(patient('p0', 'male')), // applies
        transaction(JSON.stringify({ resourceType: 'Observation', id: 'o1' })), // the test fails
        transaction(HL7, { contentType: 'x-application/hl7-v2+er7' }), // not JSON
        transaction(patient('p3', 'male', 'http://moh.example.org/nid')), // already fixed: unchanged
        transaction('{"resourceType":"Patient", "broken', { contentType: 'application/json' }), // edited: applies
      ];
      const tids = await insertTransactions(env.db, docs);
      const missing = new ObjectId().toHexString();
      const all = [...tids.slice(0, 3), missing, ...tids.slice(3)];
      const before = await counts();
      const edited = patient('p4', 'female', 'http://moh.example.org/nid');
      const body = { tids: all, transform: { body: FHIR_FIX }, edits: [{ tid: tids[4], body: edited }], dryRun: true };

      const response = await post('/tasks', body).expect(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.headers).not.toHaveProperty('location');
      const preview = response.body;
      expect(preview).toMatchObject({ dryRun: true, matched: 6, applies: 2, unchanged: 1, fails: 3 });
      // The first five (previewLimit's default), in task order.
      expect(preview.samples.map((sample: { tid: string }) => sample.tid)).toEqual(all.slice(0, 5));
      const [fixed, observation, hl7, gone, same] = preview.samples;
      const headers = (tid: string, contentType = 'application/fhir+json') => ({
        'content-type': contentType,
        'x-legacy-token': 'secret',
        clientID: CLIENT_ID.toHexString(),
        parentID: tid,
      });
      expect(fixed).toEqual({
        tid: tids[0],
        before: { method: 'POST', path: '/fhir/Patient', headers: headers(tids[0]), body: patient('p0', 'male') },
        after: {
          method: 'POST',
          path: '/fhir/Patient',
          headers: headers(tids[0]),
          body: patient('p0', 'male', 'http://moh.example.org/nid'),
        },
      });
      expect(observation).toMatchObject({
        tid: tids[1],
        before: { body: docs[1].request.body },
        after: null,
        error:
          'The transform could not be applied: transform.body[0] (test /resourceType) failed: Test operation failed',
      });
      expect(hl7).toMatchObject({ tid: tids[2], after: null, error: expect.stringContaining('the body is not JSON') });
      expect(gone).toEqual({
        tid: missing,
        before: null,
        after: null,
        error: `Transaction ${missing} could not be found`,
      });
      expect(same).toMatchObject({ tid: tids[3] });
      expect(same.after).toEqual(same.before);

      // previewLimit: fewer samples, the same counts.
      const two = (await post('/tasks', { ...body, previewLimit: 2 }).expect(200)).body;
      expect(two).toMatchObject({ matched: 6, applies: 2, unchanged: 1, fails: 3 });
      expect(two.samples).toHaveLength(2);
      const last = (await post('/tasks', { ...body, previewLimit: 6 }).expect(200)).body.samples[5];
      expect(last).toMatchObject({ tid: tids[4], after: { body: edited } });
      expect(await counts()).toEqual(before);
    });

    it('previews headers and a path rewrite, and a task without a transform (every request unchanged)', async () => {
      const [tid] = await insertTransactions(env.db, [
        transaction(patient('p0', 'male'), { path: '/fhir/r3/Patient' }),
      ]);
      const transform = {
        headers: { set: { 'Content-Type': 'application/fhir+json; fhirVersion=4.0' }, remove: ['X-Legacy-Token'] },
        path: { pattern: '^/fhir/r3/', replacement: '/fhir/r4/' },
      };
      const { samples } = (await post('/tasks', { tids: [tid], transform, dryRun: true }).expect(200)).body;
      expect(samples[0].after).toEqual({
        method: 'POST',
        path: '/fhir/r4/Patient',
        headers: {
          'content-type': 'application/fhir+json; fhirVersion=4.0',
          clientID: CLIENT_ID.toHexString(),
          parentID: tid,
        },
        body: patient('p0', 'male'),
      });
      const plain = (await post('/tasks', { tids: [tid], dryRun: true }).expect(200)).body;
      expect(plain).toMatchObject({ matched: 1, applies: 0, unchanged: 1, fails: 0 });
      expect(plain.samples[0].after).toEqual(plain.samples[0].before);
    });

    it(`counts every transaction, read in batches of ${PREVIEW_BATCH}`, async () => {
      const count = PREVIEW_BATCH * 2 + 50;
      const tids = await insertTransactions(env.db, count, (index) => ({
        method: 'POST',
        headers: { 'content-type': index % 3 === 0 ? 'text/plain' : 'application/json' },
        body: index % 5 === 0 ? '{"resourceType":"Patient","active":false}' : '{"resourceType":"Patient"}',
      }));
      const transform = { body: [{ op: 'add', path: '/active', value: false }] };
      const preview = (await post('/tasks', { tids, transform, dryRun: true, previewLimit: 50 }).expect(200)).body;
      const fails = tids.filter((_, index) => index % 3 === 0).length;
      const unchanged = tids.filter((_, index) => index % 3 !== 0 && index % 5 === 0).length;
      expect(preview).toMatchObject({ matched: count, fails, unchanged, applies: count - fails - unchanged });
      expect(preview.samples).toHaveLength(50);
    });

    it('POST /bulkrerun adds the preview to its plan, oldest first, and creates nothing', async () => {
      const channel = await insertChannel(env.db, { txRerunAcl: [] });
      const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 10, minute));
      const tids = await insertTransactions(env.db, [
        transaction(JSON.stringify({ resourceType: 'Observation' }), { channelID: channel, timestamp: at(2) }),
        transaction(patient('p0', 'male'), { channelID: channel, timestamp: at(1) }),
        transaction(patient('p1', 'male'), { channelID: channel, timestamp: at(3) }),
      ]);
      const before = await counts();
      const filters = { channelID: channel.toHexString() };
      const plan = (
        await post('/bulkrerun', {
          filters,
          transform: { body: FHIR_FIX },
          edits: [{ tid: tids[2], body: '{}' }],
          dryRun: true,
          previewLimit: 2,
        }).expect(200)
      ).body;
      expect(plan).toMatchObject({
        dryRun: true,
        count: 3,
        tasks: [2, 1],
        matched: 3,
        applies: 2,
        fails: 1,
        unchanged: 0,
      });
      expect(plan.samples.map((sample: { tid: string }) => sample.tid)).toEqual([tids[1], tids[0]]);
      // Without transform, edits or previewLimit: the plan alone.
      expect((await post('/bulkrerun', { filters, dryRun: true }).expect(200)).body).toEqual({
        dryRun: true,
        count: 3,
        tasks: [2, 1],
      });
      await app.get(BulkRerunService).idle();
      expect(await counts()).toEqual(before);
    });
  });

  describe('POST /bulkrerun with transform and edits', () => {
    it('gives every task the transform, and the edits of its own transactions', async () => {
      const channel = await insertChannel(env.db, { txRerunAcl: [] });
      const at = (minute: number) => new Date(Date.UTC(2024, 4, 2, 10, minute));
      const tids = await insertTransactions(
        env.db,
        [0, 1, 2].map((minute) =>
          transaction(patient(`p${minute}`, 'male'), { channelID: channel, timestamp: at(minute) }),
        ),
      );
      const before = new Set((await tasks().find().toArray()).map((task) => String(task._id)));
      const transform = { path: { pattern: '^/fhir/', replacement: '/fhir/r4/', flags: '' } };
      await post('/bulkrerun', {
        filters: { channelID: channel.toHexString() },
        pauseQueue: true,
        transform,
        edits: [
          { tid: tids[0], body: 'zero' },
          { tid: tids[2], body: 'two' },
        ],
      }).expect(200);
      const created = await tasksSince(before);
      expect(created).toHaveLength(2);
      for (const task of created) {
        expect(task).toMatchObject({
          transform,
          hasEdits: true,
          history: [
            expect.objectContaining({
              action: 'created',
              reason: 'bulk rerun; transforms its requests: path; 1 single edit',
            }),
          ],
        });
      }
      const items = await Promise.all(created.map((task) => readItems(env.db, String(task._id))));
      expect(items.map((list) => list.map((item) => [item.tid, item.edit?.body]))).toEqual([
        [
          [tids[0], 'zero'],
          [tids[1], undefined],
        ],
        [[tids[2], 'two']],
      ]);
    });
  });

  describe('POST /tasks/:id/rerun-failed', () => {
    /** A cancelled task with a transform and edits: items 0 and 1 failed (1 with its edit), 2 succeeded (edited). */
    const finishedTransformingTask = async () => {
      const tids = await insertTransactions(
        env.db,
        [0, 1, 2].map((index) => transaction(patient(`p${index}`, 'male'))),
      );
      const transform = { body: FHIR_FIX, headers: { remove: ['x-legacy-token'] } };
      const id = await create({
        tids,
        paused: true,
        transform,
        edits: [
          { tid: tids[1], body: 'one' },
          { tid: tids[2], body: 'two' },
        ],
      });
      const taskId = new ObjectId(id);
      await tasks().updateOne({ _id: taskId }, { $set: { status: 'Cancelled' } });
      const items = env.db.collection('taskitems');
      await items.updateOne(
        { taskId, seq: 0 },
        { $set: { tstatus: 'Failed', error: 'The transform could not be applied' } },
      );
      await items.updateOne({ taskId, seq: 1 }, { $set: { tstatus: 'Completed', rerunStatus: 'Failed' } });
      await items.updateOne({ taskId, seq: 2 }, { $set: { tstatus: 'Completed', rerunStatus: 'Successful' } });
      return { id, tids, transform };
    };

    it('carries the transform over, and the edits of the failed items', async () => {
      const source = await finishedTransformingTask();
      const response = await request(baseUrl).post(`/tasks/${source.id}/rerun-failed`).set(as('admin')).expect(201);
      const id = createdId(response.text);
      const task = await readTask(env.db, id);
      expect(task).toMatchObject({ transform: source.transform, hasEdits: true, rerunOf: source.id });
      expect(task!.history[0].reason).toBe(
        `rerun of the failed transactions of task ${source.id}; transforms its requests: body (JSON Patch, 2 ` +
          'operations), headers (remove 1); 1 single edit',
      );
      expect((await readItems(env.db, id)).map((item) => [item.tid, item.edit])).toEqual([
        [source.tids[0], undefined],
        [source.tids[1], { body: 'one' }],
      ]);
    });

    it('refuses a user outside TRANSFORM_GROUPS (403), creating nothing', async () => {
      const source = await finishedTransformingTask();
      const before = await counts();
      await request(baseUrl)
        .post(`/tasks/${source.id}/rerun-failed`)
        .set(as('rerunner'))
        .expect(403, TRANSFORM_FORBIDDEN);
      expect(await counts()).toEqual(before);
    });
  });

  describe('OpenAPI', () => {
    it('documents transform, edits, dryRun and previewLimit, with examples that pass the checks', async () => {
      type Doc = {
        paths: Record<string, Record<string, any>>;
        components: { schemas: Record<string, { properties: Record<string, any> }> };
      };
      const doc = (await request(baseUrl).get('/api-docs-json').expect(200)).body as Doc;
      for (const schema of ['CreateTaskDto', 'BulkRerunDto']) {
        const properties = doc.components.schemas[schema].properties;
        expect(properties.transform).toMatchObject({ type: 'object', properties: expect.any(Object) });
        expect(Object.keys(properties.transform.properties)).toEqual(['body', 'bodyReplace', 'headers', 'path']);
        expect(properties.edits).toMatchObject({ type: 'array', maxItems: 1000 });
        expect(properties.previewLimit).toMatchObject({ type: 'integer', minimum: 0, maximum: 50, default: 5 });
        expect(properties.dryRun).toBeDefined();
        expect(() => validateTransform(properties.transform.example)).not.toThrow();
        expect(() => validateEdits(properties.edits.example)).not.toThrow();
      }
      expect(doc.components.schemas.TaskView.properties.transform).toBeDefined();
      const create = doc.paths['/tasks'].post;
      const examples = create.requestBody.content['application/json'].examples as Record<string, { value: any }>;
      expect(Object.keys(examples)).toEqual(
        expect.arrayContaining(['fhirJsonPatch', 'hl7Replacement', 'headersAndPath', 'singleEdit', 'preview']),
      );
      for (const { value } of Object.values(examples)) {
        if (value.transform) expect(() => validateTransform(value.transform)).not.toThrow();
        if (value.edits) expect(() => validateEdits(value.edits)).not.toThrow();
      }
      expect(create.responses['200'].content['application/json'].schema.$ref).toMatch(/TransformPreviewResponse$/);
      expect(create.responses['403'].description).toContain('TRANSFORM_GROUPS');
    });
  });
});

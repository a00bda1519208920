import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { BulkRerunService } from '../../src/tasks/bulk-rerun.service';
import { CHANNELS, transactionDoc, UserName } from '../support/fixtures';
import { insertTransactions } from '../support/database-fixtures';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

/** A small stand-in for MongoDB 4.2's 32 MB: the same refusal, reached with a few thousand documents. */
const SORT_LIMIT_BYTES = 256 * 1024;
const TRANSACTIONS = 1500;
const TASKS = 1200;

/**
 * On MongoDB 4.2 a `find` whose sort no index gives holds the documents in memory and fails past
 * 32 MB (code 96; `allowDiskUse` on `find` exists only from 4.4), and an aggregation's `$sort` past
 * 100 MB unless it allows the disk. The bulk rerun's oldest-first selection and the task list must
 * work whatever their size: here the embedded server announces 4.2 and enforces a limit small enough
 * for a few thousand documents to exceed it, as 200 000 transactions or 50 000 tasks exceed 32 MB.
 * (`npm run bench:mongodb-sorts` runs the real sizes with the real limit.)
 */
describe('Sorts a MongoDB 4.2 refuses in memory', () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;
  let tids: string[];

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite(
      { BULK_RERUN_TASK_SIZE: '500' },
      { mongo: { mongodbVersion: '4.2' } },
    ));
    // Newest first on disk, with a body that makes each document about 1 KB.
    const docs = Array.from({ length: TRANSACTIONS }, (_, i) =>
      Object.assign(transactionDoc({ timestamp: new Date(Date.UTC(2024, 0, 1) + (TRANSACTIONS - i) * 1000) }), {
        response: { status: 500, body: 'x'.repeat(1000) },
      }),
    );
    tids = (await insertTransactions(env.db, docs)).reverse();
    const created = new Date(Date.UTC(2024, 0, 1));
    await env.db.collection('tasks').insertMany(
      Array.from({ length: TASKS }, (_, i) => ({
        status: 'Completed',
        created: new Date(created.getTime() + i * 1000),
        user: 'root@openhim.org',
        transactions: [],
        totalTransactions: 0,
        remainingTransactions: 0,
        batchSize: 1,
        // Core's tasks carry their transactions; this stands for their weight.
        note: 'y'.repeat(1000),
      })),
    );
    const admin = env.client.db('admin');
    await admin.command({ setParameter: 1, internalQueryExecMaxBlockingSortBytes: SORT_LIMIT_BYTES });
    await admin.command({ setParameter: 1, internalDocumentSourceSortMaxBlockingSortBytes: SORT_LIMIT_BYTES });
    // The task list's index is created by the service at start (in the background).
    await waitFor('the tasks index', async () =>
      (await env.db.collection('tasks').indexes()).some((index) => index.name === 'created_-1__id_-1'),
    );
  });
  afterAll(() => env?.stop());

  it('the embedded server refuses what MongoDB 4.2 refuses: a sort without index over the limit', async () => {
    const transactions = env.db.collection('transactions');
    await expect(transactions.find({}).sort({ 'request.timestamp': 1, _id: 1 }).toArray()).rejects.toMatchObject({
      code: 96,
      message: expect.stringMatching(/Sort operation used more than the maximum 262144 bytes of RAM/),
    });
    // find's allowDiskUse is a 4.4 option: 4.2 does not know it.
    await expect(
      transactions.find({}, { allowDiskUse: true }).sort({ 'request.timestamp': 1, _id: 1 }).toArray(),
    ).rejects.toMatchObject({ code: expect.any(Number) });
    await expect(
      transactions.aggregate([{ $sort: { 'request.timestamp': 1, _id: 1 } }]).toArray(),
    ).rejects.toMatchObject({ code: 16819 });
    await expect(env.db.collection('tasks').find({}).sort({ user: 1 }).toArray()).rejects.toMatchObject({ code: 96 });
  });

  it('POST /bulkrerun selects every matching transaction, oldest first', async () => {
    const response = await request(baseUrl)
      .post('/bulkrerun')
      .set(as('admin'))
      .send({ filters: { channelID: CHANNELS.acl._id.toHexString(), status: 'Failed' }, batchSize: 2 })
      .expect(200);
    expect(response.body).toEqual({ success: true, message: 'Tasks created for bulk rerun of transactions' });
    await app.get(BulkRerunService).idle();
    const tasks = await env.db
      .collection('tasks')
      .find({ totalTransactions: 500 }, { projection: { _id: 1 } })
      .sort({ _id: 1 })
      .toArray();
    expect(tasks).toHaveLength(TRANSACTIONS / 500);
    const selected: string[] = [];
    for (const task of tasks) {
      const items = await env.db
        .collection('taskitems')
        .find({ taskId: task._id as ObjectId })
        .sort({ seq: 1 })
        .toArray();
      selected.push(...items.map((item) => item.tid as string));
    }
    expect(selected).toEqual(tids);
  });

  it('GET /tasks?filterLimit=0 lists every task, newest first', async () => {
    const response = await request(baseUrl).get('/tasks?filterLimit=0').set(as('admin')).expect(200);
    const listed = response.body as Array<{ _id: string; created: string }>;
    const all = await env.db.collection('tasks').countDocuments();
    expect(listed).toHaveLength(all);
    const created = listed.map((task) => Date.parse(task.created));
    expect(created).toEqual([...created].sort((a, b) => b - a));
  });
});

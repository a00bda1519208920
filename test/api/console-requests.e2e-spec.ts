import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import request from 'supertest';
import { BulkRerunService } from '../../src/tasks/bulk-rerun.service';
import { TaskCreator } from '../../src/tasks/task-creator.service';
import { CHANNELS, laneJobs, legacyTaskDoc, transactionDoc, UserName, USERS } from '../support/fixtures';
import { insertTransactions } from '../support/database-fixtures';
import { ROOT_EMAIL } from '../support/openhim-auth';
import { startApiSuite } from '../support/api-suite';
import type { TestEnvironment } from '../support/test-environment';
import { ITEM_BATCH_SIZE } from '../../src/database/repositories/cursors';
import { ItemRecord, TaskItemsRepository } from '../../src/database/repositories/task-items.repository';
import { TasksRepository } from '../../src/database/repositories/tasks.repository';

/**
 * The requests OpenHIM 8.5's console sends to the tasks API, copied literally: the query strings as
 * the browser sends them (AngularJS's $httpParamSerializer: keys sorted, `encodeURIComponent` with
 * `@ : $ ,` left as they are, so the `+` of a time zone is `%2B`), and the bodies as it builds them.
 * Each test asserts the status and the whole body, and for writes what was stored.
 */
const QUERIES = {
  /** Tasks page: status, user and day filters, 10 a page. */
  listFiltered: {
    decoded:
      'filterLimit=10&filterPage=0&filters={"status":"Paused","user":"root@openhim.org","created":"{\\"$gte\\":\\"2024-05-01T00:00:00+00:00\\",\\"$lte\\":\\"2024-05-01T23:59:59+00:00\\"}"}',
    encoded:
      'filterLimit=10&filterPage=0&filters=%7B%22status%22:%22Paused%22,%22user%22:%22root@openhim.org%22,%22created%22:%22%7B%5C%22$gte%5C%22:%5C%222024-05-01T00:00:00%2B00:00%5C%22,%5C%22$lte%5C%22:%5C%222024-05-01T23:59:59%2B00:00%5C%22%7D%22%7D',
  },
  /** Tasks page, no filter, the largest page the console offers. */
  listLargest: {
    decoded: 'filterLimit=500&filterPage=0&filters={}',
    encoded: 'filterLimit=500&filterPage=0&filters=%7B%7D',
  },
  /** "Load more": the next page, up to the time the page was loaded. */
  listLoadMore: {
    decoded: 'filterLimit=2&filterPage=1&filters={"created":"{\\"$lte\\":\\"2024-05-01T12:30:00+00:00\\"}"}',
    encoded:
      'filterLimit=2&filterPage=1&filters=%7B%22created%22:%22%7B%5C%22$lte%5C%22:%5C%222024-05-01T12:30:00%2B00:00%5C%22%7D%22%7D',
  },
  /** Every 5 s: tasks created since the last poll (no paging). */
  pollNew: {
    decoded: 'filters={"created":"{\\"$gte\\":\\"2024-05-01T12:00:00+00:00\\"}"}',
    encoded: 'filters=%7B%22created%22:%22%7B%5C%22$gte%5C%22:%5C%222024-05-01T12:00:00%2B00:00%5C%22%7D%22%7D',
  },
  /** Every 5 s, for each Queued/Processing task: its progress, no transactions. */
  pollProgress: {
    decoded: 'filterLimit=0&filterPage=0&filters={}',
    encoded: 'filterLimit=0&filterPage=0&filters=%7B%7D',
  },
  /** Task details: the transactions filters. */
  detailsFiltered: {
    decoded: 'filterLimit=100&filterPage=0&filters={"tstatus":"Completed","rerunStatus":"Successful","hasErrors":"no"}',
    encoded:
      'filterLimit=100&filterPage=0&filters=%7B%22tstatus%22:%22Completed%22,%22rerunStatus%22:%22Successful%22,%22hasErrors%22:%22no%22%7D',
  },
  detailsErrors: {
    decoded: 'filterLimit=10&filterPage=0&filters={"hasErrors":"yes"}',
    encoded: 'filterLimit=10&filterPage=0&filters=%7B%22hasErrors%22:%22yes%22%7D',
  },
} as const;

const UPDATED = 'The Task was successfully updated';
const STARTED = { success: true, message: 'Tasks created for bulk rerun of transactions' };
const CREATED = /^User root@openhim\.org created task with id ([0-9a-f]{24})$/;
const at = (time: string) => new Date(`2024-05-01T${time}Z`);

describe("OpenHIM 8.5 console's requests", () => {
  let env: TestEnvironment;
  let app: INestApplication;
  let baseUrl: string;
  let as: (user: UserName) => Record<string, string>;
  let repository: TasksRepository;
  let itemsRepository: TaskItemsRepository;
  /** Task ids by name, and the tids of each task's items. */
  const ids: Record<string, string> = {};
  const tidsOf: Record<string, string[]> = {};

  /** A task in the store format the service writes (TasksRepository.insertTask, TaskItemsRepository.insertItems), items in a state. */
  async function storeTask(
    name: string,
    task: {
      status: 'Queued' | 'Processing' | 'Paused' | 'Completed';
      created: Date;
      user?: string;
      batchSize?: number;
    },
    items: Array<Partial<ItemRecord>>,
  ) {
    const id = new ObjectId();
    const tids = items.map(() => new ObjectId().toHexString());
    await itemsRepository.insertItems(id, tids);
    await repository.insertTask({
      _id: id,
      status: task.status,
      created: task.created,
      user: task.user ?? ROOT_EMAIL,
      total: tids.length,
      batchSize: task.batchSize ?? 1,
    });
    const done = items.filter((item) => item.tstatus === 'Completed' || item.tstatus === 'Failed').length;
    await env.db.collection('tasks').updateOne({ _id: id }, { $set: { remainingTransactions: tids.length - done } });
    for (const [seq, state] of items.entries()) {
      if (Object.keys(state).length)
        await env.db.collection('taskitems').updateOne({ taskId: id, seq }, { $set: state });
    }
    ids[name] = id.toHexString();
    tidsOf[name] = tids;
  }

  beforeAll(async () => {
    ({ env, app, baseUrl, as } = await startApiSuite({ BULK_RERUN_TASK_SIZE: '2' }));
    repository = app.get(TasksRepository);
    itemsRepository = app.get(TaskItemsRepository);

    await storeTask('processing', { status: 'Processing', created: at('08:00:00'), batchSize: 2 }, [
      { tstatus: 'Completed', rerunStatus: 'Successful', rerunID: '65f0c0ffee0000000000b001' },
      { tstatus: 'Failed', error: 'Transaction 5bb777777bbb66cc5d4444ee could not be found' },
      {},
    ]);
    const legacy = legacyTaskDoc({
      status: 'Queued',
      created: at('09:00:00'),
      items: [{ tid: new ObjectId().toHexString() }, { tid: new ObjectId().toHexString() }],
    });
    await env.db.collection('tasks').insertOne(legacy);
    ids.legacy = legacy._id.toHexString();
    await storeTask('paused', { status: 'Paused', created: at('10:00:00') }, [{}, {}]);
    await storeTask('pausedByAdmin', { status: 'Paused', created: at('11:00:00'), user: USERS.admin.email }, [{}]);
    await storeTask('dayBefore', { status: 'Completed', created: new Date('2024-04-30T12:00:00Z') }, [
      { tstatus: 'Completed', rerunStatus: 'Successful' },
    ]);
    await storeTask('queued', { status: 'Queued', created: at('13:00:00') }, [{}]);
  });
  afterAll(() => env?.stop());

  const get = (path: string, user: UserName = 'root') => request(baseUrl).get(path).set(as(user));
  const view = async (name: string) =>
    (await get(`/tasks/${ids[name]}?${QUERIES.pollProgress.encoded}`).expect(200)).body as Record<string, unknown>;

  it('the literal query strings are the JSON the console builds', () => {
    for (const { decoded, encoded } of Object.values(QUERIES)) {
      expect(decodeURIComponent(encoded)).toBe(decoded);
      // The filters the console built are JSON, and so is what they hold as strings.
      JSON.parse(new URLSearchParams(encoded).get('filters')!);
    }
  });

  describe('GET /tasks (tasks page)', () => {
    it('a page filtered by status, user and day', async () => {
      const response = await get(`/tasks?${QUERIES.listFiltered.encoded}`).expect(200);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(response.body).toEqual([
        {
          _id: ids.paused,
          status: 'Paused',
          created: '2024-05-01T10:00:00.000Z',
          user: ROOT_EMAIL,
          remainingTransactions: 2,
          totalTransactions: 2,
          batchSize: 1,
          __v: 0,
        },
      ]);
    });

    it('the largest page (500), newest first, and "load more"', async () => {
      const page = await get(`/tasks?${QUERIES.listLargest.encoded}`).expect(200);
      expect(page.body.map((task: { _id: string }) => task._id)).toEqual([
        ids.queued,
        ids.pausedByAdmin,
        ids.paused,
        ids.legacy,
        ids.processing,
        ids.dayBefore,
      ]);
      expect(page.body.find((task: { _id: string }) => task._id === ids.legacy)).toEqual({
        _id: ids.legacy,
        status: 'Queued',
        created: '2024-05-01T09:00:00.000Z',
        user: ROOT_EMAIL,
        remainingTransactions: 2,
        totalTransactions: 2,
        batchSize: 1,
        __v: 0,
      });
      const more = await get(`/tasks?${QUERIES.listLoadMore.encoded}`).expect(200);
      expect(more.body.map((task: { _id: string }) => task._id)).toEqual([ids.legacy, ids.processing]);
    });

    it('the 5 s poll for new tasks (created since, no paging)', async () => {
      const response = await get(`/tasks?${QUERIES.pollNew.encoded}`).expect(200);
      expect(response.body).toEqual([
        {
          _id: ids.queued,
          status: 'Queued',
          created: '2024-05-01T13:00:00.000Z',
          user: ROOT_EMAIL,
          remainingTransactions: 1,
          totalTransactions: 1,
          batchSize: 1,
          __v: 0,
        },
      ]);
    });
  });

  describe('GET /tasks/:id', () => {
    it('the 5 s progress poll of each Queued/Processing task: the task, no transactions', async () => {
      const processing = await get(`/tasks/${ids.processing}?${QUERIES.pollProgress.encoded}`).expect(200);
      expect(processing.body).toEqual({
        _id: ids.processing,
        status: 'Processing',
        created: '2024-05-01T08:00:00.000Z',
        user: ROOT_EMAIL,
        remainingTransactions: 1,
        totalTransactions: 3,
        batchSize: 2,
        __v: 0,
        history: [],
        transactions: [],
        totalFilteredTransactions: 3,
      });
      // Today's field order: the task's fields, then transactions, then the count.
      expect(Object.keys(processing.body).slice(-2)).toEqual(['transactions', 'totalFilteredTransactions']);
      const legacy = await get(`/tasks/${ids.legacy}?${QUERIES.pollProgress.encoded}`).expect(200);
      expect(legacy.body).toEqual({
        _id: ids.legacy,
        status: 'Queued',
        created: '2024-05-01T09:00:00.000Z',
        user: ROOT_EMAIL,
        remainingTransactions: 2,
        totalTransactions: 2,
        batchSize: 1,
        __v: 0,
        transactions: [],
        totalFilteredTransactions: 2,
      });
      // Any authenticated user may poll (the console's non-admins too).
      await get(`/tasks/${ids.queued}?${QUERIES.pollProgress.encoded}`, 'viewer').expect(200);
    });

    it('task details with the transactions filters', async () => {
      const filtered = await get(`/tasks/${ids.processing}?${QUERIES.detailsFiltered.encoded}`).expect(200);
      expect(filtered.body.transactions).toEqual([
        {
          _id: expect.stringMatching(/^[0-9a-f]{24}$/),
          tid: tidsOf.processing[0],
          tstatus: 'Completed',
          rerunID: '65f0c0ffee0000000000b001',
          rerunStatus: 'Successful',
        },
      ]);
      expect(filtered.body.totalFilteredTransactions).toBe(1);
      const errors = await get(`/tasks/${ids.processing}?${QUERIES.detailsErrors.encoded}`).expect(200);
      expect(errors.body).toMatchObject({
        _id: ids.processing,
        transactions: [
          {
            tid: tidsOf.processing[1],
            tstatus: 'Failed',
            error: 'Transaction 5bb777777bbb66cc5d4444ee could not be found',
          },
        ],
        totalFilteredTransactions: 1,
      });
    });
  });

  describe('PUT /tasks/:id (pause, resume, cancel buttons)', () => {
    it.each([
      ['pause', 'queued', 'Paused'],
      ['resume', 'queued', 'Queued'],
      ['cancel', 'processing', 'Cancelled'],
    ] as const)('%s: {_id, status}', async (_, name, status) => {
      const response = await request(baseUrl)
        .put(`/tasks/${ids[name]}`)
        .set(as('root'))
        .send({ _id: ids[name], status })
        .expect(200);
      expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(response.text).toBe(UPDATED);
      expect((await view(name)).status).toBe(status);
      const lanes = await laneJobs(app, ids[name]);
      if (status === 'Queued') expect(lanes).toEqual([`lane:${ids[name]}:0`]);
      else expect(lanes).toEqual([]);
    });
  });

  it('POST /tasks: rerun the selected transactions {tids, batchSize, paused}', async () => {
    const tids = await insertTransactions(env.db, [transactionDoc(), transactionDoc()]);
    const response = await request(baseUrl)
      .post('/tasks')
      .set(as('root'))
      .send({ tids, batchSize: 2, paused: false })
      .expect(201);
    expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    const id = CREATED.exec(response.text)![1];
    expect(response.headers.location).toBe(`/tasks/${id}`);
    const task = await env.db.collection('tasks').findOne({ _id: new ObjectId(id) });
    expect(task).toMatchObject({ status: 'Queued', totalTransactions: 2, remainingTransactions: 2, batchSize: 2 });
    const items = await env.db
      .collection('taskitems')
      .find({ taskId: new ObjectId(id) })
      .sort({ seq: 1 })
      .toArray();
    expect(items.map((item) => item.tid)).toEqual(tids);
    expect(await laneJobs(app, id)).toEqual([`lane:${id}:0`, `lane:${id}:1`]);
    await app.get(TaskCreator).settled();
  });

  describe('POST /bulkrerun (transactions page, "rerun all matching")', () => {
    let failedNotRerun: string[];
    beforeAll(async () => {
      // Failed transactions of 2024-05-01 before 10:00 on the ACL channel, three never rerun (oldest
      // first), one rerun; one failed the day before; one successful.
      const docs = [
        transactionDoc({ timestamp: at('06:00:00') }),
        transactionDoc({ timestamp: at('07:00:00') }),
        transactionDoc({ timestamp: at('08:00:00') }),
        Object.assign(transactionDoc({ timestamp: at('09:00:00') }), { childIDs: [new ObjectId()] }),
        transactionDoc({ timestamp: new Date('2024-04-30T09:00:00Z') }),
        transactionDoc({ timestamp: at('10:00:00'), status: 'Successful', responseStatus: 200 }),
      ];
      // Inserted newest first: the service sorts.
      const inserted = await insertTransactions(env.db, [...docs].reverse());
      failedNotRerun = inserted.reverse().slice(0, 3);
    });

    const tasksCreatedBy = async (body: object) => {
      const before = new Set((await env.db.collection('tasks').find().toArray()).map((task) => String(task._id)));
      const response = await request(baseUrl).post('/bulkrerun').set(as('root')).send(body).expect(200);
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(response.body).toEqual(STARTED);
      await app.get(BulkRerunService).idle();
      const created = (await env.db.collection('tasks').find().sort({ _id: 1 }).toArray()).filter(
        (task) => !before.has(String(task._id)),
      );
      return Promise.all(
        created.map(async (task) => ({
          task,
          tids: (await env.db.collection('taskitems').find({ taskId: task._id }).sort({ seq: 1 }).toArray()).map(
            (item) => item.tid as string,
          ),
        })),
      );
    };

    it('filters as a JSON string (with request.timestamp and childIDs as JSON strings), paging ignored', async () => {
      const filters =
        '{"request.timestamp":"{\\"$gte\\":\\"2024-05-01T00:00:00+00:00\\",\\"$lte\\":\\"2024-05-01T09:59:59+00:00\\"}",' +
        `"status":"Failed","channelID":"${CHANNELS.acl._id.toHexString()}","childIDs":"{\\"$eq\\":[]}"}`;
      const created = await tasksCreatedBy({
        filters,
        filterLimit: 1000,
        filterPage: 0,
        batchSize: 2,
        pauseQueue: true,
      });
      // BULK_RERUN_TASK_SIZE 2 here; oldest first.
      expect(created.map(({ tids }) => tids)).toEqual([failedNotRerun.slice(0, 2), failedNotRerun.slice(2)]);
      for (const { task, tids } of created) {
        expect(task).toMatchObject({
          status: 'Paused',
          user: ROOT_EMAIL,
          batchSize: 2,
          totalTransactions: tids.length,
          remainingTransactions: tids.length,
          transactions: [],
          itemsStore: 'items',
        });
        expect(await laneJobs(app, String(task._id))).toEqual([]);
      }
    });

    it('"reruns only" and a path, not paused', async () => {
      const filters = JSON.stringify({
        childIDs: JSON.stringify({ $exists: true, $ne: [] }),
        'request.path': 'patient',
      });
      const created = await tasksCreatedBy({
        filters,
        filterLimit: 1000,
        filterPage: 0,
        batchSize: 1,
        pauseQueue: false,
      });
      expect(created).toHaveLength(1);
      expect(created[0].task.status).toBe('Queued');
      const [rerun] = await env.db
        .collection('transactions')
        .find({ 'childIDs.0': { $exists: true } })
        .toArray();
      expect(created[0].tids).toEqual([rerun._id.toHexString()]);
      expect(await laneJobs(app, String(created[0].task._id))).toEqual([`lane:${String(created[0].task._id)}:0`]);
    });
  });

  describe('pages of any size (OpenHIM has no maximum filterLimit)', () => {
    const SIZE = 100_000;
    let id: ObjectId;
    let tids: string[];

    beforeAll(async () => {
      // Written with the driver in the store format (TasksRepository.insertTask, TaskItemsRepository.insertItems), not POSTed.
      id = new ObjectId();
      tids = Array.from({ length: SIZE }, () => new ObjectId().toHexString());
      const items = env.db.collection('taskitems');
      for (let start = 0; start < SIZE; start += 10_000) {
        await items.insertMany(
          tids
            .slice(start, start + 10_000)
            .map((tid, index) => ({ taskId: id, seq: start + index, tid, tstatus: 'Queued' })),
          { ordered: false },
        );
      }
      await env.db.collection('tasks').insertOne({
        _id: id,
        status: 'Paused',
        transactions: [],
        created: new Date('2024-06-01T00:00:00Z'),
        user: ROOT_EMAIL,
        remainingTransactions: SIZE,
        totalTransactions: SIZE,
        batchSize: 10,
        itemsStore: 'items',
        nextSeq: 0,
        leases: [],
        asyncPending: 0,
        __v: 0,
      });
    }, 120_000);

    it('GET /tasks/:id?filterPage=0&filterLimit=100000 on a 100 000-item task: every item, in order, streamed', async () => {
      // What the repository hands out: driver batches, never one array of the page.
      const original = itemsRepository.itemBatches.bind(itemsRepository);
      const batches: number[] = [];
      const itemBatches = jest.spyOn(itemsRepository, 'itemBatches').mockImplementation((...args) =>
        (async function* () {
          for await (const batch of original(...args)) {
            batches.push(batch.length);
            yield batch;
          }
        })(),
      );
      const embedded = jest.spyOn(repository, 'embeddedItems');
      try {
        const response = await get(`/tasks/${id.toHexString()}?filterPage=0&filterLimit=100000`).expect(200);
        expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
        // Streamed: chunked, no Content-Length (a buffered answer would carry one).
        expect(response.headers['content-length']).toBeUndefined();
        expect(response.headers['transfer-encoding']).toBe('chunked');
        const { transactions, ...task } = response.body;
        expect(task).toEqual({
          _id: id.toHexString(),
          status: 'Paused',
          created: '2024-06-01T00:00:00.000Z',
          user: ROOT_EMAIL,
          remainingTransactions: SIZE,
          totalTransactions: SIZE,
          batchSize: 10,
          __v: 0,
          totalFilteredTransactions: SIZE,
        });
        expect(transactions).toHaveLength(SIZE);
        expect(transactions[0]).toEqual({
          _id: expect.stringMatching(/^[0-9a-f]{24}$/),
          tid: tids[0],
          tstatus: 'Queued',
        });
        expect(transactions.map((item: { tid: string }) => item.tid)).toEqual(tids);

        expect(itemBatches).toHaveBeenCalledTimes(1);
        expect(itemBatches.mock.calls[0][2]).toEqual({ skip: 0, limit: SIZE });
        expect(embedded).not.toHaveBeenCalled();
        expect(batches.reduce((sum, size) => sum + size, 0)).toBe(SIZE);
        expect(Math.max(...batches)).toBeLessThanOrEqual(ITEM_BATCH_SIZE);
        expect(batches.length).toBeGreaterThanOrEqual(SIZE / ITEM_BATCH_SIZE);
      } finally {
        itemBatches.mockRestore();
        embedded.mockRestore();
      }
    }, 120_000);

    it('a filtered page and a later page of the same task', async () => {
      const filters = encodeURIComponent(JSON.stringify({ tstatus: 'Queued' }));
      const response = await get(`/tasks/${id.toHexString()}?filterPage=1&filterLimit=40000&filters=${filters}`).expect(
        200,
      );
      expect(response.body.totalFilteredTransactions).toBe(SIZE);
      expect(response.body.transactions.map((item: { tid: string }) => item.tid)).toEqual(tids.slice(40_000, 80_000));
      const last = await get(`/tasks/${id.toHexString()}?filterPage=2&filterLimit=40000`).expect(200);
      expect(last.body.transactions.map((item: { tid: string }) => item.tid)).toEqual(tids.slice(80_000));
    }, 120_000);
  });
});

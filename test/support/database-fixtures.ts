import { Db, ObjectId } from 'mongodb';
import { waitFor } from './wait';

/**
 * The database as OpenHIM core leaves it (transactions, channels, core's tasks) and tasks as the
 * tasks API stores them, written with the driver; read back for assertions.
 */

/** What a transaction made by `insertTransactions(db, count, fixture)` differs in. */
export interface TransactionFixture {
  method?: string;
  path?: string;
  querystring?: string;
  headers?: Record<string, unknown>;
  body?: string;
  clientID?: ObjectId;
  channelID?: ObjectId;
  canRerun?: boolean;
}

/** A transaction document given whole (as fixtures.ts `transactionDoc` makes them). */
export interface TransactionDocument {
  _id: ObjectId;
  channelID?: ObjectId;
  /** With `autoRetry`, the transaction also gets OpenHIM's `autoretries` entry. */
  autoRetry?: boolean;
  request: { timestamp: Date };
}

/**
 * Inserts OpenHIM transactions; returns their ids (as tids) in order. Either `docs` as given (in
 * batches of 5000; those with `autoRetry` also get their `autoretries` entry), or `count` failed
 * transactions of core's shape, each varied by `fixture(index)`, in one insertMany.
 */
export async function insertTransactions(db: Db, docs: TransactionDocument[]): Promise<string[]>;
export async function insertTransactions(
  db: Db,
  count: number,
  fixture?: (index: number) => TransactionFixture,
): Promise<string[]>;
export async function insertTransactions(
  db: Db,
  docsOrCount: TransactionDocument[] | number,
  fixture: (index: number) => TransactionFixture = () => ({}),
): Promise<string[]> {
  if (typeof docsOrCount === 'number') {
    const docs = Array.from({ length: docsOrCount }, (_, index) => failedTransaction(index, fixture(index)));
    if (docs.length) await db.collection('transactions').insertMany(docs);
    return docs.map((doc) => doc._id.toHexString());
  }
  const docs = docsOrCount;
  for (let start = 0; start < docs.length; start += 5000) {
    await db.collection('transactions').insertMany(docs.slice(start, start + 5000), { ordered: false });
  }
  const retries = docs
    .filter((doc) => doc.autoRetry)
    .map((doc) => ({ transactionID: doc._id, channelID: doc.channelID, requestTimestamp: doc.request.timestamp }));
  if (retries.length) await db.collection('autoretries').insertMany(retries);
  return docs.map((doc) => doc._id.toHexString());
}

/** A failed transaction as core stores it, made by `insertTransactions(db, count, fixture)`. */
function failedTransaction(index: number, spec: TransactionFixture) {
  return {
    _id: new ObjectId(),
    ...(spec.clientID ? { clientID: spec.clientID } : {}),
    ...(spec.channelID ? { channelID: spec.channelID } : {}),
    ...(spec.canRerun !== undefined ? { canRerun: spec.canRerun } : {}),
    status: 'Failed',
    childIDs: [],
    request: {
      method: spec.method ?? 'GET',
      path: spec.path ?? `/patient/${index}`,
      querystring: spec.querystring ?? '',
      headers: spec.headers ?? { accept: 'application/json' },
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      timestamp: new Date(Date.now() - 60000),
    },
  };
}

export async function insertChannel(db: Db, channel: Record<string, unknown>): Promise<ObjectId> {
  const _id = new ObjectId();
  await db
    .collection('channels')
    .insertOne({ _id, name: `channel-${_id.toHexString()}`, status: 'enabled', ...channel });
  return _id;
}

export interface TaskFixture {
  batchSize?: number;
  status?: 'Queued' | 'Paused';
  ratePerSecond?: number;
  collection?: string;
}

/** A task exactly as the tasks API stores it (docs/design.md): items in `taskitems`. */
export async function insertTask(db: Db, tids: string[], options: TaskFixture = {}): Promise<string> {
  const taskId = new ObjectId();
  if (tids.length) {
    await db.collection('taskitems').insertMany(tids.map((tid, seq) => ({ taskId, seq, tid, tstatus: 'Queued' })));
  }
  await db.collection(options.collection ?? 'tasks').insertOne({
    _id: taskId,
    status: options.status ?? 'Queued',
    transactions: [],
    created: new Date(),
    user: 'root@openhim.org',
    remainingTransactions: tids.length,
    totalTransactions: tids.length,
    batchSize: options.batchSize ?? 1,
    itemsStore: 'items',
    nextSeq: 0,
    leases: [],
    asyncPending: 0,
    ...(options.ratePerSecond ? { ratePerSecond: options.ratePerSecond } : {}),
    __v: 0,
  });
  return taskId.toHexString();
}

/** A task as OpenHIM core creates it: items embedded in `transactions[]`. */
export async function insertCoreTask(
  db: Db,
  items: Array<{ tid: string; tstatus?: string; rerunID?: string; rerunStatus?: string }>,
  options: { batchSize?: number; status?: string } = {},
): Promise<string> {
  const taskId = new ObjectId();
  await db.collection('tasks').insertOne({
    _id: taskId,
    status: options.status ?? 'Queued',
    transactions: items.map((item) => ({ _id: new ObjectId(), tstatus: 'Queued', ...item })),
    created: new Date(),
    user: 'root@openhim.org',
    remainingTransactions: items.filter((item) => (item.tstatus ?? 'Queued') === 'Queued').length,
    totalTransactions: items.length,
    batchSize: options.batchSize ?? 1,
    __v: 0,
  });
  return taskId.toHexString();
}

export async function readTask(db: Db, taskId: string, collection = 'tasks'): Promise<Record<string, any> | null> {
  return db.collection(collection).findOne({ _id: new ObjectId(taskId) });
}

export async function readItems(db: Db, taskId: string): Promise<Array<Record<string, any>>> {
  return db
    .collection('taskitems')
    .find({ taskId: new ObjectId(taskId) })
    .sort({ seq: 1 })
    .toArray();
}

/** Waits until the task reaches `status`; returns the task document. */
export function waitForTaskStatus(
  db: Db,
  taskId: string,
  status: string,
  collection = 'tasks',
  timeoutMs = 30000,
): Promise<Record<string, any>> {
  return waitFor(
    `task ${taskId} to be ${status}`,
    async () => {
      const task = await readTask(db, taskId, collection);
      return task?.status === status ? task : null;
    },
    timeoutMs,
  );
}

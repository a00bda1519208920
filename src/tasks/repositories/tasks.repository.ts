import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Collection, Document, FindCursor, UpdateFilter } from 'mongodb';
import { Model, Types } from 'mongoose';
import { DATABASE_UNAVAILABLE } from '../../common/filters/global-exception.filter';
import { Task, TaskItem } from '../../database/schemas';
import { TaskStatus } from '../../domain/task-status';
import { HistoryEntry, pushHistory } from '../../database/task-history';
import { serviceUnavailable } from '../errors';
import type { Paging } from '../filters/query-params';
import type { TaskListQuery } from '../filters/task-filters';
import { chunk, mapLimit } from './chunks';

/** The OpenHIM fields of a task that responses show (our engine's fields stay inside). */
export const PUBLIC_TASK_FIELDS = [
  '_id',
  'status',
  'created',
  'completedDate',
  'user',
  'remainingTransactions',
  'totalTransactions',
  'batchSize',
  'ratePerSecond',
  'pauseAfterFailures',
  'startAt',
  'rerunOf',
  '__v',
] as const;
/** What GET /tasks/:id shows beyond the list: the task's history. */
export const PUBLIC_TASK_DETAIL_FIELDS = [...PUBLIC_TASK_FIELDS, 'history'] as const;
export const PUBLIC_ITEM_FIELDS = ['_id', 'tid', 'tstatus', 'error', 'rerunID', 'rerunStatus'] as const;

export type TaskRecord = Partial<Record<(typeof PUBLIC_TASK_DETAIL_FIELDS)[number], unknown>> & {
  _id: Types.ObjectId;
  status: string;
  batchSize?: number;
  totalTransactions?: number;
  pauseAfterFailures?: number;
  itemsStore?: string;
};
export type ItemRecord = Partial<Record<(typeof PUBLIC_ITEM_FIELDS)[number], unknown>> & {
  tstatus?: unknown;
  rerunStatus?: unknown;
  error?: unknown;
};

export interface NewTask {
  _id: Types.ObjectId;
  status: TaskStatus;
  created: Date;
  user: string;
  total: number;
  batchSize: number;
  ratePerSecond?: number;
  /** Absent: the engine applies AUTO_PAUSE_AFTER_FAILURES. */
  pauseAfterFailures?: number;
  startAt?: Date;
  rerunOf?: string;
  history?: HistoryEntry[];
}

const ITEM_INSERT_CHUNK = 1000;
/** Documents per driver batch when streaming tasks or items (a batch is the most held at once). */
export const ITEM_BATCH_SIZE = 1000;
const MAX_INT32 = 0x7fffffff;
const ITEM_INSERT_CONCURRENCY = 4;
const projection = (fields: readonly string[]) => Object.fromEntries(fields.map((field) => [field, 1]));
/** A first batch no larger than the page (one round trip for small pages). */
const firstBatch = (limit: number) => (limit > 0 && limit < ITEM_BATCH_SIZE ? limit : ITEM_BATCH_SIZE);

/** The cursor's documents one driver batch at a time; the cursor is closed however iteration ends. */
async function* batchesOf<T>(cursor: FindCursor<T>): AsyncGenerator<T[]> {
  try {
    while (await cursor.hasNext()) yield cursor.readBufferedDocuments();
  } finally {
    await cursor.close().catch(() => undefined);
  }
}

async function* noBatches<T>(): AsyncGenerator<T[]> {}

/**
 * The driver's collection behind a model, for cursors: mongoose's proxy answers a promise instead of
 * a cursor while it buffers commands (disconnected), the driver waits for a server and then fails
 * with an error the exception filter turns into a 503.
 */
export function driverCollection<M>(model: Model<M>): Collection<Document> {
  const db = model.db.db;
  if (!db) throw serviceUnavailable(DATABASE_UNAVAILABLE);
  return db.collection(model.collection.name);
}

/**
 * Task documents (OpenHIM's `tasks` collection) and their items (`taskitems`, see docs/design.md):
 * the only place that touches these two models.
 */
@Injectable()
export class TasksRepository {
  constructor(
    @InjectModel(Task.name) private readonly tasks: Model<Task>,
    @InjectModel(TaskItem.name) private readonly items: Model<TaskItem>,
  ) {}

  newId(): Types.ObjectId {
    return new Types.ObjectId();
  }

  /** One `taskitems` document per tid, `seq` = position; ordered chunks, a few in flight. */
  async insertItems(taskId: Types.ObjectId, tids: readonly string[]): Promise<void> {
    const docs = tids.map((tid, seq) => ({ taskId, seq, tid, tstatus: 'Queued' }));
    // The driver's bulk path costs a small task more CPU than the write itself.
    if (docs.length === 1) {
      await this.items.collection.insertOne(docs[0]);
      return;
    }
    const chunks = chunk(docs, ITEM_INSERT_CHUNK);
    await mapLimit(chunks, ITEM_INSERT_CONCURRENCY, (slice) =>
      this.items.collection.insertMany(slice, { ordered: true }),
    );
  }

  /** The task document in the store format the engine relies on (docs/design.md). */
  async insertTask(task: NewTask): Promise<void> {
    await this.tasks.collection.insertOne({
      _id: task._id,
      status: task.status,
      transactions: [],
      created: task.created,
      user: task.user,
      remainingTransactions: task.total,
      totalTransactions: task.total,
      batchSize: task.batchSize,
      itemsStore: 'items',
      nextSeq: 0,
      leases: [],
      asyncPending: 0,
      ...(task.ratePerSecond !== undefined ? { ratePerSecond: task.ratePerSecond } : {}),
      ...(task.pauseAfterFailures !== undefined ? { pauseAfterFailures: task.pauseAfterFailures } : {}),
      failureStreak: 0,
      ...(task.startAt !== undefined ? { startAt: task.startAt } : {}),
      ...(task.rerunOf !== undefined ? { rerunOf: task.rerunOf } : {}),
      history: task.history ?? [],
      __v: 0,
    });
  }

  /** Removes a task and its items (the items even when the task document is already gone). */
  async deleteTaskAndItems(taskId: Types.ObjectId): Promise<boolean> {
    const { deletedCount } = await this.tasks.deleteOne({ _id: taskId });
    await this.items.deleteMany({ taskId });
    return deletedCount > 0;
  }

  /**
   * Newest first; never the transactions nor our internal fields. Read from a driver cursor in
   * batches (lean, no mongoose documents), so a page of any size never sits in memory at once.
   */
  listBatches(query: TaskListQuery, paging: Paging): AsyncIterable<TaskRecord[]> {
    // No client has 2^31 tasks: a larger skip is past the end, a larger limit is no limit.
    if (paging.skip > MAX_INT32) return noBatches();
    const limit = paging.limit > MAX_INT32 ? 0 : paging.limit;
    return batchesOf(
      driverCollection(this.tasks).find<TaskRecord>(query as Record<string, unknown>, {
        projection: projection(PUBLIC_TASK_FIELDS),
        sort: { created: -1, _id: -1 },
        skip: paging.skip,
        limit,
        batchSize: firstBatch(limit),
      }),
    );
  }

  /** The task without its transactions (plus `itemsStore`, to know where they are). */
  async findById(id: Types.ObjectId): Promise<TaskRecord | null> {
    return this.tasks
      .findById(id, projection([...PUBLIC_TASK_DETAIL_FIELDS, 'itemsStore']))
      .lean<TaskRecord>()
      .exec();
  }

  /** The embedded `transactions[]` of a task created by OpenHIM core. */
  async embeddedItems(id: Types.ObjectId): Promise<ItemRecord[]> {
    const task = await this.tasks.findById(id, { transactions: 1 }).lean<{ transactions?: ItemRecord[] }>().exec();
    return task?.transactions ?? [];
  }

  /**
   * `limit` items of the task matching `query` after skipping `skip`, in task order, in batches of
   * at most ITEM_BATCH_SIZE read from a driver cursor (lean: no mongoose documents, no array of the
   * whole page). The caller knows how many match (it counted first), so `limit` is never beyond them.
   */
  itemBatches(taskId: Types.ObjectId, query: Record<string, unknown>, paging: Paging): AsyncIterable<ItemRecord[]> {
    if (paging.limit === 0) return noBatches();
    // Unfiltered pages go straight to their `seq` range (no skipping through the index).
    const unfiltered = Object.keys(query).length === 0;
    const filter = unfiltered
      ? { taskId, seq: { $gte: paging.skip, $lt: paging.skip + paging.limit } }
      : { ...query, taskId };
    return batchesOf(
      driverCollection(this.items).find<ItemRecord>(filter, {
        projection: projection(PUBLIC_ITEM_FIELDS),
        sort: { seq: 1 },
        ...(unfiltered ? {} : { skip: paging.skip }),
        limit: paging.limit,
        batchSize: firstBatch(paging.limit),
      }),
    );
  }

  async countItems(taskId: Types.ObjectId, query: Record<string, unknown>): Promise<number> {
    return this.items.countDocuments({ ...query, taskId }).exec();
  }

  /**
   * Changes the status only from one of `from` (the engine moves statuses concurrently), with the
   * history entry (and other fields) in the same write. Returns whether it applied.
   */
  async setStatusIf(
    id: Types.ObjectId,
    from: readonly TaskStatus[],
    to: TaskStatus,
    change: { history?: HistoryEntry; set?: Record<string, unknown> } = {},
  ): Promise<boolean> {
    const { matchedCount } = await driverCollection(this.tasks).updateOne({ _id: id, status: { $in: [...from] } }, {
      $set: { status: to, ...change.set },
      ...(change.history ? { $push: pushHistory(change.history) } : {}),
    } as UpdateFilter<Document>);
    return matchedCount > 0;
  }

  /** Takes back a history entry written by a change that was then undone (a resume Redis refused). */
  async removeHistoryEntry(id: Types.ObjectId, entry: HistoryEntry): Promise<void> {
    const pull: Document = { $pull: { history: { ...entry } } };
    await driverCollection(this.tasks).updateOne({ _id: id }, pull);
  }

  /** The tids of the items that ended failed (`rerunStatus: Failed` or an error), in task order. */
  async failedTids(taskId: Types.ObjectId): Promise<string[]> {
    const items = await driverCollection(this.items)
      .find<{ tid: string }>(
        { taskId, $or: [{ rerunStatus: 'Failed' }, { error: { $exists: true, $nin: [null, ''] } }] },
        { projection: { _id: 0, tid: 1 }, sort: { seq: 1 } },
      )
      .toArray();
    return items.map((item) => item.tid);
  }
}

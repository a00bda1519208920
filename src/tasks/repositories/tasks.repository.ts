import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { Task, TaskItem, TaskStatus } from '../../database/schemas';
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
  '__v',
] as const;
export const PUBLIC_ITEM_FIELDS = ['_id', 'tid', 'tstatus', 'error', 'rerunID', 'rerunStatus'] as const;

export type TaskRecord = Partial<Record<(typeof PUBLIC_TASK_FIELDS)[number], unknown>> & {
  _id: Types.ObjectId;
  status: string;
  batchSize?: number;
  totalTransactions?: number;
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
}

const ITEM_INSERT_CHUNK = 1000;
const ITEM_INSERT_CONCURRENCY = 4;
const projection = (fields: readonly string[]) => Object.fromEntries(fields.map((field) => [field, 1]));

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
      __v: 0,
    });
  }

  /** Removes a task and its items (the items even when the task document is already gone). */
  async deleteTaskAndItems(taskId: Types.ObjectId): Promise<boolean> {
    const { deletedCount } = await this.tasks.deleteOne({ _id: taskId });
    await this.items.deleteMany({ taskId });
    return deletedCount > 0;
  }

  /** Newest first; never the transactions nor our internal fields. */
  async list(query: TaskListQuery, paging: Paging): Promise<TaskRecord[]> {
    return this.tasks
      .find(query as Record<string, unknown>, projection(PUBLIC_TASK_FIELDS))
      .sort({ created: -1, _id: -1 })
      .skip(paging.skip)
      .limit(paging.limit)
      .lean<TaskRecord[]>()
      .exec();
  }

  /** The task without its transactions (plus `itemsStore`, to know where they are). */
  async findById(id: Types.ObjectId): Promise<TaskRecord | null> {
    return this.tasks
      .findById(id, projection([...PUBLIC_TASK_FIELDS, 'itemsStore']))
      .lean<TaskRecord>()
      .exec();
  }

  /** The embedded `transactions[]` of a task created by OpenHIM core. */
  async embeddedItems(id: Types.ObjectId): Promise<ItemRecord[]> {
    const task = await this.tasks.findById(id, { transactions: 1 }).lean<{ transactions?: ItemRecord[] }>().exec();
    return task?.transactions ?? [];
  }

  /** A page of the task's items matching `query`, in task order. */
  async findItems(taskId: Types.ObjectId, query: Record<string, unknown>, paging: Paging): Promise<ItemRecord[]> {
    if (paging.limit === 0) return [];
    return this.items
      .find({ ...query, taskId }, projection(PUBLIC_ITEM_FIELDS))
      .sort({ seq: 1 })
      .skip(paging.skip)
      .limit(paging.limit)
      .lean<ItemRecord[]>()
      .exec();
  }

  /** Unfiltered pages go straight to their `seq` range (no skipping through the index). */
  async findItemsBySeq(taskId: Types.ObjectId, paging: Paging): Promise<ItemRecord[]> {
    if (paging.limit === 0) return [];
    return this.items
      .find({ taskId, seq: { $gte: paging.skip, $lt: paging.skip + paging.limit } }, projection(PUBLIC_ITEM_FIELDS))
      .sort({ seq: 1 })
      .lean<ItemRecord[]>()
      .exec();
  }

  async countItems(taskId: Types.ObjectId, query: Record<string, unknown>): Promise<number> {
    return this.items.countDocuments({ ...query, taskId }).exec();
  }

  /** Changes the status only from one of `from` (the engine moves statuses concurrently). */
  async setStatusIf(id: Types.ObjectId, from: readonly TaskStatus[], to: TaskStatus): Promise<boolean> {
    const { matchedCount } = await this.tasks.updateOne(
      { _id: id, status: { $in: [...from] } },
      { $set: { status: to } },
    );
    return matchedCount > 0;
  }
}

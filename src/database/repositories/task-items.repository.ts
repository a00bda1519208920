import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { AnyBulkWriteOperation, Document } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { CollectionRepository, repeatable } from './collection-repository';
import { StoredTaskItem, TaskItem, TaskTransaction } from '../schemas';
import { chunk, mapLimit } from './chunks';
import { PENDING_ITEM_STATUSES } from '../../domain/task-status';
import { batchesOf, firstBatch, ITEM_BATCH_SIZE, noBatches, Page, projection } from './cursors';

export const PUBLIC_ITEM_FIELDS = ['_id', 'tid', 'tstatus', 'error', 'rerunID', 'rerunStatus', 'bodySha256'] as const;

/** The API's view of an item: OpenHIM's shape of a task's transaction (an embedded item has it too). */
export type ItemRecord = Partial<Pick<TaskTransaction, (typeof PUBLIC_ITEM_FIELDS)[number]>>;

/** An item's own edit (a task's `edits`), as stored. */
type ItemEditRecord = { body?: string; headers?: Record<string, string> };

/** The engine's view of an item. */
export type EngineItem = Pick<StoredTaskItem, '_id' | 'seq' | 'tid' | 'tstatus'> &
  Pick<StoredTaskItem, 'leaseId' | 'startedAt' | 'asyncSince' | 'rerunID'>;

const ENGINE_ITEM_FIELDS: Record<Exclude<keyof EngineItem, '_id'>, 1> = {
  seq: 1,
  tid: 1,
  tstatus: 1,
  leaseId: 1,
  startedAt: 1,
  asyncSince: 1,
  rerunID: 1,
};

const ITEM_INSERT_CHUNK = 1000;
const ITEM_INSERT_CONCURRENCY = 4;

/**
 * Our `taskitems` collection (one document per rerun of a task created by this service, or adopted
 * from OpenHIM core's embedded `transactions[]`), for the API and the engine alike. Every engine
 * query is an equality on `{taskId, seq}` or `{taskId, tstatus}` (both indexed), so no operation
 * scans a task's items; the engine's operations settle within a lease (driver/bounded.ts).
 */
@Injectable()
export class TaskItemsRepository extends CollectionRepository<TaskItem> {
  constructor(@InjectModel(TaskItem.name) model: Model<TaskItem>, config: AppConfig) {
    super(model, config);
  }

  // ---- the API ------------------------------------------------------------------------------------

  /**
   * One `taskitems` document per tid, `seq` = position, with its `edit` when `edits` has one for the
   * tid (lower-case hex keys); ordered chunks, a few in flight.
   */
  async insertItems(
    taskId: Types.ObjectId,
    tids: readonly string[],
    edits?: ReadonlyMap<string, { body?: string; headers?: Record<string, string> }>,
  ): Promise<void> {
    const docs = tids.map((tid, seq) => {
      const edit = edits?.get(tid.toLowerCase());
      return { taskId, seq, tid, tstatus: 'Queued', ...(edit ? { edit } : {}) };
    });
    // The driver's bulk path costs a small task more CPU than the write itself.
    if (docs.length === 1) {
      await this.collection.insertOne(docs[0]);
      return;
    }
    const chunks = chunk(docs, ITEM_INSERT_CHUNK);
    await mapLimit(chunks, ITEM_INSERT_CONCURRENCY, (slice) => this.collection.insertMany(slice, { ordered: true }));
  }

  /**
   * `limit` items of the task matching `query` after skipping `skip`, in task order, in batches of
   * at most ITEM_BATCH_SIZE read from a driver cursor (lean: no mongoose documents, no array of the
   * whole page). The caller knows how many match (it counted first), so `limit` is never beyond them.
   */
  itemBatches(taskId: Types.ObjectId, query: Record<string, unknown>, paging: Page): AsyncIterable<ItemRecord[]> {
    if (paging.limit === 0) return noBatches();
    // Unfiltered pages go straight to their `seq` range (no skipping through the index).
    const unfiltered = Object.keys(query).length === 0;
    const filter = unfiltered
      ? { taskId, seq: { $gte: paging.skip, $lt: paging.skip + paging.limit } }
      : { ...query, taskId };
    return batchesOf(
      this.collection.find<ItemRecord>(filter, {
        projection: projection(PUBLIC_ITEM_FIELDS),
        sort: { seq: 1 },
        ...(unfiltered ? {} : { skip: paging.skip }),
        limit: paging.limit,
        batchSize: firstBatch(paging.limit),
      }),
    );
  }

  async countItems(taskId: Types.ObjectId, query: Record<string, unknown>): Promise<number> {
    return this.model.countDocuments({ ...query, taskId }).exec();
  }

  /**
   * The items that ended failed (`rerunStatus: Failed` or an error), in task order, with their `edit` if they have one:
   * POST /tasks/:id/rerun-failed carries the edits of the failed items over.
   */
  async failedItems(taskId: Types.ObjectId): Promise<Array<{ tid: string; edit?: ItemEditRecord }>> {
    return this.collection
      .find<{ tid: string; edit?: ItemEditRecord }>(
        { taskId, $or: [{ rerunStatus: 'Failed' }, { error: { $exists: true, $nin: [null, ''] } }] },
        { projection: { _id: 0, tid: 1, edit: 1 }, sort: { seq: 1 } },
      )
      .toArray();
  }

  /**
   * The tids of the task's items still to rerun or on their way (`PENDING_ITEM_STATUSES`), in
   * driver batches of ITEM_BATCH_SIZE: the emergency stop asks which channels a task still goes to.
   */
  async *pendingTidBatches(taskId: Types.ObjectId): AsyncGenerator<string[]> {
    const cursor = this.collection.find<{ tid: string }>(
      { taskId, tstatus: { $in: [...PENDING_ITEM_STATUSES] } },
      { projection: { _id: 0, tid: 1 }, batchSize: ITEM_BATCH_SIZE },
    );
    for await (const batch of batchesOf(cursor)) yield batch.map((item) => item.tid);
  }

  /** Removes a task's items (also those of a task document already gone). */
  async deleteForTask(taskId: Types.ObjectId): Promise<void> {
    await repeatable(() => this.op('deleteMany', (o) => this.collection.deleteMany({ taskId }, o)));
  }

  // ---- the engine ---------------------------------------------------------------------------------

  /** Marks a Queued item Processing under a lease, before anything is sent for it. */
  async claim(taskId: Types.ObjectId, seq: number, leaseId: string, now: Date): Promise<EngineItem | null> {
    return (await this.op('claim', (o) =>
      this.collection.findOneAndUpdate(
        { taskId, seq, tstatus: 'Queued' },
        { $set: { tstatus: 'Processing', leaseId, startedAt: now } },
        { projection: ENGINE_ITEM_FIELDS, returnDocument: 'after', ...o },
      ),
    )) as EngineItem | null;
  }

  /**
   * `claim` for several items at once (each under its own lease): one ordered bulk write. When every
   * claim applied and `known` holds the items (read ahead: `_id`, `tid` never change), they are
   * returned without reading them again; otherwise one read tells which were claimed (an item
   * already final stays as it was). Returns the claimed items by seq.
   */
  async claimMany(
    taskId: Types.ObjectId,
    claims: Array<{ seq: number; leaseId: string }>,
    now: Date,
    known: Map<number, EngineItem>,
  ): Promise<Map<number, EngineItem>> {
    const { modifiedCount } = await this.op('claimMany', (o) =>
      this.collection.bulkWrite(
        claims.map(({ seq, leaseId }) => ({
          updateOne: {
            filter: { taskId, seq, tstatus: 'Queued' },
            update: { $set: { tstatus: 'Processing', leaseId, startedAt: now } },
          },
        })),
        { ordered: true, ...o },
      ),
    );
    if (modifiedCount === claims.length && claims.every((claim) => known.has(claim.seq))) {
      return new Map(
        claims.map(({ seq, leaseId }) => [
          seq,
          { ...known.get(seq)!, tstatus: 'Processing', leaseId, startedAt: now } as EngineItem,
        ]),
      );
    }
    const found = await this.bySeq(
      taskId,
      claims.map((claim) => claim.seq),
    );
    const leaseOf = new Map(claims.map((claim) => [claim.seq, claim.leaseId]));
    // Claimed by this write: its lease and its start time. An item under the same lease that started
    // before is one this lane took over (a killed probe's, claimed ahead of the cursor) and reconciles:
    // never to be sent again here.
    return new Map(
      found
        .filter(
          (item) =>
            item.tstatus === 'Processing' &&
            item.leaseId === leaseOf.get(item.seq) &&
            item.startedAt !== undefined &&
            new Date(item.startedAt).getTime() === now.getTime(),
        )
        .map((item) => [item.seq, item]),
    );
  }

  /** Items by seq (an equality `$in` on the `{taskId, seq}` index). */
  async bySeq(taskId: Types.ObjectId, seqs: number[]): Promise<EngineItem[]> {
    return (await this.op('bySeq', (o) =>
      this.collection.find({ taskId, seq: { $in: seqs } }, { projection: ENGINE_ITEM_FIELDS, ...o }).toArray(),
    )) as unknown as EngineItem[];
  }

  /** Takes a Processing item over from a lease that is gone. */
  async takeOver(taskId: Types.ObjectId, item: EngineItem, leaseId: string): Promise<boolean> {
    const { modifiedCount } = await this.op('takeOver', (o) =>
      this.collection.updateOne(
        {
          taskId,
          seq: item.seq,
          tstatus: 'Processing',
          leaseId: item.leaseId ?? { $exists: false },
          asyncSince: { $exists: false },
        },
        { $set: { leaseId } },
        o,
      ),
    );
    return modifiedCount === 1;
  }

  /**
   * Gives back an item claimed but never sent (its channel's breaker opened, or its guard kept it
   * waiting until the task stopped): Queued again, for whoever runs the task next.
   */
  async unclaim(taskId: Types.ObjectId, seq: number, leaseId: string): Promise<boolean> {
    const { modifiedCount } = await this.op('unclaim', (o) =>
      this.collection.updateOne(
        { taskId, seq, tstatus: 'Processing', leaseId, asyncSince: { $exists: false } },
        { $set: { tstatus: 'Queued' }, $unset: { leaseId: '', startedAt: '' } },
        o,
      ),
    );
    return modifiedCount === 1;
  }

  /** Items that ended failed (`rerunStatus: Failed` or an error): a completed task's notification. */
  async countFailed(taskId: Types.ObjectId): Promise<number> {
    return this.op('countFailed', (o) =>
      this.collection.countDocuments(
        { taskId, $or: [{ rerunStatus: 'Failed' }, { error: { $exists: true, $nin: [null, ''] } }] },
        o,
      ),
    );
  }

  /** An item's own edit (tasks with `hasEdits`; read once per item of such a task). */
  async editOf(
    taskId: Types.ObjectId,
    seq: number,
  ): Promise<{ body?: string; headers?: Record<string, string> } | undefined> {
    const found = await this.op('editOf', (o) =>
      this.collection.findOne({ taskId, seq }, { projection: { _id: 0, edit: 1 }, ...o }),
    );
    return (found?.edit as { body?: string; headers?: Record<string, string> } | undefined) ?? undefined;
  }

  /** What an item recorded (the breaker's probe: did it succeed?). */
  async outcomeOf(
    taskId: Types.ObjectId,
    seq: number,
  ): Promise<Pick<StoredTaskItem, 'tstatus' | 'error' | 'rerunID' | 'rerunStatus'> | null> {
    return (await this.op('outcomeOf', (o) =>
      this.collection.findOne(
        { taskId, seq },
        { projection: { _id: 0, tstatus: 1, error: 1, rerunID: 1, rerunStatus: 1 }, ...o },
      ),
    )) as Pick<StoredTaskItem, 'tstatus' | 'error' | 'rerunID' | 'rerunStatus'> | null;
  }

  /** A reconciled item that has to be sent again: its new start time. */
  async restart(taskId: Types.ObjectId, seq: number, leaseId: string, now: Date): Promise<boolean> {
    const { modifiedCount } = await this.op('restart', (o) =>
      this.collection.updateOne({ taskId, seq, tstatus: 'Processing', leaseId }, { $set: { startedAt: now } }, o),
    );
    return modifiedCount === 1;
  }

  async withStatus(taskId: Types.ObjectId, tstatus: 'Queued' | 'Processing', limit = 0): Promise<EngineItem[]> {
    return (await this.op('withStatus', (o) =>
      this.collection
        .find({ taskId, tstatus }, { projection: ENGINE_ITEM_FIELDS, sort: { seq: 1 }, limit, ...o })
        .toArray(),
    )) as unknown as EngineItem[];
  }

  async bulkWrite(ops: AnyBulkWriteOperation<Document>[]): Promise<number> {
    if (!ops.length) return 0;
    const result = await this.op('bulkWrite', (o) => this.collection.bulkWrite(ops, { ordered: true, ...o }));
    return result.modifiedCount;
  }

  /** Adoption: idempotent inserts (a repeated adoption skips what is already there). */
  async insertIgnoringDuplicates(docs: Document[]): Promise<void> {
    if (!docs.length) return;
    try {
      await this.op('insertMany', (o) => this.collection.insertMany(docs, { ordered: false, ...o }));
    } catch (error) {
      const writeErrors = (error as { writeErrors?: Array<{ code?: number }> | { code?: number } }).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
      if (!list.length || list.some((e) => e.code !== 11000)) throw error;
    }
  }
}

/** What the tasks API uses: a new task's items written, read and removed. */
export type TaskItemsForApi = Pick<
  TaskItemsRepository,
  'insertItems' | 'itemBatches' | 'countItems' | 'failedItems' | 'pendingTidBatches' | 'deleteForTask'
>;

/** What the engine uses: claims, takeovers, outcomes, adoption. */
export type TaskItemsForEngine = Pick<
  TaskItemsRepository,
  | 'claim'
  | 'claimMany'
  | 'bySeq'
  | 'takeOver'
  | 'restart'
  | 'unclaim'
  | 'outcomeOf'
  | 'editOf'
  | 'countFailed'
  | 'pendingTidBatches'
  | 'withStatus'
  | 'bulkWrite'
  | 'insertIgnoringDuplicates'
  | 'deleteForTask'
>;

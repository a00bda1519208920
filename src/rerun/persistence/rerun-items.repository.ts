import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { AnyBulkWriteOperation, Collection, Document } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { TaskItem } from '../../database/schemas';
import { bounded, Bounded, operationBoundMs } from './bounded';
import { EngineItem } from './engine-task';
import { nativeCollection } from './native-collection';

const ITEM_FIELDS = { seq: 1, tid: 1, tstatus: 1, leaseId: 1, startedAt: 1, asyncSince: 1, rerunID: 1 } as const;

/**
 * The engine's operations on `taskitems`. Every query is an equality on `{taskId, seq}` or
 * `{taskId, tstatus}` (both indexed), so no operation scans a task's items. Every operation settles
 * within a lease (bounded.ts).
 */
@Injectable()
export class RerunItemsRepository {
  private readonly items: Collection;
  private readonly boundMs: number;

  constructor(@InjectModel(TaskItem.name) model: Model<TaskItem>, config: AppConfig) {
    this.items = nativeCollection(model);
    this.boundMs = operationBoundMs(config.WORKER_LEASE_MS);
  }

  private op<T>(what: string, operation: (options: Bounded) => Promise<T>): Promise<T> {
    return bounded(this.boundMs, `taskitems.${what}`, operation);
  }

  /** Marks a Queued item Processing under a lease, before anything is sent for it. */
  async claim(taskId: Types.ObjectId, seq: number, leaseId: string, now: Date): Promise<EngineItem | null> {
    return (await this.op('claim', (o) =>
      this.items.findOneAndUpdate(
        { taskId, seq, tstatus: 'Queued' },
        { $set: { tstatus: 'Processing', leaseId, startedAt: now } },
        { projection: ITEM_FIELDS, returnDocument: 'after', ...o },
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
      this.items.bulkWrite(
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
    return new Map(
      found
        .filter((item) => item.tstatus === 'Processing' && item.leaseId === leaseOf.get(item.seq))
        .map((item) => [item.seq, item]),
    );
  }

  /** Items by seq (an equality `$in` on the `{taskId, seq}` index). */
  async bySeq(taskId: Types.ObjectId, seqs: number[]): Promise<EngineItem[]> {
    return (await this.op('bySeq', (o) =>
      this.items.find({ taskId, seq: { $in: seqs } }, { projection: ITEM_FIELDS, ...o }).toArray(),
    )) as unknown as EngineItem[];
  }

  /** Takes a Processing item over from a lease that is gone. */
  async takeOver(taskId: Types.ObjectId, item: EngineItem, leaseId: string): Promise<boolean> {
    const { modifiedCount } = await this.op('takeOver', (o) =>
      this.items.updateOne(
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

  /** A reconciled item that has to be sent again: its new start time. */
  async restart(taskId: Types.ObjectId, seq: number, leaseId: string, now: Date): Promise<boolean> {
    const { modifiedCount } = await this.op('restart', (o) =>
      this.items.updateOne({ taskId, seq, tstatus: 'Processing', leaseId }, { $set: { startedAt: now } }, o),
    );
    return modifiedCount === 1;
  }

  async withStatus(taskId: Types.ObjectId, tstatus: 'Queued' | 'Processing', limit = 0): Promise<EngineItem[]> {
    return (await this.op('withStatus', (o) =>
      this.items.find({ taskId, tstatus }, { projection: ITEM_FIELDS, sort: { seq: 1 }, limit, ...o }).toArray(),
    )) as unknown as EngineItem[];
  }

  async bulkWrite(ops: AnyBulkWriteOperation<Document>[]): Promise<number> {
    if (!ops.length) return 0;
    const result = await this.op('bulkWrite', (o) => this.items.bulkWrite(ops, { ordered: true, ...o }));
    return result.modifiedCount;
  }

  /** Adoption: idempotent inserts (a repeated adoption skips what is already there). */
  async insertIgnoringDuplicates(docs: Document[]): Promise<void> {
    if (!docs.length) return;
    try {
      await this.op('insertMany', (o) => this.items.insertMany(docs, { ordered: false, ...o }));
    } catch (error) {
      const writeErrors = (error as { writeErrors?: Array<{ code?: number }> | { code?: number } }).writeErrors;
      const list = Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [];
      if (!list.length || list.some((e) => e.code !== 11000)) throw error;
    }
  }

  async deleteForTask(taskId: Types.ObjectId): Promise<void> {
    await this.op('deleteMany', (o) => this.items.deleteMany({ taskId }, o));
  }
}

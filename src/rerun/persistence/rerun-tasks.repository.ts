import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Collection, Document, UpdateFilter } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { Task } from '../../database/schemas';
import { RUNNABLE_STATUSES, STARTING_STATUSES, TaskStatus } from '../../domain/task-status';
import { bounded, Bounded, operationBoundMs } from './bounded';
import { EmbeddedItem, EngineTask, Lease } from './engine-task';
import { historyEntry, pushHistory } from '../../database/task-history';
import { nativeCollection } from './native-collection';

/**
 * What a batch of outcomes does to a task's failed-in-a-row count: `reset` (a rerun succeeded):
 * the count becomes `failures` (those after the last success); else it grows by `failures`.
 */
export interface StreakChange {
  reset: boolean;
  failures: number;
}

const ENGINE_FIELDS = {
  status: 1,
  batchSize: 1,
  totalTransactions: 1,
  nextSeq: 1,
  leases: 1,
  itemsStore: 1,
  ratePerSecond: 1,
  rateNextAt: 1,
  asyncPending: 1,
  startAt: 1,
  startedAt: 1,
  pauseAfterFailures: 1,
} as const;
/**
 * Not before the task's `startAt`. `startAt` is written once, when the task is created, so a lane
 * that read the task knows it: the condition is needed only while `startAt` is still ahead, and is
 * left out once it has passed (or when there is none). A filter holding the current time is a new
 * filter on every call, which the embedded server compiles each time (~0.2 ms of its CPU per gate,
 * more than the rest of the gate: bench/openhim-core-runner.bench.ts).
 */
const notBefore = (startAt: Date | undefined, now: Date) =>
  startAt !== undefined && new Date(startAt).getTime() > now.getTime() ? { startAt: { $not: { $gt: now } } } : {};

/**
 * The engine's operations on task documents. Every write is one atomic single-document update whose
 * filter carries the condition (status, lease, cursor), so concurrent API calls and other workers
 * never interleave with it. Nothing here rewrites the embedded `transactions[]`. Every operation
 * settles within a lease (bounded.ts: the driver can otherwise leave one pending forever).
 */
@Injectable()
export class RerunTasksRepository {
  private readonly tasks: Collection;
  private readonly boundMs: number;

  constructor(@InjectModel(Task.name) model: Model<Task>, config: AppConfig) {
    this.tasks = nativeCollection(model);
    this.boundMs = operationBoundMs(config.WORKER_LEASE_MS);
  }

  private op<T>(what: string, operation: (options: Bounded) => Promise<T>): Promise<T> {
    return bounded(this.boundMs, `tasks.${what}`, operation);
  }

  async load(taskId: Types.ObjectId): Promise<EngineTask | null> {
    const task = await this.op('load', (o) => this.tasks.findOne({ _id: taskId }, { projection: ENGINE_FIELDS, ...o }));
    return task ? normalise(task) : null;
  }

  /** Tasks the sweeper looks after. */
  async findActive(statuses: readonly TaskStatus[]): Promise<EngineTask[]> {
    const found = await this.op('findActive', (o) =>
      this.tasks.find({ status: { $in: [...statuses] } }, { projection: ENGINE_FIELDS, ...o }).toArray(),
    );
    return found.map(normalise);
  }

  /** Takes a free slot: fewer than `batchSize` leases exist (checked in the same update). */
  async pushLease(taskId: Types.ObjectId, batchSize: number, lease: Lease): Promise<boolean> {
    const { modifiedCount } = await this.op('pushLease', (o) =>
      this.tasks.updateOne(
        {
          _id: taskId,
          status: { $in: RUNNABLE_STATUSES },
          itemsStore: 'items',
          [`leases.${batchSize - 1}`]: { $exists: false },
        },
        arrayUpdate({ $push: { leases: lease } }),
        o,
      ),
    );
    return modifiedCount === 1;
  }

  /** Removes the given leases if they are still expired (their holders died). */
  async pullExpired(taskId: Types.ObjectId, leaseIds: string[], now: Date): Promise<void> {
    await this.op('pullExpired', (o) =>
      this.tasks.updateOne(
        { _id: taskId },
        arrayUpdate({ $pull: { leases: { id: { $in: leaseIds }, until: { $lt: now } } } }),
        o,
      ),
    );
  }

  async renew(taskId: Types.ObjectId, leaseId: string, until: Date): Promise<boolean> {
    const { matchedCount } = await this.op('renew', (o) =>
      this.tasks.updateOne({ _id: taskId, 'leases.id': leaseId }, { $set: { 'leases.$.until': until } }, o),
    );
    return matchedCount === 1;
  }

  async release(taskId: Types.ObjectId, leaseId: string): Promise<void> {
    await this.op('release', (o) =>
      this.tasks.updateOne({ _id: taskId }, arrayUpdate({ $pull: { leases: { id: leaseId } } }), o),
    );
  }

  /** Lets the lease expire at once: whoever takes the slot next reconciles its item first. */
  async expire(taskId: Types.ObjectId, leaseId: string): Promise<void> {
    await this.op('expire', (o) =>
      this.tasks.updateOne({ _id: taskId, 'leases.id': leaseId }, { $set: { 'leases.$.until': new Date(0) } }, o),
    );
  }

  /**
   * The gate: one atomic update that checks the task is runnable and the lease still ours, takes the
   * next item (cursor), renews the lease to `until` (null: the slot's timer renews it) and, with a
   * rate limit, sets the next start time. `startAt`: the task's, as the lane read it (it never
   * changes).
   * Returns the seq taken, or null when the gate is closed.
   */
  async gate(
    taskId: Types.ObjectId,
    leaseId: string,
    total: number,
    until: Date | null,
    startAt: Date | undefined,
    rate?: { now: Date; next: Date },
  ): Promise<number | null> {
    const result = await this.op('gate', (o) =>
      this.tasks.findOneAndUpdate(
        {
          _id: taskId,
          status: { $in: RUNNABLE_STATUSES },
          'leases.id': leaseId,
          nextSeq: { $lt: total },
          ...notBefore(startAt, rate?.now ?? new Date()),
          ...(rate ? { rateNextAt: { $not: { $gt: rate.now } } } : {}),
        },
        {
          $inc: { nextSeq: 1 },
          $set: {
            status: 'Processing',
            ...(until ? { 'leases.$.until': until } : {}),
            ...(rate ? { rateNextAt: rate.next } : {}),
          },
        },
        { projection: { nextSeq: 1 }, returnDocument: 'before', ...o },
      ),
    );
    return result ? (result.nextSeq as number) : null;
  }

  /**
   * The gate for several lanes of this task at once: one update that checks every lease is still
   * there and at least `leaseIds.length` items are left and takes that many (the cursor moves by
   * that much); the slots' timers renew the leases. Returns the first seq taken (the lanes get
   * consecutive seqs), or null when any condition fails: the caller then gates each lane on its own.
   */
  async gateMany(
    taskId: Types.ObjectId,
    leaseIds: string[],
    total: number,
    startAt: Date | undefined,
  ): Promise<number | null> {
    const result = await this.op('gateMany', (o) =>
      this.tasks.findOneAndUpdate(
        {
          _id: taskId,
          status: { $in: RUNNABLE_STATUSES },
          'leases.id': { $all: leaseIds },
          nextSeq: { $lte: total - leaseIds.length },
          ...notBefore(startAt, new Date()),
        },
        {
          $inc: { nextSeq: leaseIds.length },
          $set: { status: 'Processing' },
        },
        { projection: { nextSeq: 1 }, returnDocument: 'before', ...o },
      ),
    );
    return result ? (result.nextSeq as number) : null;
  }

  /** The same check without taking an item (before rerunning an orphan). */
  async check(taskId: Types.ObjectId, leaseId: string, until: Date): Promise<boolean> {
    const { matchedCount } = await this.op('check', (o) =>
      this.tasks.updateOne(
        { _id: taskId, status: { $in: RUNNABLE_STATUSES }, 'leases.id': leaseId },
        { $set: { status: 'Processing', 'leases.$.until': until } },
        o,
      ),
    );
    return matchedCount === 1;
  }

  /** Every item started and none in flight; `Completed` when none waits for a 202 either. */
  async finish(taskId: Types.ObjectId, total: number, waiting: boolean): Promise<boolean> {
    const filter = {
      _id: taskId,
      status: { $in: waiting ? STARTING_STATUSES : RUNNABLE_STATUSES },
      nextSeq: { $gte: total },
      leases: { $size: 0 },
    };
    const now = new Date();
    const update = waiting
      ? { $set: { status: 'Pending Async' } }
      : {
          $set: { status: 'Completed', completedDate: now, remainingTransactions: 0, asyncPending: 0 },
          $push: pushHistory(historyEntry('completed', { at: now })),
        };
    const { modifiedCount } = await this.op('finish', (o) => this.tasks.updateOne(filter, arrayUpdate(update), o));
    return modifiedCount === 1;
  }

  /** Writes the history entry `started` the first time a rerun of the task is sent (once). */
  async markStarted(taskId: Types.ObjectId): Promise<void> {
    const now = new Date();
    await this.op('markStarted', (o) =>
      this.tasks.updateOne(
        { _id: taskId, startedAt: { $exists: false } },
        arrayUpdate({ $set: { startedAt: now }, $push: pushHistory(historyEntry('started', { at: now })) }),
        o,
      ),
    );
  }

  /**
   * Progress counters and the run of failed reruns in a row, batched; a completed task keeps its
   * zeros. Returns the task's failure streak afterwards when `streak` changed it (else null).
   */
  async addCounters(
    taskId: Types.ObjectId,
    done: number,
    asyncDelta: number,
    streak?: StreakChange,
  ): Promise<{ failureStreak: number; pauseAfterFailures?: number } | null> {
    const inc: Record<string, number> = {};
    const set: Record<string, number> = {};
    if (done) inc.remainingTransactions = -done;
    if (asyncDelta) inc.asyncPending = asyncDelta;
    if (streak?.reset) set.failureStreak = streak.failures;
    else if (streak?.failures) inc.failureStreak = streak.failures;
    if (!Object.keys(inc).length && !Object.keys(set).length) return null;
    const update = {
      ...(Object.keys(inc).length ? { $inc: inc } : {}),
      ...(Object.keys(set).length ? { $set: set } : {}),
    };
    const filter = { _id: taskId, status: { $ne: 'Completed' } };
    // The streak is read back only when it may have reached the threshold.
    if (!streak?.failures) {
      await this.op('addCounters', (o) => this.tasks.updateOne(filter, update, o));
      return null;
    }
    const after = await this.op('addCounters', (o) =>
      this.tasks.findOneAndUpdate(filter, update, {
        projection: { failureStreak: 1, pauseAfterFailures: 1 },
        returnDocument: 'after',
        ...o,
      }),
    );
    if (!after) return null;
    return {
      failureStreak: Number(after.failureStreak ?? 0),
      ...(typeof after.pauseAfterFailures === 'number' ? { pauseAfterFailures: after.pauseAfterFailures } : {}),
    };
  }

  /**
   * Pauses a running task whose reruns keep failing (at least `threshold` in a row), with the
   * history entry saying why. Returns whether this call paused it.
   */
  async autoPause(taskId: Types.ObjectId, threshold: number, reason: string): Promise<boolean> {
    const { modifiedCount } = await this.op('autoPause', (o) =>
      this.tasks.updateOne(
        { _id: taskId, status: { $in: RUNNABLE_STATUSES }, failureStreak: { $gte: threshold } },
        arrayUpdate({ $set: { status: 'Paused' }, $push: pushHistory(historyEntry('auto-paused', { reason })) }),
        o,
      ),
    );
    return modifiedCount === 1;
  }

  // ---- adoption of tasks created by OpenHIM core --------------------------------------------------

  /** Only one worker adopts a task at a time (the lock expires with its holder). */
  async lockAdoption(taskId: Types.ObjectId, owner: string, until: Date): Promise<boolean> {
    const now = new Date();
    const { modifiedCount } = await this.op('lockAdoption', (o) =>
      this.tasks.updateOne(
        {
          _id: taskId,
          status: 'Queued',
          itemsStore: { $exists: false },
          $or: [{ adoptLock: { $exists: false } }, { 'adoptLock.until': { $lt: now } }, { 'adoptLock.owner': owner }],
        },
        { $set: { adoptLock: { owner, until } } },
        o,
      ),
    );
    return modifiedCount === 1;
  }

  async embeddedItems(taskId: Types.ObjectId): Promise<EmbeddedItem[]> {
    const task = await this.op('embeddedItems', (o) =>
      this.tasks.findOne({ _id: taskId }, { projection: { transactions: 1 }, ...o }),
    );
    return (task?.transactions as EmbeddedItem[] | undefined) ?? [];
  }

  /**
   * Switches the task to the items store. The embedded array is emptied in the same update: every
   * later write to the task document stays small (the items now live in `taskitems`).
   */
  async commitAdoption(taskId: Types.ObjectId, owner: string, total: number, remaining: number): Promise<boolean> {
    const { modifiedCount } = await this.op('commitAdoption', (o) =>
      this.tasks.updateOne(
        { _id: taskId, itemsStore: { $exists: false }, 'adoptLock.owner': owner },
        {
          $set: {
            itemsStore: 'items',
            transactions: [],
            totalTransactions: total,
            remainingTransactions: remaining,
            nextSeq: 0,
            leases: [],
            asyncPending: 0,
          },
          $unset: { adoptLock: '' },
        },
        o,
      ),
    );
    return modifiedCount === 1;
  }
}

/** The driver's update types reject `$push`/`$pull` on untyped documents; these are plain MongoDB. */
function arrayUpdate(update: Record<string, unknown>): UpdateFilter<Document> {
  return update as UpdateFilter<Document>;
}

function normalise(doc: Record<string, unknown>): EngineTask {
  return {
    ...(doc as unknown as EngineTask),
    batchSize: Math.max(1, Number(doc.batchSize ?? 1)),
    totalTransactions: Number(doc.totalTransactions ?? 0),
    nextSeq: Number(doc.nextSeq ?? 0),
    leases: Array.isArray(doc.leases) ? (doc.leases as Lease[]).filter(Boolean) : [],
  };
}

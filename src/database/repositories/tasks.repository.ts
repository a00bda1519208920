import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Document, UpdateFilter } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { CollectionRepository } from './collection-repository';
import { RUNNABLE_STATUSES, STARTING_STATUSES, TASK_STATUSES, TaskStatus } from '../../domain/task-status';
import { StoredTask, Task, TaskLease, TaskTransaction } from '../schemas';
import { HistoryEntry, historyEntry, pushHistory } from '../task-history';
import { batchesOf, firstBatch, MAX_INT32, noBatches, Page, projection } from './cursors';

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
  'autoResume',
  'notify',
  'transform',
  'startAt',
  'rerunOf',
  '__v',
] as const;
/** What GET /tasks/:id shows beyond the list: the task's history. */
export const PUBLIC_TASK_DETAIL_FIELDS = [...PUBLIC_TASK_FIELDS, 'history'] as const;

/** The API's view of a task: its public fields (and `itemsStore`, to know where its items are). */
export type TaskRecord = Pick<StoredTask, '_id' | 'status'> &
  Partial<Pick<StoredTask, (typeof PUBLIC_TASK_DETAIL_FIELDS)[number] | 'itemsStore'>>;

export type Lease = TaskLease;

/** The engine's view of a task. */
export type EngineTask = Pick<StoredTask, '_id' | 'status' | 'batchSize' | 'totalTransactions'> &
  Required<Pick<StoredTask, 'nextSeq' | 'leases'>> &
  Pick<
    StoredTask,
    | 'itemsStore'
    | 'ratePerSecond'
    | 'rateNextAt'
    | 'asyncPending'
    | 'startAt'
    | 'startedAt'
    | 'pauseAfterFailures'
    | 'transform'
    | 'hasEdits'
  >;

/** An item embedded in `transactions[]` by OpenHIM core. */
export type EmbeddedItem = Partial<TaskTransaction>;

/** A task the API creates. */
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
  autoResume?: boolean;
  /** Contact groups e-mailed about its events (instead of NOTIFY_GROUPS). */
  notify?: string[];
  /** A validated TransformSpec (src/rerun/transform). */
  transform?: Record<string, unknown>;
  /** Some items have an `edit`. */
  hasEdits?: boolean;
  startAt?: Date;
  rerunOf?: string;
  history?: HistoryEntry[];
  /** Created Paused by the emergency stop's hold (its id). */
  heldBy?: Types.ObjectId;
}

/** A task the emergency stop pauses or releases: enough to find its items and its lanes. */
export type HoldCandidate = Pick<StoredTask, '_id' | 'status'> & Partial<Pick<StoredTask, 'batchSize' | 'itemsStore'>>;

/** A status change of the emergency stop: the new status, the hold the task is then held by (null: none). */
export interface HoldChange {
  status: TaskStatus;
  heldBy: Types.ObjectId | null;
  history: HistoryEntry;
  set?: Record<string, unknown>;
}

/**
 * What a batch of outcomes does to a task's failed-in-a-row count: `reset` (a rerun succeeded):
 * the count becomes `failures` (those after the last success); else it grows by `failures`.
 */
export interface StreakChange {
  reset: boolean;
  failures: number;
}

const ENGINE_FIELDS: Record<Exclude<keyof EngineTask, '_id'>, 1> = {
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
  transform: 1,
  hasEdits: 1,
};
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
 * OpenHIM's `tasks` collection (configurable: TASKS_COLLECTION), for the API and the engine alike.
 *
 * The engine's writes are each one atomic single-document update whose filter carries the condition
 * (status, lease, cursor), so concurrent API calls and other workers never interleave with them; the
 * API changes a status only from the statuses it read (`setStatusIf`). Nothing here rewrites a
 * task's embedded `transactions[]` except adoption, which empties it. The engine's operations settle
 * within a lease (driver/bounded.ts: the driver can otherwise leave one pending forever); the API's
 * fail as the driver fails them (the exception filter answers 503).
 */
@Injectable()
export class TasksRepository extends CollectionRepository<Task> {
  constructor(@InjectModel(Task.name) model: Model<Task>, config: AppConfig) {
    super(model, config);
  }

  newId(): Types.ObjectId {
    return new Types.ObjectId();
  }

  // ---- the API ------------------------------------------------------------------------------------

  /** The task document in the store format the engine relies on (docs/design.md). */
  async insertTask(task: NewTask): Promise<void> {
    await this.collection.insertOne({
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
      ...(task.autoResume ? { autoResume: true } : {}),
      ...(task.notify ? { notify: task.notify } : {}),
      ...(task.transform ? { transform: task.transform } : {}),
      ...(task.hasEdits ? { hasEdits: true } : {}),
      failureStreak: 0,
      ...(task.startAt !== undefined ? { startAt: task.startAt } : {}),
      ...(task.rerunOf !== undefined ? { rerunOf: task.rerunOf } : {}),
      ...(task.heldBy !== undefined ? { heldBy: task.heldBy } : {}),
      history: task.history ?? [],
      __v: 0,
    });
  }

  /** Removes a task; whether it was there. */
  async delete(taskId: Types.ObjectId): Promise<boolean> {
    const { deletedCount } = await this.collection.deleteOne({ _id: taskId });
    return deletedCount > 0;
  }

  /**
   * Newest first; never the transactions nor our internal fields. Read from a driver cursor in
   * batches (lean, no mongoose documents), so a page of any size never sits in memory at once.
   */
  listBatches(query: Document, paging: Page): AsyncIterable<TaskRecord[]> {
    if (paging.skip > MAX_INT32) return noBatches();
    const limit = paging.limit > MAX_INT32 ? 0 : paging.limit;
    return batchesOf(
      this.collection.find<TaskRecord>(query, {
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
    return this.model
      .findById(id, projection([...PUBLIC_TASK_DETAIL_FIELDS, 'itemsStore']))
      .lean<TaskRecord>()
      .exec();
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
    const { matchedCount } = await this.collection.updateOne({ _id: id, status: { $in: [...from] } }, {
      $set: { status: to, ...change.set },
      // A person's change ends the emergency stop's and the breaker's claims on the task: neither
      // resume-all nor a probe resumes it afterwards.
      $unset: { heldBy: '', waitingFor: '' },
      ...(change.history ? { $push: pushHistory(change.history) } : {}),
    } as UpdateFilter<Document>);
    return matchedCount > 0;
  }

  /** The tasks in one of `statuses` (the emergency stop's candidates; few: unfinished ones). */
  async findInStatuses(statuses: readonly TaskStatus[]): Promise<HoldCandidate[]> {
    return this.collection
      .find<HoldCandidate>(
        { status: { $in: [...statuses] } },
        { projection: { status: 1, batchSize: 1, itemsStore: 1 }, sort: { created: 1, _id: 1 } },
      )
      .toArray();
  }

  /** The tasks a hold paused that are in one of `statuses` still. */
  async findHeldBy(holdId: Types.ObjectId, statuses: readonly TaskStatus[]): Promise<HoldCandidate[]> {
    return this.collection
      .find<HoldCandidate>(
        { heldBy: holdId, status: { $in: [...statuses] } },
        { projection: { status: 1, batchSize: 1, itemsStore: 1 } },
      )
      .toArray();
  }

  /**
   * The emergency stop's status change, only from one of `from` (and, with `heldBy`, only while that
   * hold holds the task), with its history entry in the same write. Returns whether it applied.
   * The API's and the engine's (after an adoption): settles within a lease.
   */
  async setHoldIf(
    id: Types.ObjectId,
    condition: { from: readonly TaskStatus[]; heldBy?: Types.ObjectId },
    change: HoldChange,
  ): Promise<boolean> {
    const { matchedCount } = await this.op('setHoldIf', (o) =>
      this.collection.updateOne(
        { _id: id, status: { $in: [...condition.from] }, ...(condition.heldBy ? { heldBy: condition.heldBy } : {}) },
        arrayUpdate({
          $set: { status: change.status, ...(change.heldBy ? { heldBy: change.heldBy } : {}), ...change.set },
          ...(change.heldBy ? {} : { $unset: { heldBy: '' } }),
          $push: pushHistory(change.history),
        }),
        o,
      ),
    );
    return matchedCount > 0;
  }

  /** Takes back a history entry written by a change that was then undone (a resume Redis refused). */
  async removeHistoryEntry(id: Types.ObjectId, entry: HistoryEntry): Promise<void> {
    const pull: Document = { $pull: { history: { ...entry } } };
    await this.collection.updateOne({ _id: id }, pull);
  }

  /**
   * One count per status (the tasks gauge), each answered from the `status` index, rather than a
   * $group that reads every task (OpenHIM databases keep years of them).
   */
  async countByStatus(): Promise<Map<string, number>> {
    const counts = await Promise.all(TASK_STATUSES.map((status) => this.collection.countDocuments({ status })));
    return new Map(TASK_STATUSES.map((status, index) => [status, counts[index]]));
  }

  /** The embedded `transactions[]` of a task created by OpenHIM core (the API shows them, the engine adopts them). */
  async embeddedItems(taskId: Types.ObjectId): Promise<EmbeddedItem[]> {
    const task = await this.op('embeddedItems', (o) =>
      this.collection.findOne({ _id: taskId }, { projection: { transactions: 1 }, ...o }),
    );
    return (task?.transactions as EmbeddedItem[] | undefined) ?? [];
  }

  // ---- the engine ---------------------------------------------------------------------------------

  async load(taskId: Types.ObjectId): Promise<EngineTask | null> {
    const task = await this.op('load', (o) =>
      this.collection.findOne({ _id: taskId }, { projection: ENGINE_FIELDS, ...o }),
    );
    return task ? normalise(task) : null;
  }

  /** Tasks the sweeper looks after. */
  async findActive(statuses: readonly TaskStatus[]): Promise<EngineTask[]> {
    const found = await this.op('findActive', (o) =>
      this.collection.find({ status: { $in: [...statuses] } }, { projection: ENGINE_FIELDS, ...o }).toArray(),
    );
    return found.map(normalise);
  }

  /** Takes a free slot: fewer than `batchSize` leases exist (checked in the same update). */
  async pushLease(taskId: Types.ObjectId, batchSize: number, lease: Lease): Promise<boolean> {
    const { modifiedCount } = await this.op('pushLease', (o) =>
      this.collection.updateOne(
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
      this.collection.updateOne(
        { _id: taskId },
        arrayUpdate({ $pull: { leases: { id: { $in: leaseIds }, until: { $lt: now } } } }),
        o,
      ),
    );
  }

  async renew(taskId: Types.ObjectId, leaseId: string, until: Date): Promise<boolean> {
    const { matchedCount } = await this.op('renew', (o) =>
      this.collection.updateOne({ _id: taskId, 'leases.id': leaseId }, { $set: { 'leases.$.until': until } }, o),
    );
    return matchedCount === 1;
  }

  async release(taskId: Types.ObjectId, leaseId: string): Promise<void> {
    await this.op('release', (o) =>
      this.collection.updateOne({ _id: taskId }, arrayUpdate({ $pull: { leases: { id: leaseId } } }), o),
    );
  }

  /** Lets the lease expire at once: whoever takes the slot next reconciles its item first. */
  async expire(taskId: Types.ObjectId, leaseId: string): Promise<void> {
    await this.op('expire', (o) =>
      this.collection.updateOne({ _id: taskId, 'leases.id': leaseId }, { $set: { 'leases.$.until': new Date(0) } }, o),
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
      this.collection.findOneAndUpdate(
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
      this.collection.findOneAndUpdate(
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
      this.collection.updateOne(
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
    const { modifiedCount } = await this.op('finish', (o) => this.collection.updateOne(filter, arrayUpdate(update), o));
    return modifiedCount === 1;
  }

  /** Writes the history entry `started` the first time a rerun of the task is sent (once). */
  async markStarted(taskId: Types.ObjectId): Promise<boolean> {
    const now = new Date();
    const { modifiedCount } = await this.op('markStarted', (o) =>
      this.collection.updateOne(
        { _id: taskId, startedAt: { $exists: false } },
        arrayUpdate({ $set: { startedAt: now }, $push: pushHistory(historyEntry('started', { at: now })) }),
        o,
      ),
    );
    return modifiedCount === 1;
  }

  /** What a notification says of a task: its creator and counts. */
  async summary(
    taskId: Types.ObjectId,
  ): Promise<{ user?: string; totalTransactions?: number; remainingTransactions?: number; notify?: string[] } | null> {
    return (await this.op('summary', (o) =>
      this.collection.findOne(
        { _id: taskId },
        { projection: { _id: 0, user: 1, totalTransactions: 1, remainingTransactions: 1, notify: 1 }, ...o },
      ),
    )) as { user?: string; totalTransactions?: number; remainingTransactions?: number; notify?: string[] } | null;
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
  ): Promise<{ failureStreak: number; pauseAfterFailures?: number; autoResume?: boolean } | null> {
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
      await this.op('addCounters', (o) => this.collection.updateOne(filter, update, o));
      return null;
    }
    const after = await this.op('addCounters', (o) =>
      this.collection.findOneAndUpdate(filter, update, {
        projection: { failureStreak: 1, pauseAfterFailures: 1, autoResume: 1 },
        returnDocument: 'after',
        ...o,
      }),
    );
    if (!after) return null;
    return {
      failureStreak: Number(after.failureStreak ?? 0),
      ...(typeof after.pauseAfterFailures === 'number' ? { pauseAfterFailures: after.pauseAfterFailures } : {}),
      ...(after.autoResume === true ? { autoResume: true } : {}),
    };
  }

  /**
   * Pauses a running task whose reruns keep failing (at least `threshold` in a row), with the
   * history entry saying why. Returns whether this call paused it.
   */
  async autoPause(
    taskId: Types.ObjectId,
    threshold: number,
    reason: string,
    /** The task has `autoResume`: it waits for this channel's probe. */
    waitingFor?: Types.ObjectId,
  ): Promise<boolean> {
    const { modifiedCount } = await this.op('autoPause', (o) =>
      this.collection.updateOne(
        { _id: taskId, status: { $in: RUNNABLE_STATUSES }, failureStreak: { $gte: threshold } },
        arrayUpdate({
          $set: { status: 'Paused', ...(waitingFor ? { waitingFor } : {}) },
          $push: pushHistory(historyEntry('auto-paused', { reason })),
        }),
        o,
      ),
    );
    return modifiedCount === 1;
  }

  // ---- outage recovery: tasks waiting for a channel's downstream ----------------------------------

  /** A channel's breaker pauses a runnable task, which then waits for the channel's probe. */
  async pauseForChannel(taskId: Types.ObjectId, channelId: Types.ObjectId, reason: string): Promise<boolean> {
    const { modifiedCount } = await this.op('pauseForChannel', (o) =>
      this.collection.updateOne(
        { _id: taskId, status: { $in: RUNNABLE_STATUSES } },
        arrayUpdate({
          $set: { status: 'Paused', waitingFor: channelId },
          $unset: { heldBy: '' },
          $push: pushHistory(historyEntry('breaker-paused', { reason })),
        }),
        o,
      ),
    );
    return modifiedCount === 1;
  }

  /** The tasks waiting (Paused) for a channel's probe, oldest first. */
  async findWaitingFor(channelId: Types.ObjectId): Promise<HoldCandidate[]> {
    return this.op('findWaitingFor', (o) =>
      this.collection
        .find<HoldCandidate>(
          { waitingFor: channelId, status: 'Paused' },
          { projection: { status: 1, batchSize: 1, itemsStore: 1 }, sort: { created: 1, _id: 1 }, ...o },
        )
        .toArray(),
    );
  }

  /** The channels tasks are waiting for (Paused, for a probe). */
  async channelsWaitedFor(): Promise<Types.ObjectId[]> {
    const values = await this.op('channelsWaitedFor', (o) =>
      this.collection.distinct('waitingFor', { status: 'Paused', waitingFor: { $exists: true } }, o),
    );
    return values.filter((value): value is Types.ObjectId => value instanceof Types.ObjectId);
  }

  /** A probe succeeded: a task still waiting for the channel runs again. */
  async resumeWaiting(taskId: Types.ObjectId, channelId: Types.ObjectId, reason: string): Promise<boolean> {
    const { modifiedCount } = await this.op('resumeWaiting', (o) =>
      this.collection.updateOne(
        { _id: taskId, status: 'Paused', waitingFor: channelId },
        arrayUpdate({
          $set: { status: 'Queued', failureStreak: 0 },
          $unset: { waitingFor: '' },
          $push: pushHistory(historyEntry('auto-resumed', { reason })),
        }),
        o,
      ),
    );
    return modifiedCount === 1;
  }

  /** The probe's slot in a task waiting for its channel (Paused, so the gates stay closed). */
  async pushProbeLease(taskId: Types.ObjectId, channelId: Types.ObjectId, lease: Lease): Promise<boolean> {
    const { modifiedCount } = await this.op('pushProbeLease', (o) =>
      this.collection.updateOne(
        { _id: taskId, status: 'Paused', waitingFor: channelId, itemsStore: 'items' },
        arrayUpdate({ $push: { leases: lease } }),
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
      this.collection.updateOne(
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

  /**
   * Switches the task to the items store. The embedded array is emptied in the same update: every
   * later write to the task document stays small (the items now live in `taskitems`).
   */
  async commitAdoption(
    taskId: Types.ObjectId,
    owner: string,
    total: number,
    remaining: number,
    /** The emergency stop holds the task: it changes status (only from `from`) in the same update. */
    held?: { from: readonly TaskStatus[]; change: HoldChange },
  ): Promise<boolean> {
    const { modifiedCount } = await this.op('commitAdoption', (o) =>
      this.collection.updateOne(
        {
          _id: taskId,
          itemsStore: { $exists: false },
          'adoptLock.owner': owner,
          ...(held ? { status: { $in: [...held.from] } } : {}),
        },
        arrayUpdate({
          $set: {
            itemsStore: 'items',
            transactions: [],
            totalTransactions: total,
            remainingTransactions: remaining,
            nextSeq: 0,
            leases: [],
            asyncPending: 0,
            ...(held ? { status: held.change.status, heldBy: held.change.heldBy } : {}),
          },
          $unset: { adoptLock: '' },
          ...(held ? { $push: pushHistory(held.change.history) } : {}),
        }),
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

/** What the tasks API and the tasks gauge use: statuses, history, listing (never the engine's leases, cursor, counters). */
export type TasksForApi = Pick<
  TasksRepository,
  | 'newId'
  | 'insertTask'
  | 'delete'
  | 'listBatches'
  | 'findById'
  | 'setStatusIf'
  | 'findInStatuses'
  | 'findHeldBy'
  | 'setHoldIf'
  | 'removeHistoryEntry'
  | 'countByStatus'
  | 'embeddedItems'
>;

/** What the engine uses: slots, the gate, counters, finishing and adoption. */
export type TasksForEngine = Pick<
  TasksRepository,
  | 'load'
  | 'findActive'
  | 'pushLease'
  | 'pullExpired'
  | 'renew'
  | 'release'
  | 'expire'
  | 'gate'
  | 'gateMany'
  | 'check'
  | 'finish'
  | 'markStarted'
  | 'summary'
  | 'addCounters'
  | 'autoPause'
  | 'pauseForChannel'
  | 'findWaitingFor'
  | 'channelsWaitedFor'
  | 'resumeWaiting'
  | 'pushProbeLease'
  | 'findInStatuses'
  | 'lockAdoption'
  | 'embeddedItems'
  | 'commitAdoption'
  | 'setHoldIf'
>;

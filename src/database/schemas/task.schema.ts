import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';
import { ItemStatus, TASK_STATUSES, TaskStatus } from '../../domain/task-status';
import type { HistoryEntry } from '../task-history';

/** One entry of OpenHIM's embedded `transactions[]` (the shape clients see). */
@Schema({ _id: true, strict: false })
export class TaskTransaction {
  _id?: Types.ObjectId;
  @Prop({ required: true }) tid: string;
  @Prop({ default: 'Queued' }) tstatus: string;
  @Prop() error?: string;
  @Prop() rerunID?: string;
  @Prop() rerunStatus?: string;
  /** Ours, for tasks that transform their requests: the SHA-256 (hex) of the body sent. */
  bodySha256?: string;
}
export const TaskTransactionSchema = SchemaFactory.createForClass(TaskTransaction);

/** A worker's hold on one of a task's `batchSize` slots (see docs/design.md). */
@Schema({ _id: false })
export class TaskLease {
  @Prop({ required: true }) id: string;
  @Prop({ required: true }) owner: string;
  @Prop({ required: true }) until: Date;
}
export const TaskLeaseSchema = SchemaFactory.createForClass(TaskLease);

/**
 * OpenHIM's task document (collection `tasks`, configurable). OpenHIM fields first, then ours.
 * Tasks we create keep their items in the `taskitems` collection (`itemsStore: 'items'`) and an
 * empty `transactions[]`; tasks created by OpenHIM core have their items embedded in `transactions[]`
 * until the engine adopts them.
 */
@Schema({ strict: false, versionKey: '__v' })
export class Task {
  @Prop({ type: String, enum: TASK_STATUSES, default: 'Queued', index: true }) status: TaskStatus;
  @Prop({ type: [TaskTransactionSchema], default: [] }) transactions: TaskTransaction[];
  @Prop({ type: Date, default: Date.now }) created: Date;
  @Prop() completedDate?: Date;
  @Prop() user: string;
  @Prop() remainingTransactions: number;
  @Prop() totalTransactions: number;
  @Prop({ default: 1 }) batchSize: number;

  /** 'items' when the items live in `taskitems`; absent for tasks created by OpenHIM core. */
  @Prop() itemsStore?: 'items';
  /** Optional cap on reruns started per second (beyond OpenHIM). */
  @Prop() ratePerSecond?: number;
  /** Who did what, when: newest last, at most HISTORY_LIMIT (beyond OpenHIM). */
  @Prop({ type: [Object], default: undefined }) history?: HistoryEntry[];
  /** The engine pauses the task after this many failed reruns in a row (0: never). */
  @Prop() pauseAfterFailures?: number;
  /** Failed reruns in a row so far (the engine's; a resume resets it). */
  @Prop() failureStreak?: number;
  /** No rerun of the task starts before this. */
  @Prop() startAt?: Date;
  /** A rerun of the failed transactions of this task (its id). */
  @Prop() rerunOf?: string;
  /** Next item (by seq) to start: items below it were started or skipped. */
  @Prop({ default: 0 }) nextSeq?: number;
  @Prop({ type: [TaskLeaseSchema], default: undefined }) leases?: TaskLease[];
  /** Items answered 202 and waiting for their child transaction to finish. */
  @Prop({ default: 0 }) asyncPending?: number;
  /** With `ratePerSecond`: no rerun of the task starts before this (the engine's pacing). */
  @Prop() rateNextAt?: Date;
  /** When the first rerun was sent (its history entry `started` is written once). */
  @Prop() startedAt?: Date;
  /** The emergency stop's hold that paused the task (cleared by any other status change). */
  @Prop({ type: Types.ObjectId }) heldBy?: Types.ObjectId;
  /**
   * Paused for a channel's downstream (its circuit breaker, or auto-pause with `autoResume`): the
   * channel whose successful probe resumes the task (cleared by any other status change).
   */
  @Prop({ type: Types.ObjectId }) waitingFor?: Types.ObjectId;
  /** Auto-pause (pauseAfterFailures) leaves the task waiting for its channel's probe, like the breaker. */
  @Prop() autoResume?: boolean;
  /** Contact groups e-mailed about the task's events (instead of NOTIFY_GROUPS). */
  @Prop({ type: [String], default: undefined }) notify?: string[];
  /**
   * Applied by the engine to each rerun request before it is sent ("Fix, then rerun"): a validated
   * `TransformSpec` (src/rerun/transform), stored as given.
   */
  @Prop({ type: Object }) transform?: Record<string, unknown>;
  /** Some items carry an `edit` of their own (their request replaced in part). */
  @Prop() hasEdits?: boolean;
  /** The worker adopting a task created by OpenHIM core, until when (one at a time). */
  @Prop({ type: Object }) adoptLock?: { owner: string; until: Date };
}
/** A task document as stored: the one declaration of its shape (repositories pick their views of it). */
export type StoredTask = Task & { _id: Types.ObjectId; __v?: number };
export type TaskDocument = HydratedDocument<Task>;
export const TaskSchema = SchemaFactory.createForClass(Task);
// The task list's order (newest first, ties by id): read in index order, never sorted in memory, which
// MongoDB 4.2 refuses past 32 MB (a console page of every task).
TaskSchema.index({ created: -1, _id: -1 });

/** One rerun of one transaction, for tasks with `itemsStore: 'items'` (collection `taskitems`). */
@Schema({ collection: 'taskitems', versionKey: false })
export class TaskItem {
  @Prop({ type: Types.ObjectId, required: true }) taskId: Types.ObjectId;
  /** Position in the task's `tids` (items start in this order). */
  @Prop({ required: true }) seq: number;
  @Prop({ required: true }) tid: string;
  @Prop({ type: String, default: 'Queued' }) tstatus: ItemStatus;
  @Prop() error?: string;
  @Prop() rerunID?: string;
  @Prop() rerunStatus?: string;
  @Prop() startedAt?: Date;
  @Prop() finishedAt?: Date;
  /** Lease id of the slot running it (while Processing). */
  @Prop() leaseId?: string;
  /** When OpenHIM answered 202: the item waits for its child transaction from then on. */
  @Prop() asyncSince?: Date;
  /** This transaction's own replacement of body and/or headers (a task's `edits`). */
  @Prop({ type: Object }) edit?: { body?: string; headers?: Record<string, string> };
  /** Of a task that transforms its requests: the SHA-256 (hex) of the body sent. */
  @Prop() bodySha256?: string;
}
/** An item as stored. */
export type StoredTaskItem = TaskItem & { _id: Types.ObjectId };
export type TaskItemDocument = HydratedDocument<TaskItem>;
export const TaskItemSchema = SchemaFactory.createForClass(TaskItem);
TaskItemSchema.index({ taskId: 1, seq: 1 }, { unique: true });
// The engine's reads of a task's items by status come in task order: the index gives both.
TaskItemSchema.index({ taskId: 1, tstatus: 1, seq: 1 });

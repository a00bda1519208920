import type { Types } from 'mongoose';
import type { TaskStatus } from '../../domain/task-status';

export interface Lease {
  id: string;
  owner: string;
  until: Date;
}

/** The engine's view of a task document. */
export interface EngineTask {
  _id: Types.ObjectId;
  status: TaskStatus;
  batchSize: number;
  totalTransactions: number;
  nextSeq: number;
  leases: Lease[];
  itemsStore?: 'items';
  ratePerSecond?: number;
  rateNextAt?: Date;
  asyncPending?: number;
  /** No item starts before this. */
  startAt?: Date;
  /** When the first rerun was sent (its history entry `started` is written once). */
  startedAt?: Date;
  /** Failed reruns in a row that pause the task (absent: AUTO_PAUSE_AFTER_FAILURES; 0: never). */
  pauseAfterFailures?: number;
}

/** How long until the task may start (0: now), from its `startAt`. */
export function untilStart(task: Pick<EngineTask, 'startAt'>, now = Date.now()): number {
  return task.startAt ? Math.max(0, new Date(task.startAt).getTime() - now) : 0;
}

/** The engine's view of an item (`taskitems`). */
export interface EngineItem {
  _id: Types.ObjectId;
  seq: number;
  tid: string;
  tstatus: string;
  leaseId?: string;
  startedAt?: Date;
  /** Set while the item waits for the child transaction of a 202 answer. */
  asyncSince?: Date;
  rerunID?: string;
}

/** An embedded item of a task created by OpenHIM core. */
export interface EmbeddedItem {
  _id?: Types.ObjectId;
  tid?: unknown;
  tstatus?: string;
  error?: string;
  rerunID?: string;
  rerunStatus?: string;
}

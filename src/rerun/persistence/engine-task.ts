import type { Types } from 'mongoose';
import type { TaskStatus } from '../../database/schemas';

/** Statuses in which a task's slots may be held and its items started. */
export const RUNNABLE: TaskStatus[] = ['Queued', 'Processing', 'Pending Async'];

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

import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { TasksForEngine } from '../../database/repositories/tasks.repository';
import type { KeptPermit, PermitHolder } from '../guards/channel-guards.service';
import type { TransformSpec } from '../transform/request-transform';

/**
 * One of a task's `batchSize` slots, held by a lane through a lease in the task document.
 * The lease is renewed by a timer (every lease/3) while the lane holds the slot (the start gates
 * leave it alone: a lease write per gate cost the embedded server more than the rest of the gate;
 * only the rate-limited gate renews it).
 * Locally the slot counts as valid only while at least a third of the lease is left, so a lane that
 * was frozen (or cut off from MongoDB) never starts a send on a lease another worker may have taken.
 */
export class Slot implements PermitHolder {
  readonly leaseId = randomUUID();
  readonly taskKey: string;
  /** Set between claiming an item and recording its outcome. */
  dirty = false;
  /** The channel (hex id) of the item being run, once its transaction is read: its breaker counts the outcome. */
  channel?: string;
  /** The channel's permit the lane keeps between two reruns (guards with limits far off). */
  keptPermit?: KeptPermit;
  /** The task's transform and whether its items may carry edits (read with the task). */
  transform?: TransformSpec;
  hasEdits = false;
  /** Of a transformed rerun: the SHA-256 of the body sent (recorded with the outcome). */
  bodySha256?: string;
  private validUntil: number;
  private lost = false;
  private readonly pending = new Set<Promise<void>>();
  private timer?: NodeJS.Timeout;

  constructor(
    readonly taskId: Types.ObjectId,
    private readonly tasks: TasksForEngine,
    private readonly leaseMs: number,
    acquiredAt: number,
    /** What the task asks of its requests ("Fix, then rerun"). */
    task?: { transform?: Record<string, unknown>; hasEdits?: boolean },
  ) {
    this.taskKey = taskId.toHexString();
    this.validUntil = acquiredAt + leaseMs;
    this.transform = task?.transform as TransformSpec | undefined;
    this.hasEdits = task?.hasEdits === true;
  }

  get until(): Date {
    return new Date(Date.now() + this.leaseMs);
  }

  startRenewing(): void {
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.timer.unref();
  }

  /** The lease was written (by a gate) with `sentAt + lease`. */
  renewed(sentAt: number): void {
    this.validUntil = Math.max(this.validUntil, sentAt + this.leaseMs);
  }

  markLost(): void {
    this.lost = true;
  }

  valid(): boolean {
    return !this.lost && Date.now() < this.validUntil - this.leaseMs / 3;
  }

  /** Keeps an outcome write that has to be durable before the slot is given back. */
  track(write: Promise<void>): void {
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
  }

  /**
   * Gives the slot back once its outcomes are written. A dirty slot (an item claimed, outcome
   * unknown) is left to expire at once instead, so the next holder reconciles that item.
   */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.keptPermit?.drop();
    await Promise.all(this.pending);
    if (this.dirty) await this.tasks.expire(this.taskId, this.leaseId);
    else await this.tasks.release(this.taskId, this.leaseId);
  }

  private async renew(): Promise<void> {
    // Every tick renews unless something else (the rate-limited gate, a check) renewed within the
    // last sixth of the lease: a tick that skipped a renewal by a millisecond of timer drift would
    // leave the slot invalid (under a third left) until the tick after, and its lane would give up.
    if (this.lost || this.validUntil - Date.now() > (this.leaseMs * 5) / 6) return;
    const sentAt = Date.now();
    try {
      if (await this.tasks.renew(this.taskId, this.leaseId, new Date(sentAt + this.leaseMs))) this.renewed(sentAt);
      else this.lost = true;
    } catch {
      // MongoDB away: the lease runs out locally and in the database alike.
    }
  }
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { JobResult } from '../rerun.constants';
import { isRunnable } from '../../domain/task-status';
import { RerunScheduler } from '../rerun-scheduler.service';
import { WorkerLifecycle } from './worker-lifecycle';
import { ItemRunner } from './item-runner.service';
import { Slot } from './slot';
import { StartBatcher, Started } from './start-batcher';
import { TaskAdopter } from './task-adopter.service';
import { startBoundMs } from '../../database/driver/bounded';
import { EngineItem, TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { EngineTask, TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';
import { TransactionsForEngine, TransactionsRepository } from '../../database/repositories/transactions.repository';
import { TaskEvents } from '../task-events';

const DONE: JobResult = { again: false };
const AGAIN: JobResult = { again: true };
/** A rate-limited lane sleeps in place for shorter waits; longer ones give the worker slot back. */
const MAX_RATE_SLEEP_MS = 1000;
/** A task scheduled further ahead is looked at again after this long (Bull's delays are timers). */
const MAX_START_WAIT_MS = 3_600_000;
/** Queued items left behind by a crash, handled per round when a task finishes. */
const ORPHAN_BATCH = 1000;

type LoopEnd = JobResult | 'exhausted';

/**
 * A lane: holds one of a task's slots and starts its items one after another (docs/design.md,
 * "The engine"). Invariants: at most `batchSize` leases per task, so at most `batchSize` reruns in
 * flight; items start in `seq` order through the gate; an item is sent only after it is durably
 * claimed, so an item found Processing under a dead lease is reconciled, never blindly resent.
 */
/** How long until the task may start (0: now), from its `startAt`. */
export function untilStart(task: Pick<EngineTask, 'startAt'>, now = Date.now()): number {
  return task.startAt ? Math.max(0, new Date(task.startAt).getTime() - now) : 0;
}

@Injectable()
export class LaneRunner {
  private readonly logger = new Logger(LaneRunner.name);
  private readonly starts: StartBatcher;

  constructor(
    private readonly config: AppConfig,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
    private readonly itemRunner: ItemRunner,
    private readonly adopter: TaskAdopter,
    private readonly scheduler: RerunScheduler,
    private readonly lifecycle: WorkerLifecycle,
    private readonly events: TaskEvents,
  ) {
    this.starts = new StartBatcher(tasks, items, transactions, startBoundMs(config.WORKER_LEASE_MS));
  }

  async run(taskKey: string): Promise<JobResult> {
    if (!Types.ObjectId.isValid(taskKey)) return DONE;
    const taskId = new Types.ObjectId(taskKey);
    let task = await this.tasks.load(taskId);
    if (!task || !isRunnable(task.status)) return DONE;
    // Scheduled for later: the lane job comes back then, holding no slot meanwhile.
    const notYet = untilStart(task);
    if (notYet > 0) return { again: true, delayMs: Math.min(notYet, MAX_START_WAIT_MS) };
    if (task.itemsStore !== 'items') {
      if (!(await this.adopter.adopt(task))) return DONE;
      task = await this.tasks.load(taskId);
      if (!task || !isRunnable(task.status)) return DONE;
    }

    const acquired = await this.acquire(task);
    if (!acquired) {
      // No free slot. A task with every item started may still need its finish (its last lane died).
      if (task.nextSeq >= task.totalTransactions) await this.finish(taskId);
      return DONE;
    }
    const { slot, sawExpired } = acquired;
    let end: LoopEnd = DONE;
    try {
      if (sawExpired) await this.reconcile(slot, false);
      if (!slot.dirty) end = await this.loop(slot, task);
    } finally {
      await slot.release();
    }
    if (end === 'exhausted') {
      await this.finish(taskId);
      return DONE;
    }
    return slot.dirty ? AGAIN : end;
  }

  /**
   * Takes a free slot, first removing leases that expired (their workers died): the caller then
   * reconciles their items before starting anything new.
   */
  private async acquire(task: EngineTask): Promise<{ slot: Slot; sawExpired: boolean } | null> {
    let sawExpired = false;
    let current: EngineTask | null = task;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      if (!isRunnable(current.status) || current.itemsStore !== 'items') return null;
      const now = Date.now();
      const expired = current.leases.filter((lease) => new Date(lease.until).getTime() < now).map((lease) => lease.id);
      if (expired.length) {
        sawExpired = true;
        await this.tasks.pullExpired(current._id, expired, new Date(now));
      } else if (current.leases.length >= current.batchSize) {
        return null;
      }
      const slot = new Slot(current._id, this.tasks, this.config.WORKER_LEASE_MS, now, current);
      if (
        await this.tasks.pushLease(current._id, current.batchSize, {
          id: slot.leaseId,
          owner: this.lifecycle.owner,
          until: new Date(now + this.config.WORKER_LEASE_MS),
        })
      ) {
        slot.startRenewing();
        return { slot, sawExpired };
      }
      current = await this.tasks.load(task._id);
    }
    return null;
  }

  private async loop(slot: Slot, task: EngineTask): Promise<LoopEnd> {
    const sliceEnd = Date.now() + this.config.WORKER_SLICE_MS;
    const interval = task.ratePerSecond && task.ratePerSecond > 0 ? 1000 / task.ratePerSecond : 0;
    let unmarked = !task.startedAt;
    for (;;) {
      if (this.lifecycle.stopping || Date.now() >= sliceEnd || !slot.valid()) return AGAIN;
      const started = interval
        ? await this.gateRateLimited(slot, task, interval)
        : await this.starts.next(slot, task.totalTransactions, task.startAt);
      if (started === null) {
        const closed = await this.whyClosed(slot, interval);
        if (closed === 'retry') continue;
        if (typeof closed === 'number') {
          if (closed > MAX_RATE_SLEEP_MS) return { again: true, delayMs: closed };
          await sleep(closed);
          continue;
        }
        return closed;
      }
      const { item } = started;
      if (!item) continue; // already final (an adopted task's earlier progress)
      if (unmarked) {
        // The task's first rerun (a no-op write for the lanes that come second).
        unmarked = false;
        const first = await this.tasks.markStarted(slot.taskId).catch((error: Error) => {
          this.logger.warn(`Task ${slot.taskKey}: could not record its start in its history: ${error.message}`);
          return false;
        });
        if (first) this.events.taskEvent('task.started', slot.taskId);
      }
      if ((await this.itemRunner.run(slot, item)) === 'abandoned') return AGAIN;
    }
  }

  /** A task with a rate limit: one lane at a time through the gate, which also spaces the starts. */
  private async gateRateLimited(slot: Slot, task: EngineTask, interval: number): Promise<Started | null> {
    const sentAt = Date.now();
    const seq = await this.tasks.gate(
      slot.taskId,
      slot.leaseId,
      task.totalTransactions,
      new Date(sentAt + this.config.WORKER_LEASE_MS),
      task.startAt,
      { now: new Date(sentAt), next: new Date(sentAt + interval) },
    );
    if (seq === null) return null;
    slot.renewed(sentAt);
    // Dirty until the claim is known, as with batched starts: a claim whose answer is lost leaves the
    // slot to expire and the item to be reconciled.
    slot.dirty = true;
    const item = await this.items.claim(slot.taskId, seq, slot.leaseId, new Date());
    if (!item) slot.dirty = false;
    return { seq, item };
  }

  /** Why the gate did not open: stop, finish, wait (ms, rate limit) or try again. */
  private async whyClosed(slot: Slot, interval: number): Promise<LoopEnd | 'retry' | number> {
    const task = await this.tasks.load(slot.taskId);
    if (!task || !isRunnable(task.status)) return DONE;
    if (!task.leases.some((lease) => lease.id === slot.leaseId)) {
      slot.markLost();
      return DONE;
    }
    if (task.nextSeq >= task.totalTransactions) return 'exhausted';
    const notYet = untilStart(task);
    if (notYet > 0) return Math.min(notYet, MAX_START_WAIT_MS);
    if (interval && task.rateNextAt) {
      const wait = new Date(task.rateNextAt).getTime() - Date.now();
      if (wait > 0) return wait;
    }
    return 'retry';
  }

  /**
   * Items left Processing by a lease that is gone (its worker died or gave up mid-item), and with
   * `queued` also Queued items below the cursor (a worker died between the gate and the claim).
   * A Processing item is first matched to the child transaction core stored for it since it
   * started; only when there is none is it sent again.
   */
  private async reconcile(slot: Slot, queued: boolean): Promise<void> {
    const processing = await this.items.withStatus(slot.taskId, 'Processing');
    const waiting = queued ? await this.items.withStatus(slot.taskId, 'Queued', ORPHAN_BATCH) : [];
    if (!processing.length && !waiting.length) return;
    // Leases read after the items: an item whose lease is absent now can never be claimed by it again.
    const task = await this.tasks.load(slot.taskId);
    if (!task) return;
    const now = Date.now();
    const expired = task.leases.filter((lease) => new Date(lease.until).getTime() < now).map((lease) => lease.id);
    if (expired.length) await this.tasks.pullExpired(slot.taskId, expired, new Date(now));
    const live = new Set(task.leases.filter((lease) => !expired.includes(lease.id)).map((lease) => lease.id));
    const orphans = processing.filter((item) => !item.asyncSince && !(item.leaseId && live.has(item.leaseId)));
    for (const item of [...orphans, ...waiting]) {
      if (this.lifecycle.stopping || !slot.valid() || slot.dirty) return;
      await this.reconcileItem(slot, item);
    }
  }

  private async reconcileItem(slot: Slot, item: EngineItem): Promise<void> {
    if (item.tstatus === 'Queued') {
      if (!(await this.tasks.check(slot.taskId, slot.leaseId, slot.until))) return;
      slot.dirty = true; // until the claim is known
      const claimed = await this.items.claim(slot.taskId, item.seq, slot.leaseId, new Date());
      if (claimed) await this.itemRunner.run(slot, claimed);
      else slot.dirty = false;
      return;
    }
    if (!(await this.items.takeOver(slot.taskId, item, slot.leaseId))) return;
    slot.dirty = true;
    // Its holder may not be dead but cut off from MongoDB, and core may be holding the request before
    // storing its child (MongoDB away for core too): "no child" is conclusive only once
    // RERUN_RETRY_SETTLE_MS has passed since the send.
    const settled = (item.startedAt ? new Date(item.startedAt).getTime() : 0) + this.config.RERUN_RETRY_SETTLE_MS;
    // Stopping: the item stays dirty, and the next holder waits the same way.
    if (!(await this.lifecycle.waitUnlessStopping(settled - Date.now()))) return;
    const child = item.startedAt
      ? await this.transactions.findChildSince(item.tid, item.startedAt, slot.taskKey)
      : null;
    if (child) {
      this.logger.log(
        `Task ${slot.taskKey}: item ${item.seq} (${item.tid}) was in flight when its worker stopped; OpenHIM stored rerun ${child._id.toHexString()}`,
      );
      this.itemRunner.recordChild(slot, item, child);
      return;
    }
    // Paused or cancelled meanwhile: stays dirty, the slot expires and the item waits for a resume.
    if (!(await this.tasks.check(slot.taskId, slot.leaseId, slot.until))) return;
    const now = new Date();
    if (!(await this.items.restart(slot.taskId, item.seq, slot.leaseId, now))) return;
    this.logger.log(
      `Task ${slot.taskKey}: item ${item.seq} (${item.tid}) was in flight when its worker stopped and never reached OpenHIM; sending it again`,
    );
    await this.itemRunner.run(slot, { ...item, startedAt: now, leaseId: slot.leaseId });
  }

  /**
   * Every item started: the last lane out (no live lease left) handles orphans, then marks the task
   * `Pending Async` (items still waiting for a 202's child) or `Completed`.
   */
  async finish(taskId: Types.ObjectId): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const task = await this.tasks.load(taskId);
      if (!task || !isRunnable(task.status) || task.itemsStore !== 'items' || task.nextSeq < task.totalTransactions)
        return;
      const now = Date.now();
      if (task.leases.some((lease) => new Date(lease.until).getTime() >= now)) return; // a live lane finishes it
      if (task.leases.length)
        await this.tasks.pullExpired(
          taskId,
          task.leases.map((lease) => lease.id),
          new Date(now),
        );
      const queued = await this.items.withStatus(taskId, 'Queued', 1);
      const processing = await this.items.withStatus(taskId, 'Processing');
      if (!queued.length && processing.every((item) => item.asyncSince)) {
        const waiting = processing.length > 0;
        if (await this.tasks.finish(taskId, task.totalTransactions, waiting)) {
          if (waiting) await this.scheduler.pollAsync(taskId.toHexString(), this.config.RERUN_ASYNC_POLL_MS);
          else {
            this.logger.log(`Task ${taskId.toHexString()} completed`);
            this.events.taskEvent('task.completed', taskId);
          }
        }
        return;
      }
      if (this.lifecycle.stopping) return;
      const acquired = await this.acquire(task);
      if (!acquired) return;
      try {
        await this.reconcile(acquired.slot, true);
      } finally {
        await acquired.slot.release();
      }
    }
  }
}

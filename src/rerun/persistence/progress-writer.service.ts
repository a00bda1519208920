import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { AnyBulkWriteOperation, Document } from 'mongodb';
import { Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { isFinalTransactionStatus } from '../../domain/transaction-status';
import { RerunMetrics } from '../metrics/rerun-metrics';
import { ChannelBreaker, ChannelOutcomes } from '../guards/channel-breaker.service';
import { TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { type StreakChange, TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';
import { TransactionsForEngine, TransactionsRepository } from '../../database/repositories/transactions.repository';
import { TaskEvents } from '../task-events';

/** What an item becomes. */
export type OutcomeKind =
  /** Final (Completed/Failed): one fewer remaining. */
  | 'final'
  /** Answered 202: waits for its child transaction. */
  | 'asyncStart'
  /** A waiting item's child finished (or the wait timed out). */
  | 'asyncFinal';

export interface ItemOutcome {
  kind: OutcomeKind;
  seq: number;
  /** The lease the item is held by (for `final` and `asyncStart`). */
  leaseId?: string;
  set: Record<string, unknown>;
  /**
   * `rerunStatus` from the child transaction, read in one query per batch when the outcome is
   * written (it is often final by then); `fallback` when it is not final or not there.
   */
  childStatus?: { rerunId: string; fallback: string };
  /** The channel (hex id) the rerun went to: its breaker counts the outcome. */
  channel?: string;
}

interface TaskBatch {
  taskId: Types.ObjectId;
  ops: Record<OutcomeKind, ItemOutcome[]>;
  /** Counters of item transitions already written but not yet added to the task. */
  done: number;
  asyncDelta: number;
  /** Outcomes written, in order: whether each ended failed (for the failed-in-a-row count). */
  ended: boolean[];
  lastFailure?: string;
  /** The channel of the last failed outcome (auto-pause with `autoResume` waits for its probe). */
  lastFailureChannel?: string;
  waiters: Array<() => void>;
}

const KIND_ORDER: OutcomeKind[] = ['asyncStart', 'final', 'asyncFinal'];
const MAX_BUFFERED = 500;

/**
 * Writes item outcomes and the task's progress counters in batches (every WORKER_FLUSH_MS): one
 * ordered bulk write per task, then one `$inc` with the number of items that really changed (each
 * item update is conditional, so an outcome written twice counts once). Callers that need the write
 * durable (a lane before it gives its slot back) await the returned promise.
 */
@Injectable()
export class ProgressWriter implements OnApplicationShutdown {
  private readonly logger = new Logger(ProgressWriter.name);
  private batches = new Map<string, TaskBatch>();
  private buffered = 0;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly config: AppConfig,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
    private readonly metrics: RerunMetrics,
    private readonly breaker: ChannelBreaker,
    private readonly events: TaskEvents,
  ) {}

  record(taskId: Types.ObjectId, outcome: ItemOutcome): Promise<void> {
    const key = taskId.toHexString();
    let batch = this.batches.get(key);
    if (!batch) {
      batch = {
        taskId,
        ops: { final: [], asyncStart: [], asyncFinal: [] },
        done: 0,
        asyncDelta: 0,
        ended: [],
        waiters: [],
      };
      this.batches.set(key, batch);
    }
    batch.ops[outcome.kind].push(outcome);
    this.buffered++;
    const written = new Promise<void>((resolve) => batch.waiters.push(resolve));
    this.schedule(this.buffered >= MAX_BUFFERED ? 0 : this.config.WORKER_FLUSH_MS);
    return written;
  }

  /**
   * Writes everything buffered now (shutdown). Gives up after `withinMs` with MongoDB away: the items
   * stay Processing under their leases and the next worker reconciles them.
   */
  async flushAll(withinMs = 10000): Promise<void> {
    const deadline = Date.now() + withinMs;
    while ((this.batches.size || this.flushing) && Date.now() < deadline) {
      await (this.flushing ?? this.flush());
      if (this.failures) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** After the processor's shutdown (onModuleDestroy) has let the lanes finish. */
  async onApplicationShutdown(): Promise<void> {
    await this.flushAll(2000);
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.closed || (this.timer && delayMs > 0)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const batches = [...this.batches.values()];
    this.batches = new Map();
    this.buffered = 0;
    this.flushing = (async () => {
      const failed: TaskBatch[] = [];
      const statuses = await this.childStatuses(batches).catch(() => new Map<string, string | undefined>());
      const byChannel = new Map<string, ChannelOutcomes>();
      await Promise.all(
        batches.map(async (batch) => {
          try {
            await this.write(batch, statuses, byChannel);
            for (const resolve of batch.waiters) resolve();
          } catch (error) {
            failed.push(batch);
            this.logger.warn(
              `Could not write progress of task ${batch.taskId.toHexString()} (will retry): ${(error as Error).message}`,
            );
          }
        }),
      );
      for (const batch of failed) this.requeue(batch);
      this.failures = failed.length ? this.failures + 1 : 0;
      if (byChannel.size) await this.breaker.record(byChannel);
    })().finally(() => {
      this.flushing = undefined;
      if (this.batches.size)
        this.schedule(this.failures ? Math.min(5000, 100 * 2 ** this.failures) : this.config.WORKER_FLUSH_MS);
    });
    return this.flushing;
  }

  /** Items first (in order, per kind), then the counters; a retry repeats only what did not happen. */
  private async write(
    batch: TaskBatch,
    statuses: Map<string, string | undefined>,
    byChannel: Map<string, ChannelOutcomes>,
  ): Promise<void> {
    for (const kind of KIND_ORDER) {
      const outcomes = batch.ops[kind];
      if (!outcomes.length) continue;
      const operations = outcomes.map((outcome) => toOperation(batch.taskId, outcome, statuses));
      const changed = await this.items.bulkWrite(operations);
      batch.ops[kind] = [];
      if (kind !== 'asyncStart') batch.done += changed;
      if (kind === 'asyncStart') batch.asyncDelta += changed;
      if (kind === 'asyncFinal') batch.asyncDelta -= changed;
      if (kind !== 'asyncStart') {
        operations.forEach((operation, index) => {
          const failure = failureOf(operation.updateOne.update.$set);
          batch.ended.push(failure !== undefined);
          const channel = outcomes[index].channel;
          if (failure !== undefined) {
            batch.lastFailure = failure;
            batch.lastFailureChannel = channel;
          }
          if (!channel) return;
          let ofChannel = byChannel.get(channel);
          if (!ofChannel) byChannel.set(channel, (ofChannel = { ended: [] }));
          ofChannel.ended.push(failure !== undefined);
          if (failure !== undefined) ofChannel.lastFailure = failure;
        });
      }
    }
    const after = await this.tasks.addCounters(batch.taskId, batch.done, batch.asyncDelta, streakChange(batch.ended));
    batch.done = 0;
    batch.asyncDelta = 0;
    batch.ended = [];
    if (after) await this.pauseIfFailing(batch.taskId, after, batch.lastFailure, batch.lastFailureChannel);
  }

  /** The engine's auto-pause: a task whose last `pauseAfterFailures` reruns all failed is paused. */
  private async pauseIfFailing(
    taskId: Types.ObjectId,
    task: { failureStreak: number; pauseAfterFailures?: number; autoResume?: boolean },
    lastFailure: string | undefined,
    lastFailureChannel: string | undefined,
  ): Promise<void> {
    const threshold = task.pauseAfterFailures ?? this.config.AUTO_PAUSE_AFTER_FAILURES;
    if (threshold <= 0 || task.failureStreak < threshold) return;
    const reason = `${task.failureStreak} reruns in a row failed (pauseAfterFailures ${threshold}); the last: ${lastFailure ?? 'rerunStatus Failed'}`;
    // With autoResume, the task waits for its last failure's channel to answer a probe.
    const waitingFor = task.autoResume && lastFailureChannel ? new Types.ObjectId(lastFailureChannel) : undefined;
    // Best effort: a failed pause is tried again by the next failed outcome.
    const paused = await this.tasks.autoPause(taskId, threshold, reason, waitingFor).catch((error: Error) => {
      this.logger.warn(`Could not pause task ${taskId.toHexString()}: ${error.message}`);
      return false;
    });
    if (!paused) return;
    this.metrics.recordAutoPause();
    this.events.taskEvent('task.auto-paused', taskId, {
      reason,
      ...(waitingFor ? { channel: { id: waitingFor.toHexString() } } : {}),
    });
    if (waitingFor) {
      await this.breaker.awaitProbe(waitingFor).catch((error: Error) => {
        this.logger.warn(`Could not schedule the probe of channel ${lastFailureChannel}: ${error.message}`);
      });
      this.logger.warn(
        `Task ${taskId.toHexString()} paused: ${reason}. It resumes once a probe of channel ${lastFailureChannel} succeeds.`,
      );
      return;
    }
    this.logger.warn(`Task ${taskId.toHexString()} paused: ${reason}. Resume it once the downstream is back.`);
  }

  private async childStatuses(batches: TaskBatch[]): Promise<Map<string, string | undefined>> {
    const ids = batches.flatMap((batch) =>
      KIND_ORDER.flatMap((kind) => batch.ops[kind].map((outcome) => outcome.childStatus?.rerunId)),
    );
    const wanted = ids.filter((id): id is string => id !== undefined);
    return wanted.length ? this.transactions.childStatuses(wanted) : new Map();
  }

  private requeue(failed: TaskBatch): void {
    const key = failed.taskId.toHexString();
    const newer = this.batches.get(key);
    if (newer) {
      for (const kind of KIND_ORDER) failed.ops[kind].push(...newer.ops[kind]);
      failed.waiters.push(...newer.waiters);
    }
    this.batches.set(key, failed);
    for (const kind of KIND_ORDER) this.buffered += failed.ops[kind].length;
  }
}

/** Why an outcome counts as a failed rerun (`rerunStatus: Failed` or an error), undefined when it does not. */
function failureOf(set: Record<string, unknown>): string | undefined {
  if (typeof set.error === 'string' && set.error) return set.error;
  if (set.rerunStatus === 'Failed') return `rerun ${typeof set.rerunID === 'string' ? `${set.rerunID} ` : ''}Failed`;
  return undefined;
}

/** Outcomes in order: after a success the count restarts from the failures that followed it. */
function streakChange(ended: readonly boolean[]): StreakChange | undefined {
  if (!ended.length) return undefined;
  const lastSuccess = ended.lastIndexOf(false);
  return lastSuccess < 0
    ? { reset: false, failures: ended.length }
    : { reset: true, failures: ended.length - lastSuccess - 1 };
}

type ItemUpdate = { updateOne: { filter: Document; update: { $set: Record<string, unknown>; $unset: Document } } };

function toOperation(
  taskId: Types.ObjectId,
  outcome: ItemOutcome,
  statuses: Map<string, string | undefined>,
): ItemUpdate & AnyBulkWriteOperation<Document> {
  const set: Record<string, unknown> = { ...outcome.set };
  if (outcome.kind !== 'asyncStart') set.finishedAt = new Date();
  if (outcome.childStatus) {
    const status = statuses.get(outcome.childStatus.rerunId);
    set.rerunStatus = isFinalTransactionStatus(status) ? status : outcome.childStatus.fallback;
  }
  if (outcome.kind === 'asyncFinal') {
    return {
      updateOne: {
        filter: { taskId, seq: outcome.seq, tstatus: 'Processing', asyncSince: { $exists: true } },
        update: { $set: set, $unset: { asyncSince: '' } },
      },
    };
  }
  return {
    updateOne: {
      filter: { taskId, seq: outcome.seq, tstatus: 'Processing', leaseId: outcome.leaseId },
      update: { $set: set, $unset: { leaseId: '' } },
    },
  };
}

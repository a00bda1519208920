import { Inject, Injectable, Logger } from '@nestjs/common';
import { Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { RUNNABLE_STATUSES } from '../../domain/task-status';
import { GuardsForEngine, RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import { TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';
import { TransactionsForEngine, TransactionsRepository } from '../../database/repositories/transactions.repository';
import { RerunMetrics } from '../metrics/rerun-metrics';
import { TaskEvents } from '../task-events';

/** Outcomes of reruns to one channel written in one flush, in order: whether each ended failed. */
export interface ChannelOutcomes {
  ended: boolean[];
  lastFailure?: string;
}

/**
 * The channels' circuit breakers (docs/design.md, "Outage recovery"): counts the reruns to each
 * channel that end failed in a row across every task and worker (in MongoDB, per flush of the
 * progress writer), opens a channel's breaker at BREAKER_FAILURES, and pauses the tasks that still
 * have reruns for the channel, each waiting for the channel's probe (engine/breaker-prober).
 */
@Injectable()
export class ChannelBreaker {
  private readonly logger = new Logger(ChannelBreaker.name);

  constructor(
    private readonly config: AppConfig,
    @Inject(RerunGuardsRepository) private readonly guards: GuardsForEngine,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
    private readonly metrics: RerunMetrics,
    private readonly events: TaskEvents,
  ) {}

  get enabled(): boolean {
    return this.config.BREAKER_FAILURES > 0;
  }

  /** A flush's outcomes per channel (hex id). Best effort: a failure to count is logged. */
  async record(byChannel: Map<string, ChannelOutcomes>): Promise<void> {
    if (!this.enabled) return;
    await Promise.all(
      [...byChannel].map(([channelKey, outcomes]) =>
        this.count(new Types.ObjectId(channelKey), outcomes).catch((error: Error) =>
          this.logger.warn(`Channel ${channelKey}: could not count its failed reruns: ${error.message}`),
        ),
      ),
    );
  }

  private async count(channelId: Types.ObjectId, { ended, lastFailure }: ChannelOutcomes): Promise<void> {
    const lastSuccess = ended.lastIndexOf(false);
    const failures = ended.length - lastSuccess - 1;
    if (lastSuccess >= 0) await this.guards.resetFailures(channelId, 0);
    if (!failures) return;
    const after = await this.guards.addFailures(channelId, failures, lastFailure ?? 'rerunStatus Failed');
    if (after.open || after.failures < this.config.BREAKER_FAILURES) return;
    const opened = await this.guards.open(channelId, this.config.BREAKER_FAILURES, this.config.BREAKER_BACKOFF_MS);
    if (!opened) return; // another worker opened it
    const reason = breakerReason(
      channelId,
      Number(opened.breaker?.failures ?? after.failures),
      opened.breaker?.lastError,
    );
    this.metrics.recordBreakerOpened();
    this.logger.warn(`${reason}; first probe in ${this.config.BREAKER_BACKOFF_MS} ms`);
    this.events.channelEvent(
      'breaker.opened',
      {
        id: channelId.toHexString(),
        failures: Number(opened.breaker?.failures ?? after.failures),
        ...(opened.breaker?.lastError ? { lastError: opened.breaker.lastError } : {}),
      },
      reason,
    );
    await this.pauseTasksOf(channelId, reason);
  }

  /** Pauses every runnable task with reruns still to send to the channel. */
  private async pauseTasksOf(channelId: Types.ObjectId, reason: string): Promise<void> {
    let paused = 0;
    for (const task of await this.tasks.findInStatuses(RUNNABLE_STATUSES)) {
      if (task.itemsStore !== 'items') continue; // core's own: paused by its lane when adopted
      if (!(await this.goesTo(task._id, channelId))) continue;
      if (await this.tasks.pauseForChannel(task._id, channelId, reason)) {
        paused++;
        this.events.taskEvent('task.auto-paused', task._id, { reason, channel: { id: channelId.toHexString() } });
      }
    }
    this.logger.warn(`Channel ${channelId.toHexString()}: ${paused} tasks paused by its circuit breaker`);
  }

  private async goesTo(taskId: Types.ObjectId, channelId: Types.ObjectId): Promise<boolean> {
    for await (const tids of this.items.pendingTidBatches(taskId)) {
      if (await this.transactions.channelAmong(tids, [channelId])) return true;
    }
    return false;
  }

  /** A task auto-paused with `autoResume` waits for the channel's probe (scheduled unless it is already). */
  async awaitProbe(channelId: Types.ObjectId): Promise<void> {
    await this.guards.awaitProbe(channelId, this.config.BREAKER_BACKOFF_MS);
  }

  /** A lane found the channel's breaker open before sending: its task waits for the probe too. */
  async pauseTask(taskId: Types.ObjectId, channelKey: string): Promise<void> {
    const channelId = new Types.ObjectId(channelKey);
    const guard = await this.guards.forChannel(channelId);
    if (guard?.breaker?.state !== 'open') return;
    const reason = breakerReason(channelId, Number(guard.breaker.failures ?? 0), guard.breaker.lastError);
    if (await this.tasks.pauseForChannel(taskId, channelId, reason)) {
      this.logger.warn(`Task ${taskId.toHexString()} paused: ${reason}`);
      this.events.taskEvent('task.auto-paused', taskId, { reason, channel: { id: channelKey } });
    }
  }
}

export function breakerReason(channelId: Types.ObjectId, failures: number, lastError?: string): string {
  return `circuit breaker of channel ${channelId.toHexString()} opened: ${failures} reruns to it failed in a row; the last: ${lastError ?? 'rerunStatus Failed'}`;
}

import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { GuardsForEngine, RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import { EngineItem, TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';
import { TransactionsForEngine, TransactionsRepository } from '../../database/repositories/transactions.repository';
import type { StoredRerunGuard } from '../../database/schemas';
import { RerunMetrics } from '../metrics/rerun-metrics';
import { RerunScheduler } from '../rerun-scheduler.service';
import { ItemRunner } from './item-runner.service';
import { Slot } from './slot';
import { WorkerLifecycle } from './worker-lifecycle';
import { TaskEvents } from '../task-events';

/** Queued items of a waiting task looked at for one going to the probed channel. */
const PROBE_CANDIDATES = 100;
/** How often every worker looks for a probe that is due (the back-off itself is at least 100 ms). */
const TICK_MS = 1000;

/**
 * Sends the probes of channels whose tasks wait for their downstream (docs/design.md, "Outage
 * recovery"): an open breaker, or tasks auto-paused with `autoResume`. When a channel's probe is
 * due, one worker takes it (a conditional update in `rerunguards`, held like a lease, so two workers
 * never probe one channel at once, and a killed prober's probe is taken over once its hold
 * expires), claims the next not-yet-run item of a waiting task that goes to the channel (under a
 * lease in that task, as a lane would) and sends it once. Success closes the breaker and resumes
 * exactly the tasks waiting for the channel (`auto-resumed`); failure doubles the back-off.
 */
@Injectable()
export class BreakerProber implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(BreakerProber.name);
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly config: AppConfig,
    @Inject(RerunGuardsRepository) private readonly guards: GuardsForEngine,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
    private readonly itemRunner: ItemRunner,
    private readonly scheduler: RerunScheduler,
    private readonly lifecycle: WorkerLifecycle,
    private readonly metrics: RerunMetrics,
    private readonly events: TaskEvents,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.tick(), Math.min(TICK_MS, this.config.BREAKER_BACKOFF_MS));
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.running || this.lifecycle.stopping) return;
    this.running = true;
    try {
      for (const guard of await this.guards.dueForProbe(new Date())) {
        if (this.lifecycle.stopping) return;
        await this.probe(guard.channelID).catch((error: Error) =>
          this.logger.warn(`Channel ${guard.channelID.toHexString()}: probe failed to run: ${error.message}`),
        );
      }
    } catch (error) {
      this.logger.warn(`Could not look for probes that are due: ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async probe(channelId: Types.ObjectId): Promise<void> {
    const owner = this.lifecycle.owner;
    const channelKey = channelId.toHexString();
    const leaseMs = this.config.WORKER_LEASE_MS;
    const guard = await this.guards.claimProbe(channelId, owner, new Date(Date.now() + leaseMs));
    if (!guard) return; // another worker's
    const candidate = await this.nextItem(channelId);
    if (!candidate) return this.nothingToProbe(channelId, guard);

    const { taskId, item } = candidate;
    // The probe is sent as the task sends its reruns (its transform, the item's edit).
    const task = await this.tasks.load(taskId);
    if (!task) return this.guards.dropProbe(channelId, owner, new Date());
    const slot = new Slot(taskId, this.tasks, leaseMs, Date.now(), task);
    const lease = { id: slot.leaseId, owner, until: new Date(Date.now() + leaseMs) };
    if (!(await this.tasks.pushProbeLease(taskId, channelId, lease))) {
      return this.guards.dropProbe(channelId, owner, new Date());
    }
    slot.startRenewing();
    // The probe's hold lasts while this worker lives (renewed with the slot's pace).
    const hold = setInterval(
      () => void this.guards.holdProbe(channelId, owner, new Date(Date.now() + leaseMs)).catch(() => undefined),
      Math.floor(leaseMs / 3),
    );
    hold.unref();
    let verdict: { succeeded: boolean; error?: string } | 'none' = 'none';
    try {
      slot.dirty = true;
      const claimed = await this.items.claim(taskId, item.seq, slot.leaseId, new Date());
      slot.dirty = false;
      if (!claimed) return;
      if (
        !(await this.guards.holdProbe(channelId, owner, new Date(Date.now() + leaseMs), {
          taskId,
          seq: item.seq,
          tid: item.tid,
        }))
      )
        return void (await this.items.unclaim(taskId, item.seq, slot.leaseId));
      this.logger.warn(
        `Channel ${channelKey}: probing with item ${item.seq} (${item.tid}) of task ${taskId.toHexString()}`,
      );
      const end = await this.itemRunner.run(slot, claimed, { probe: true });
      if (end === 'abandoned') return;
      await slot.release();
      verdict = await this.verdictOf(taskId, item.seq);
    } finally {
      clearInterval(hold);
      // Released above when the probe ran; otherwise now (a dirty slot expires for reconciliation).
      await slot.release().catch(() => undefined);
      if (verdict === 'none') await this.guards.dropProbe(channelId, owner, new Date()).catch(() => undefined);
    }
    this.metrics.recordProbe(verdict.succeeded);
    if (verdict.succeeded) await this.recovered(channelId, owner);
    else {
      const after = await this.guards.probeFailed(channelId, owner, this.config.BREAKER_BACKOFF_MAX_MS, verdict.error!);
      this.logger.warn(
        `Channel ${channelKey}: the probe failed (${verdict.error}); next probe in ${after?.breaker?.backoffMs ?? '?'} ms`,
      );
    }
  }

  /** The first Queued item of a waiting task (oldest task first) whose transaction goes to the channel. */
  private async nextItem(channelId: Types.ObjectId): Promise<{ taskId: Types.ObjectId; item: EngineItem } | null> {
    for (const task of await this.tasks.findWaitingFor(channelId)) {
      if (task.itemsStore !== 'items') continue;
      const queued = await this.items.withStatus(task._id, 'Queued', PROBE_CANDIDATES);
      if (!queued.length) continue;
      const originals = await this.transactions.readOriginals(queued.map((item) => item.tid));
      const item = queued.find((candidate) => {
        const channel = originals.get(candidate.tid)?.channelID as unknown;
        return channel instanceof Types.ObjectId && channel.equals(channelId);
      });
      if (item) return { taskId: task._id, item };
    }
    return null;
  }

  /**
   * No waiting task has an item left for the channel: the tasks that wait run again (what they have
   * left goes elsewhere, or was in flight), and probing stops until the breaker has tasks again.
   */
  private async nothingToProbe(channelId: Types.ObjectId, guard: StoredRerunGuard): Promise<void> {
    const waiting = await this.tasks.findWaitingFor(channelId);
    if (!waiting.length && guard.breaker?.state === 'open') {
      // Open with nobody waiting: the breaker stays open (new tasks wait for it); look again later.
      const next = new Date(Date.now() + (guard.breaker.backoffMs ?? this.config.BREAKER_BACKOFF_MS));
      return this.guards.dropProbe(channelId, this.lifecycle.owner, next);
    }
    await this.resumeWaiting(channelId, 'no transaction of the task is left to send to the channel');
    if (guard.breaker?.state !== 'open') await this.guards.close(channelId, this.lifecycle.owner);
    else
      await this.guards.dropProbe(
        channelId,
        this.lifecycle.owner,
        new Date(Date.now() + (guard.breaker.backoffMs ?? 0)),
      );
  }

  /** Whether the probe's rerun succeeded, as auto-pause counts failures (rerunStatus Failed or an error). */
  private async verdictOf(taskId: Types.ObjectId, seq: number): Promise<{ succeeded: boolean; error?: string }> {
    const outcome = await this.items.outcomeOf(taskId, seq);
    if (!outcome) return { succeeded: false, error: 'the probe item is gone' };
    if (outcome.error) return { succeeded: false, error: outcome.error };
    if (outcome.tstatus === 'Failed' || outcome.rerunStatus === 'Failed')
      return { succeeded: false, error: `rerun ${outcome.rerunID ? `${outcome.rerunID} ` : ''}Failed` };
    return { succeeded: true };
  }

  /** The probe succeeded: the breaker closes, and every task waiting for the channel runs again. */
  private async recovered(channelId: Types.ObjectId, owner: string): Promise<void> {
    if (!(await this.guards.close(channelId, owner))) return;
    const resumed = await this.resumeWaiting(channelId, `a probe of channel ${channelId.toHexString()} succeeded`);
    this.events.channelEvent('breaker.closed', { id: channelId.toHexString() }, 'a probe succeeded');
    this.logger.warn(
      `Channel ${channelId.toHexString()}: the probe succeeded; breaker closed, ${resumed} tasks resumed`,
    );
  }

  private async resumeWaiting(channelId: Types.ObjectId, reason: string): Promise<number> {
    let resumed = 0;
    for (const task of await this.tasks.findWaitingFor(channelId)) {
      if (!(await this.tasks.resumeWaiting(task._id, channelId, reason))) continue;
      resumed++;
      this.events.taskEvent('task.auto-resumed', task._id, { reason, channel: { id: channelId.toHexString() } });
      // The sweeper schedules it when Redis does not answer now.
      await this.scheduler
        .schedule(task._id.toHexString(), task.batchSize ?? 1)
        .catch((error: Error) =>
          this.logger.warn(`Could not schedule task ${task._id.toHexString()}: ${error.message}`),
        );
    }
    return resumed;
  }
}

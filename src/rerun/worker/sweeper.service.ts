import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bull';
import { AppConfig } from '../../config/app-config';
import { UNFINISHED_STATUSES } from '../../domain/task-status';
import { RERUN_QUEUE } from '../rerun.constants';
import { RerunScheduler } from '../rerun-scheduler.service';
import { WorkerLifecycle } from '../engine/worker-lifecycle';
import { TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';

/** The sweeper's adds remove husks first (see RerunScheduler). */
const REPAIR = { repair: true } as const;

/**
 * Re-creates lane and poll jobs from MongoDB, the source of truth, every SWEEP_INTERVAL_MS: jobs
 * lost with Redis, tasks stored but never scheduled, a dead worker's slots (a takeover lane per
 * expired lease, without waiting for Bull's stalled-job check), and Queued tasks created by
 * OpenHIM core. Every add is idempotent; a short Redis lock lets one worker sweep per interval.
 * Its adds first remove the empty job hashes a Redis restart can leave under the jobs' ids, which
 * would otherwise turn every add into a no-op and leave the task stuck (RerunScheduler).
 */
@Injectable()
export class Sweeper implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(Sweeper.name);
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly config: AppConfig,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    private readonly scheduler: RerunScheduler,
    private readonly lifecycle: WorkerLifecycle,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.tick(), this.config.SWEEP_INTERVAL_MS);
    this.timer.unref();
    setTimeout(() => void this.tick(), Math.min(1000, this.config.SWEEP_INTERVAL_MS)).unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.running || this.lifecycle.stopping) return;
    this.running = true;
    try {
      if (await this.takeTurn()) await this.sweep();
    } catch (error) {
      this.logger.warn(`Sweep failed (next in ${this.config.SWEEP_INTERVAL_MS} ms): ${(error as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async takeTurn(): Promise<boolean> {
    const ttl = Math.max(50, Math.floor(this.config.SWEEP_INTERVAL_MS * 0.8));
    const key = `${this.config.QUEUE_PREFIX}:${RERUN_QUEUE}:sweeper`;
    return (await this.queue.client.set(key, this.lifecycle.owner, 'PX', ttl, 'NX')) === 'OK';
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const task of await this.tasks.findActive(UNFINISHED_STATUSES)) {
      const key = task._id.toHexString();
      if ((task.asyncPending ?? 0) > 0 || task.status === 'Pending Async') {
        await this.scheduler.pollAsync(key, this.config.RERUN_ASYNC_POLL_MS, REPAIR);
      }
      if (task.status !== 'Queued' && task.status !== 'Processing') continue;
      if (task.itemsStore !== 'items') {
        if (task.status === 'Queued') await this.scheduler.schedule(key, 1, REPAIR); // the lane adopts it
        continue;
      }
      const expired = task.leases.filter((lease) => new Date(lease.until).getTime() < now);
      if (task.leases.length - expired.length < task.batchSize) {
        await this.scheduler.schedule(key, task.batchSize, REPAIR);
      }
      for (const lease of expired) await this.scheduler.takeover(key, lease.id, REPAIR);
    }
  }
}

import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Queue } from 'bull';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { AppConfig } from '../../config/app-config';
import { NotificationsForWorker, NotificationsRepository } from '../../database/repositories/notifications.repository';
import { DELIVERY_JOB_DEFAULTS, deliveryJobId, DeliveryJobData, NOTIFICATIONS_QUEUE } from '../notifications.constants';
import { REMOVE_HUSKS } from '../../common/queue/bull-repairs';

/** Jobs added in one round trip. */
const ADD_CHUNK = 500;

/**
 * Delivers what Redis lost, from MongoDB: every SWEEP_INTERVAL_MS one worker (a Redis `SET NX PX`
 * turn) reads the pending deliveries whose next attempt is due and that no attempt holds (none
 * started, or a dead worker's claim that expired) and adds their job. Adding is idempotent (the job
 * id names the attempt), so a job still queued is not doubled. This covers a Redis restart without
 * persistence, an add that failed after the event was recorded, and a worker killed mid-attempt.
 */
@Injectable()
export class NotificationsSweeper implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(NotificationsSweeper.name);
  private readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;

  constructor(
    private readonly config: AppConfig,
    @Inject(NotificationsRepository) private readonly notifications: NotificationsForWorker,
    @InjectQueue(NOTIFICATIONS_QUEUE) private readonly queue: Queue<DeliveryJobData>,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.tick(), this.config.SWEEP_INTERVAL_MS);
    this.timer.unref();
    setTimeout(() => void this.tick(), Math.min(1000, this.config.SWEEP_INTERVAL_MS)).unref();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      if (await this.takeTurn()) await this.sweep();
    } catch (error) {
      this.logger.warn(
        `Notifications sweep failed (next in ${this.config.SWEEP_INTERVAL_MS} ms): ${(error as Error).message}`,
      );
    } finally {
      this.running = false;
    }
  }

  private async takeTurn(): Promise<boolean> {
    const ttl = Math.max(50, Math.floor(this.config.SWEEP_INTERVAL_MS * 0.8));
    const key = `${this.config.QUEUE_PREFIX}:${NOTIFICATIONS_QUEUE}:sweeper`;
    return (await this.queue.client.set(key, this.owner, 'PX', ttl, 'NX')) === 'OK';
  }

  /** Adds the job of every due delivery (husks holding their ids removed first). */
  async sweep(): Promise<number> {
    const due = await this.notifications.dueDeliveries(new Date());
    const jobs = due.map(({ eventId, index, delivery }) => ({
      name: delivery.kind,
      data: { eventId, index, attempts: delivery.attempts },
      opts: { jobId: deliveryJobId(delivery.kind, eventId, index, delivery.attempts), ...DELIVERY_JOB_DEFAULTS },
    }));
    for (let start = 0; start < jobs.length; start += ADD_CHUNK) {
      const chunk = jobs.slice(start, start + ADD_CHUNK);
      await this.removeHusks(chunk.map((job) => job.opts.jobId));
      await this.queue.addBulk(chunk);
    }
    return jobs.length;
  }

  private async removeHusks(jobIds: string[]): Promise<void> {
    const keys = jobIds.map((jobId) => this.queue.toKey(jobId));
    const removed = (await this.queue.client.eval(REMOVE_HUSKS, keys.length, ...keys)) as number[];
    for (const position of removed) {
      this.logger.warn(
        `Job ${jobIds[position - 1]} was an empty husk left by a Redis restart: removed, and added again`,
      );
    }
  }
}

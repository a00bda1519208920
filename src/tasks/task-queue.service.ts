import { InjectQueue } from '@nestjs/bull';
import { Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { AppConfig } from '../config/app-config';
import { RERUN_QUEUE } from '../rerun/rerun.constants';
import { RerunScheduler } from '../rerun/rerun-scheduler.service';
import { serviceUnavailable } from './errors';

export const QUEUE_UNAVAILABLE =
  'The rerun queue (Redis) is unavailable, so nothing was changed. Try again when it is back.';

/**
 * The tasks API's calls into the rerun queue, bounded in time: Bull's Redis client queues commands
 * while it reconnects, so without a deadline a request would hang for as long as Redis is down.
 */
@Injectable()
export class TaskQueue {
  private readonly logger = new Logger(TaskQueue.name);

  constructor(
    private readonly scheduler: RerunScheduler,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
    private readonly config: AppConfig,
  ) {}

  /** Hands the task to the workers; throws a 503 when Redis does not answer in time. */
  async schedule(taskId: string, batchSize: number): Promise<void> {
    try {
      await this.withDeadline(this.scheduler.schedule(taskId, batchSize), 'scheduling');
    } catch (error) {
      this.logger.error(`Could not schedule task ${taskId}: ${(error as Error).message}`);
      throw serviceUnavailable(QUEUE_UNAVAILABLE);
    }
  }

  /** Drops the task's waiting jobs; best effort (lanes also stop by themselves on the task's status). */
  async unschedule(taskId: string, batchSize: number): Promise<void> {
    try {
      await this.withDeadline(this.scheduler.unschedule(taskId, batchSize), 'unscheduling');
    } catch (error) {
      this.logger.warn(
        `Could not unschedule task ${taskId} (its lanes stop on their own): ${(error as Error).message}`,
      );
    }
  }

  /** Throws a 503 unless Redis answers now. */
  async assertAvailable(): Promise<void> {
    try {
      await this.withDeadline(this.queue.client.ping(), 'ping');
    } catch (error) {
      this.logger.error(`Rerun queue unavailable: ${(error as Error).message}`);
      throw serviceUnavailable(QUEUE_UNAVAILABLE);
    }
  }

  private withDeadline<T>(work: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Redis did not answer ${what} within ${this.config.QUEUE_TIMEOUT_MS} ms`)),
        this.config.QUEUE_TIMEOUT_MS,
      );
      work.then(
        (value) => (clearTimeout(timer), resolve(value)),
        (error: unknown) => (clearTimeout(timer), reject(error instanceof Error ? error : new Error(String(error)))),
      );
    });
  }
}

import { InjectQueue } from '@nestjs/bull';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Job, Queue } from 'bull';
import {
  asyncPollJobId,
  AsyncPollJobData,
  JOB_DEFAULTS,
  laneJobId,
  LaneJobData,
  RERUN_QUEUE,
  RerunJob,
  takeoverJobId,
} from './rerun.constants';

/**
 * The typed producer in front of the rerun queue: the only code that adds jobs.
 * Adding is idempotent (deterministic job ids), so callers may repeat it.
 */
@Injectable()
export class RerunScheduler implements OnModuleInit {
  private readonly logger = new Logger(RerunScheduler.name);
  private lastErrorLog = 0;

  constructor(@InjectQueue(RERUN_QUEUE) private readonly queue: Queue<LaneJobData | AsyncPollJobData>) {}

  onModuleInit(): void {
    // Bull emits 'error' while Redis is away; log it (at most every 10 s) instead of printing stacks.
    this.queue.on('error', (error: Error) => {
      if (Date.now() - this.lastErrorLog < 10000) return;
      this.lastErrorLog = Date.now();
      this.logger.warn(`Rerun queue: ${error.message}`);
    });
  }

  /** Hands a Queued task to the workers: one lane job per slot, at most `batchSize`. */
  async schedule(taskId: string, batchSize: number): Promise<void> {
    const jobs = Array.from({ length: batchSize }, (_, lane) => ({
      name: RerunJob.Lane,
      data: { taskId },
      opts: { jobId: laneJobId(taskId, lane), ...JOB_DEFAULTS },
    }));
    await this.queue.addBulk(jobs);
  }

  /** Drops the task's jobs that have not started yet (running lanes stop by themselves). */
  async unschedule(taskId: string, batchSize: number): Promise<void> {
    await Promise.all(
      Array.from({ length: batchSize }, async (_, lane) => {
        const job = await this.queue.getJob(laneJobId(taskId, lane));
        if (job && (await job.isWaiting())) await job.remove().catch(() => undefined);
      }),
    );
  }

  /** A lane that recovers the slot of a lease that expired (its worker died). */
  async takeover(taskId: string, leaseId: string): Promise<void> {
    await this.queue.add(RerunJob.Lane, { taskId }, { jobId: takeoverJobId(taskId, leaseId), ...JOB_DEFAULTS });
  }

  /** Polls the task's items answered 202 after `delayMs`. */
  async pollAsync(taskId: string, delayMs: number): Promise<void> {
    await this.queue.add(
      RerunJob.AsyncPoll,
      { taskId },
      { jobId: asyncPollJobId(taskId), delay: delayMs, ...JOB_DEFAULTS },
    );
  }

  /** Adds a finished job again under its own id (a lane's next time slice, the next poll). */
  async again(job: Job<LaneJobData | AsyncPollJobData>, delayMs = 0): Promise<void> {
    await this.queue.add(job.name, job.data, { jobId: String(job.id), delay: delayMs, ...JOB_DEFAULTS });
  }
}

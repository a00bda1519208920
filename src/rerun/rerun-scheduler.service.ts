import { InjectQueue } from '@nestjs/bull';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bull';
import { LaneJobData, RERUN_QUEUE, RerunJob } from './rerun.constants';

/**
 * The typed producer in front of the rerun queue: the only code that adds jobs.
 * Adding is idempotent (deterministic job ids), so callers may repeat it.
 */
@Injectable()
export class RerunScheduler {
  constructor(@InjectQueue(RERUN_QUEUE) private readonly queue: Queue<LaneJobData>) {}

  /** Hands a Queued task to the workers: one lane job per slot, at most `batchSize`. */
  async schedule(taskId: string, batchSize: number): Promise<void> {
    const jobs = Array.from({ length: batchSize }, (_, lane) => ({
      name: RerunJob.Lane,
      data: { taskId },
      opts: { jobId: `lane:${taskId}:${lane}`, removeOnComplete: true, removeOnFail: true },
    }));
    await this.queue.addBulk(jobs);
  }

  /** Drops the task's jobs that have not started yet (running lanes stop by themselves). */
  async unschedule(taskId: string, batchSize: number): Promise<void> {
    await Promise.all(
      Array.from({ length: batchSize }, async (_, lane) => {
        const job = await this.queue.getJob(`lane:${taskId}:${lane}`);
        if (job && (await job.isWaiting())) await job.remove().catch(() => undefined);
      }),
    );
  }
}

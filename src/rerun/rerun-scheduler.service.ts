import { InjectQueue } from '@nestjs/bull';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Job, Queue } from 'bull';
import { withDeadline } from '../common/deadline';
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
import { REMOVE_HUSKS } from '../common/queue/bull-repairs';

/** The sweeper's adds also remove husks that hold the job ids (see REMOVE_HUSKS). */
export interface AddOptions {
  repair?: boolean;
}

export interface DeadlineOptions {
  /**
   * Rejects when Redis has not answered within this (the API's requests: Bull's Redis client
   * queues commands while it reconnects, so without a deadline a request would hang for as long as
   * Redis is down).
   */
  deadlineMs?: number;
}

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
  async schedule(taskId: string, batchSize: number, options: AddOptions & DeadlineOptions = {}): Promise<void> {
    const jobs = Array.from({ length: batchSize }, (_, lane) => ({
      name: RerunJob.Lane,
      data: { taskId },
      opts: { jobId: laneJobId(taskId, lane), ...JOB_DEFAULTS },
    }));
    const add = async () => {
      if (options.repair) await this.removeHusks(jobs.map((job) => job.opts.jobId));
      await this.queue.addBulk(jobs);
    };
    await bounded(add(), options, 'scheduling');
  }

  /** Drops the task's jobs that have not started yet (running lanes stop by themselves). */
  async unschedule(taskId: string, batchSize: number, options: DeadlineOptions = {}): Promise<void> {
    const remove = Promise.all(
      Array.from({ length: batchSize }, async (_, lane) => {
        const job = await this.queue.getJob(laneJobId(taskId, lane));
        if (job && (await job.isWaiting())) await job.remove().catch(() => undefined);
      }),
    );
    await bounded(remove, options, 'unscheduling');
  }

  /**
   * `unschedule`, best effort: when Redis does not answer within the deadline it is logged and left
   * (the lanes stop by themselves on the task's status).
   */
  async unscheduleIfAble(taskId: string, batchSize: number, options: DeadlineOptions = {}): Promise<void> {
    await this.unschedule(taskId, batchSize, options).catch((error: Error) =>
      this.logger.warn(`Could not unschedule task ${taskId} (its lanes stop on their own): ${error.message}`),
    );
  }

  /** A lane that recovers the slot of a lease that expired (its worker died). */
  async takeover(taskId: string, leaseId: string, options: AddOptions = {}): Promise<void> {
    const jobId = takeoverJobId(taskId, leaseId);
    if (options.repair) await this.removeHusks([jobId]);
    await this.queue.add(RerunJob.Lane, { taskId }, { jobId, ...JOB_DEFAULTS });
  }

  /** Polls the task's items answered 202 after `delayMs`. */
  async pollAsync(taskId: string, delayMs: number, options: AddOptions = {}): Promise<void> {
    const jobId = asyncPollJobId(taskId);
    if (options.repair) await this.removeHusks([jobId]);
    await this.queue.add(RerunJob.AsyncPoll, { taskId }, { jobId, delay: delayMs, ...JOB_DEFAULTS });
  }

  /** Removes the husks among these job ids (REMOVE_HUSKS), in one round trip. */
  private async removeHusks(jobIds: string[]): Promise<void> {
    if (!jobIds.length) return;
    const keys = jobIds.map((jobId) => this.queue.toKey(jobId));
    const removed = (await this.queue.client.eval(REMOVE_HUSKS, keys.length, ...keys)) as number[];
    for (const position of removed) {
      this.logger.warn(
        `Job ${jobIds[position - 1]} was an empty husk left by a Redis restart, blocking its id: removed, so the job is added again`,
      );
    }
  }

  /** Adds a finished job again under its own id (a lane's next time slice, the next poll). */
  async again(job: Job<LaneJobData | AsyncPollJobData>, delayMs = 0): Promise<void> {
    await this.queue.add(job.name, job.data, { jobId: String(job.id), delay: delayMs, ...JOB_DEFAULTS });
  }
}

function bounded<T>(work: Promise<T>, { deadlineMs }: DeadlineOptions, during: string): Promise<T> {
  return deadlineMs === undefined ? work : withDeadline(work, deadlineMs, 'Redis', during);
}

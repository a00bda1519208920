import { InjectQueue } from '@nestjs/bull';
import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Job, Queue } from 'bull';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../../config/app-config';
import { AsyncPoller } from '../engine/async-poller.service';
import { LaneRunner } from '../engine/lane-runner.service';
import { ProgressWriter } from '../persistence/progress-writer.service';
import { AsyncPollJobData, JobResult, LaneJobData, RERUN_QUEUE, RerunJob } from '../rerun.constants';
import { RerunScheduler } from '../rerun-scheduler.service';
import { WorkerLifecycle } from '../engine/worker-lifecycle';
import { withLogContext } from '../../common/logging/log-context';

type RerunJobData = LaneJobData | AsyncPollJobData;

/** Backoff after an unexpected error (MongoDB unreachable...): the job comes back after this. */
const ERROR_RETRY_MS = 2000;

/**
 * Consumes the rerun queue with WORKER_CONCURRENCY jobs at once (a lane runs one rerun at a time,
 * so that bounds this worker's reruns in flight). Registered here, never in the API role.
 * On shutdown: stop fetching, let lanes finish their current rerun (at most WORKER_SHUTDOWN_MS,
 * then cut them), give the slots back and re-queue the lanes so another worker goes on at once.
 */
@Injectable()
export class RerunProcessor implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RerunProcessor.name);
  private active = 0;

  constructor(
    private readonly config: AppConfig,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue<RerunJobData>,
    private readonly scheduler: RerunScheduler,
    private readonly lanes: LaneRunner,
    private readonly poller: AsyncPoller,
    private readonly writer: ProgressWriter,
    private readonly lifecycle: WorkerLifecycle,
  ) {}

  onModuleInit(): void {
    this.queue.on('completed', (job: Job<RerunJobData>, result: JobResult | undefined) => {
      if (!result?.again) return;
      this.scheduler
        .again(job, result.delayMs)
        .catch((error: Error) =>
          this.logger.warn(`Could not re-queue job ${String(job.id)} (the sweeper will): ${error.message}`),
        );
    });
    void this.queue.process('*', this.config.WORKER_CONCURRENCY, (job: Job<RerunJobData>) =>
      withLogContext({ taskId: job.data.taskId }, () => this.handle(job)),
    );
  }

  private async handle(job: Job<RerunJobData>): Promise<JobResult> {
    this.active++;
    try {
      if (this.lifecycle.stopping) return { again: true };
      if (job.name === RerunJob.Lane) return await this.lanes.run(job.data.taskId);
      if (job.name === RerunJob.AsyncPoll) return await this.poller.poll(job.data.taskId);
      this.logger.warn(`Unknown job ${job.name} (${String(job.id)}) dropped`);
      return { again: false };
    } catch (error) {
      this.logger.warn(`Job ${String(job.id)} failed, retrying in ${ERROR_RETRY_MS} ms: ${(error as Error).message}`);
      return { again: true, delayMs: ERROR_RETRY_MS };
    } finally {
      this.active--;
    }
  }

  async onModuleDestroy(): Promise<void> {
    if (this.lifecycle.stopping) return; // closed twice
    this.lifecycle.stop();
    await this.queue.pause(true, true).catch(() => undefined);
    const deadline = Date.now() + this.config.WORKER_SHUTDOWN_MS;
    while (this.active > 0 && Date.now() < deadline) await sleep(20);
    if (this.active > 0) {
      this.logger.warn(
        `${this.active} lanes still busy after ${this.config.WORKER_SHUTDOWN_MS} ms: cutting their reruns (they are reconciled by the next worker)`,
      );
      this.lifecycle.abortInFlight();
      const cutDeadline = Date.now() + 5000;
      while (this.active > 0 && Date.now() < cutDeadline) await sleep(20);
    }
    await this.writer.flushAll();
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { isFinalTransactionStatus } from '../../domain/transaction-status';
import { ProgressWriter } from '../persistence/progress-writer.service';
import { JobResult } from '../rerun.constants';
import { LaneRunner } from './lane-runner.service';
import { TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { TransactionsForEngine, TransactionsRepository } from '../../database/repositories/transactions.repository';

const CHUNK = 1000;

/**
 * Items answered 202 wait (tstatus Processing, `asyncSince`) until their child transaction reaches a
 * final status; this job checks them every RERUN_ASYNC_POLL_MS, whatever the task's status (the
 * reruns were sent; only their outcome is recorded), and gives up with an error after
 * RERUN_ASYNC_TIMEOUT_MS. When none is left the task is finished.
 */
@Injectable()
export class AsyncPoller {
  constructor(
    private readonly config: AppConfig,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
    private readonly writer: ProgressWriter,
    private readonly lanes: LaneRunner,
  ) {}

  async poll(taskKey: string): Promise<JobResult> {
    if (!Types.ObjectId.isValid(taskKey)) return { again: false };
    const taskId = new Types.ObjectId(taskKey);
    const waiting = (await this.items.withStatus(taskId, 'Processing')).filter((item) => item.asyncSince);
    let left = 0;
    const writes: Promise<void>[] = [];
    for (let start = 0; start < waiting.length; start += CHUNK) {
      const slice = waiting.slice(start, start + CHUNK);
      const statuses = await this.transactions.childStatuses(slice.map((item) => String(item.rerunID)));
      for (const item of slice) {
        const status = statuses.get(String(item.rerunID));
        const waitedMs = Date.now() - new Date(item.asyncSince!).getTime();
        if (isFinalTransactionStatus(status)) {
          writes.push(
            this.writer.record(taskId, {
              kind: 'asyncFinal',
              seq: item.seq,
              set: { tstatus: 'Completed', rerunStatus: status },
            }),
          );
        } else if (waitedMs > this.config.RERUN_ASYNC_TIMEOUT_MS) {
          writes.push(
            this.writer.record(taskId, {
              kind: 'asyncFinal',
              seq: item.seq,
              set: {
                tstatus: 'Completed',
                rerunStatus: status ?? 'Pending Async',
                error: `Rerun ${String(item.rerunID)} did not reach a final status within ${this.config.RERUN_ASYNC_TIMEOUT_MS} ms (RERUN_ASYNC_TIMEOUT_MS)`,
              },
            }),
          );
        } else {
          left++;
        }
      }
    }
    await Promise.all(writes);
    if (left) return { again: true, delayMs: this.config.RERUN_ASYNC_POLL_MS };
    await this.lanes.finish(taskId);
    return { again: false };
  }
}

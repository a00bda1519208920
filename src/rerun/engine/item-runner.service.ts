import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { RerunMetrics, RerunOutcome } from '../../observability/metrics/rerun-metrics';
import { cannotRerunError, isFinalTransactionStatus, notFoundError, statusFromHttp } from '../outcome';
import { EngineItem } from '../persistence/engine-task';
import { ItemOutcome, ProgressWriter } from '../persistence/progress-writer.service';
import { ChildTransaction, RerunTransactionsRepository } from '../persistence/rerun-transactions.repository';
import { RerunScheduler } from '../rerun-scheduler.service';
import { buildHttpRerun } from '../sending/rerun-request';
import { RerunSender, SendResult } from '../sending/rerun-sender.service';
import { WorkerLifecycle } from '../worker/worker-lifecycle';
import { RerunItemsRepository } from '../persistence/rerun-items.repository';
import { RerunTasksRepository } from '../persistence/rerun-tasks.repository';
import { Slot } from './slot';

/** The longest wait between two sends of a rerun that did not reach OpenHIM core. */
const MAX_RETRY_DELAY_MS = 30000;

/** How running one claimed item ended for the lane. */
export type ItemEnd = 'recorded' | 'abandoned';

/**
 * Runs one item the slot has claimed (tstatus Processing under the slot's lease): loads the
 * transaction, sends the rerun, and records the outcome with OpenHIM's semantics (spec §6).
 */
@Injectable()
export class ItemRunner {
  private readonly logger = new Logger(ItemRunner.name);

  constructor(
    private readonly config: AppConfig,
    private readonly transactions: RerunTransactionsRepository,
    private readonly tasks: RerunTasksRepository,
    private readonly items: RerunItemsRepository,
    private readonly sender: RerunSender,
    private readonly writer: ProgressWriter,
    private readonly scheduler: RerunScheduler,
    private readonly lifecycle: WorkerLifecycle,
    private readonly metrics: RerunMetrics,
  ) {}

  async run(slot: Slot, item: EngineItem): Promise<ItemEnd> {
    slot.dirty = true;
    const tid = item.tid;
    const transaction = await this.transactions.findOriginal(tid);
    if (!transaction) return this.notRerunnable(slot, item, notFoundError(tid));
    if (transaction.canRerun === false) return this.notRerunnable(slot, item, cannotRerunError(tid));

    const channel = await this.transactions.channel(transaction.channelID);
    const tcp = channel?.type === 'tcp' || channel?.type === 'tls';
    if (tcp && (!channel.tcpHost || !channel.tcpPort)) {
      return this.notRerunnable(
        slot,
        item,
        `Transaction ${tid} cannot be rerun as its ${channel.type} channel has no tcpHost/tcpPort`,
      );
    }
    const firstSentAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      // Never start a send on a lease that may have run out (another worker may own the slot now).
      if (!slot.valid()) return 'abandoned';
      const timer = this.metrics.start();
      const result: SendResult = tcp
        ? await this.sender.tcp(
            channel.tcpHost!,
            Number(channel.tcpPort),
            transaction.request?.body ?? '',
            this.lifecycle.signal,
          )
        : await this.sender.http(buildHttpRerun(transaction, slot.taskKey), this.lifecycle.signal);
      if (result.kind === 'aborted') {
        timer.end('abandoned');
        return 'abandoned';
      }

      const delay = this.retryDelay(attempt, firstSentAt, result, tcp);
      if (delay === null) {
        timer.end(sendOutcome(result, tcp));
        return this.recordResult(slot, item, result, tcp);
      }
      timer.end('retried');
      const again = await this.beforeRetry(slot, item, result, tcp, delay, attempt);
      if (again !== 'send') return again;
    }
  }

  /**
   * The wait before sending again a rerun that may never have reached OpenHIM core, or null when
   * the result stands: core answered (with a child), the retry window is spent, or a TCP rerun
   * reached its server (nothing tells whether it was processed).
   */
  private retryDelay(attempt: number, firstSentAt: number, result: SendResult, tcp: boolean): number | null {
    const window = this.config.RERUN_RETRY_WINDOW_MS;
    if (window <= 0) return null;
    const maybeUnreached =
      result.kind === 'error'
        ? !tcp || !result.reached
        : result.kind === 'answered' && !tcp && !result.rerunId && (result.status ?? 0) >= 500;
    if (!maybeUnreached) return null;
    let delay = Math.min(this.config.RERUN_RETRY_DELAY_MS * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
    // Cut after it was written: core may hold the request before storing its child (its MongoDB
    // away, mongoose buffering), so only a long enough wait makes "no child" conclusive.
    if (result.kind === 'error' && result.reached) delay = Math.max(delay, this.config.RERUN_RETRY_SETTLE_MS);
    return Date.now() + delay - firstSentAt <= window ? delay : null;
  }

  /**
   * Waits, then makes sure the rerun is still wanted and never reached core: 'send' to send it
   * again; 'recorded' when core had stored a child after all; 'abandoned' when the task stopped
   * being runnable, the lease was lost or the worker is stopping (the item stays claimed, so the
   * slot's next holder reconciles it the same way).
   */
  private async beforeRetry(
    slot: Slot,
    item: EngineItem,
    result: SendResult,
    tcp: boolean,
    delay: number,
    attempt: number,
  ): Promise<'send' | ItemEnd> {
    const cause =
      result.kind === 'error' ? result.message : `OpenHIM answered ${result.kind === 'answered' ? result.status : ''}`;
    this.logger.warn(
      `Task ${slot.taskKey}: the rerun of ${item.tid} may not have reached OpenHIM (${cause}); attempt ${attempt + 1} in ${delay} ms unless it did`,
    );
    // The wait also lets core finish storing a child for a request it did read before the cut.
    if (!(await this.lifecycle.waitUnlessStopping(delay))) return 'abandoned';
    const reached = !(result.kind === 'error' && !result.reached);
    if (reached) {
      const child = await this.transactions.findChildSince(item.tid, item.startedAt ?? new Date(0));
      // It did reach core: recorded as a single attempt would have been.
      if (child) return this.recordResult(slot, item, result, tcp, child);
    }
    if (!slot.valid() || !(await this.tasks.check(slot.taskId, slot.leaseId, slot.until))) return 'abandoned';
    // Durably before the send: a takeover after this worker dies waits from this attempt on.
    if (!(await this.items.restart(slot.taskId, item.seq, slot.leaseId, new Date()))) return 'abandoned';
    return 'send';
  }

  /** `child`: what core stored for it, when already looked up. */
  private async recordResult(
    slot: Slot,
    item: EngineItem,
    result: SendResult,
    tcp: boolean,
    child?: ChildTransaction | null,
  ): Promise<ItemEnd> {
    switch (result.kind) {
      case 'aborted':
        return 'abandoned';
      case 'error': {
        // Core may have stored the child before the connection broke: link it when it did.
        if (child === undefined)
          child =
            tcp || !result.reached
              ? null
              : await this.transactions.findChildSince(item.tid, item.startedAt ?? new Date());
        return this.final(slot, item, {
          tstatus: 'Completed',
          rerunStatus: 'Failed',
          error: result.message,
          ...(child ? { rerunID: child._id.toHexString() } : {}),
        });
      }
      case 'answered':
        if (tcp) return this.final(slot, item, { tstatus: 'Completed', rerunStatus: 'Completed' });
        return this.answered(slot, item, result.status, result.statusMessage, result.rerunId);
    }
  }

  private async answered(
    slot: Slot,
    item: EngineItem,
    status?: number,
    statusMessage?: string,
    rerunId?: string,
  ): Promise<ItemEnd> {
    if (status === 202 && rerunId) {
      this.record(slot, {
        kind: 'asyncStart',
        seq: item.seq,
        leaseId: slot.leaseId,
        set: { rerunID: rerunId, rerunStatus: 'Pending Async', asyncSince: new Date() },
      });
      this.pollSoon(slot.taskKey);
      return 'recorded';
    }
    if (!rerunId) {
      const error = `OpenHIM answered ${status} ${statusMessage ?? ''} without X-OpenHIM-TransactionID`.trim();
      return this.final(slot, item, { tstatus: 'Completed', rerunStatus: statusFromHttp(status), error });
    }
    this.record(slot, {
      kind: 'final',
      seq: item.seq,
      leaseId: slot.leaseId,
      set: { tstatus: 'Completed', rerunID: rerunId },
      childStatus: { rerunId, fallback: statusFromHttp(status) },
    });
    return 'recorded';
  }

  /** Records an item found in flight after its worker died, from the child transaction core stored. */
  recordChild(slot: Slot, item: EngineItem, child: { _id: { toHexString(): string }; status?: string }): void {
    const rerunID = child._id.toHexString();
    if (isFinalTransactionStatus(child.status)) {
      this.record(slot, {
        kind: 'final',
        seq: item.seq,
        leaseId: slot.leaseId,
        set: { tstatus: 'Completed', rerunID, rerunStatus: child.status },
      });
    } else {
      this.record(slot, {
        kind: 'asyncStart',
        seq: item.seq,
        leaseId: slot.leaseId,
        set: { rerunID, rerunStatus: child.status ?? 'Processing', asyncSince: new Date() },
      });
      this.pollSoon(slot.taskKey);
    }
  }

  private notRerunnable(slot: Slot, item: EngineItem, error: string): ItemEnd {
    this.metrics.recordRerun('not_rerunnable', 0);
    return this.final(slot, item, { tstatus: 'Failed', error });
  }

  private final(slot: Slot, item: EngineItem, set: Record<string, unknown>): ItemEnd {
    this.record(slot, { kind: 'final', seq: item.seq, leaseId: slot.leaseId, set });
    return 'recorded';
  }

  private record(slot: Slot, outcome: ItemOutcome): void {
    slot.track(this.writer.record(slot.taskId, outcome));
    slot.dirty = false;
  }

  private pollSoon(taskKey: string): void {
    // Best effort: the sweeper re-creates a lost poll job.
    this.scheduler
      .pollAsync(taskKey, this.config.RERUN_ASYNC_POLL_MS)
      .catch((error: Error) =>
        this.logger.warn(`Could not schedule the async poll of task ${taskKey}: ${error.message}`),
      );
  }
}

/** The metrics label of a send, from what OpenHIM answered (the child's final status may differ). */
function sendOutcome(result: SendResult, tcp: boolean): RerunOutcome {
  switch (result.kind) {
    case 'aborted':
      return 'abandoned';
    case 'error':
      return 'failed';
    case 'answered':
      if (tcp) return 'completed';
      if (result.status === 202) return 'pending_async';
      return RerunMetrics.outcomeOf({ tstatus: 'Completed', rerunStatus: statusFromHttp(result.status) });
  }
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { RerunMetrics } from '../metrics/rerun-metrics';
import { rerunOutcomeOf, RerunOutcome } from '../../domain/rerun-outcome';
import { isFinalTransactionStatus } from '../../domain/transaction-status';
import { cannotRerunError, notFoundError, statusFromHttp } from '../outcome';
import { ItemOutcome, ProgressWriter } from '../persistence/progress-writer.service';
import { RerunScheduler } from '../rerun-scheduler.service';
import { buildHttpRerun } from '../sending/rerun-request';
import { transformRerun } from '../transform/transformed-rerun';
import { RerunSender, SendResult } from '../sending/rerun-sender.service';
import { WorkerLifecycle } from './worker-lifecycle';
import { Slot } from './slot';
import { EngineItem, TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { ChannelsRepository } from '../../database/repositories/channels.repository';
import {
  ChildTransaction,
  TransactionsForEngine,
  TransactionsRepository,
} from '../../database/repositories/transactions.repository';
import { TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';
import { ChannelGuards, Permit } from '../guards/channel-guards.service';
import { ChannelBreaker } from '../guards/channel-breaker.service';

/** The longest wait between two sends of a rerun that did not reach OpenHIM core. */
const MAX_RETRY_DELAY_MS = 30000;

/** How running one claimed item ended for the lane. */
export type ItemEnd = 'recorded' | 'abandoned';

/** The breaker's probe: sent while the channel's breaker is open, once, without the retries. */
export interface ProbeRun {
  probe: true;
}

/**
 * Runs one item the slot has claimed (tstatus Processing under the slot's lease): loads the
 * transaction, sends the rerun, and records the outcome with OpenHIM's semantics (spec §6).
 */
@Injectable()
export class ItemRunner {
  private readonly logger = new Logger(ItemRunner.name);

  constructor(
    private readonly config: AppConfig,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
    private readonly channels: ChannelsRepository,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    private readonly sender: RerunSender,
    private readonly writer: ProgressWriter,
    private readonly scheduler: RerunScheduler,
    private readonly lifecycle: WorkerLifecycle,
    private readonly metrics: RerunMetrics,
    private readonly guards: ChannelGuards,
    private readonly breaker: ChannelBreaker,
  ) {}

  async run(slot: Slot, item: EngineItem, probe?: ProbeRun): Promise<ItemEnd> {
    slot.dirty = true;
    slot.channel = undefined;
    slot.bodySha256 = undefined;
    const tid = item.tid;
    const transaction = await this.transactions.findOriginal(tid);
    if (!transaction) return this.notRerunnable(slot, item, notFoundError(tid));
    if (transaction.canRerun === false) return this.notRerunnable(slot, item, cannotRerunError(tid));

    const channel = await this.channels.rerunChannel(transaction.channelID);
    const tcp = channel?.type === 'tcp' || channel?.type === 'tls';
    if (tcp && (!channel.tcpHost || !channel.tcpPort)) {
      return this.notRerunnable(
        slot,
        item,
        `Transaction ${tid} cannot be rerun as its ${channel.type} channel has no tcpHost/tcpPort`,
      );
    }
    let http = tcp ? undefined : buildHttpRerun(transaction, slot.taskKey);
    let tcpBody = transaction.request?.body ?? '';
    if (slot.transform || slot.hasEdits) {
      const edit = slot.hasEdits ? await this.items.editOf(slot.taskId, item.seq) : undefined;
      const transformed = transformRerun(slot.transform, edit, tid, http ? { http } : { tcpBody });
      // Not sent: failed like a rerun that cannot be attempted, with the operation that failed.
      if (!transformed.ok) return this.notRerunnable(slot, item, transformed.error);
      http = transformed.http;
      tcpBody = transformed.tcpBody ?? tcpBody;
      slot.bodySha256 = transformed.bodySha256;
    }
    slot.channel = channelKeyOf(transaction.channelID);
    const firstSentAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      // Never start a send on a lease that may have run out (another worker may own the slot now).
      if (!slot.valid()) return 'abandoned';
      const permit = await this.admit(slot, item, !!probe);
      if (!permit) return 'abandoned';
      if (!slot.valid()) {
        permit.release();
        return 'abandoned';
      }
      const sentAt = new Date();
      const timer = new SendTimer(this.metrics);
      const result: SendResult = await (
        tcp
          ? this.sender.tcp(channel.tcpHost!, Number(channel.tcpPort), tcpBody, this.lifecycle.signal)
          : this.sender.http(http!, this.lifecycle.signal)
      ).finally(() => permit.release());
      timer.answered();
      const answeredAt = Date.now();
      if (result.kind === 'aborted') {
        timer.end('abandoned');
        return 'abandoned';
      }

      let delay: number | null;
      let child: ChildTransaction | null | undefined;
      try {
        if (answeredWithoutId(result, tcp)) {
          const found = await this.childOfAnswer(slot, item, sentAt);
          if (found === 'stopping') {
            timer.end('abandoned');
            return 'abandoned';
          }
          // Core stored it: linked, never sent again.
          if (found) {
            timer.end(sendOutcome(result, tcp, found));
            return this.recordResult(slot, item, result, tcp, found);
          }
          child = null;
        }
        // A probe is sent once: its outcome is the verdict.
        delay = probe ? null : this.retryDelay(attempt, firstSentAt, answeredAt, result, tcp);
        timer.end(delay === null ? sendOutcome(result, tcp) : 'retried');
      } catch (error) {
        timer.end('abandoned');
        throw error;
      }
      if (delay === null) return this.recordResult(slot, item, result, tcp, child);
      const again = await this.beforeRetry(slot, item, result, tcp, delay, attempt);
      if (again !== 'send') return again;
    }
  }

  /**
   * The channel's guard admits the send (null: it must not be sent). Refused because the channel's
   * breaker is open, or because the rerun stopped being wanted while it waited for a permit, the
   * item was never sent: it is given back (Queued) and, for the breaker, the task waits for the
   * channel's probe. An item that cannot be given back stays claimed for reconciliation.
   */
  private async admit(slot: Slot, item: EngineItem, probe: boolean): Promise<Permit | null> {
    const waiter = {
      taskKey: slot.taskKey,
      stillWanted: async () =>
        !this.lifecycle.stopping &&
        slot.valid() &&
        (probe || (await this.tasks.check(slot.taskId, slot.leaseId, slot.until).catch(() => false))),
    };
    const admission = await this.guards.admit(slot.channel, waiter, slot, probe);
    if (typeof admission === 'object') return admission;
    slot.keptPermit?.drop();
    if (await this.items.unclaim(slot.taskId, item.seq, slot.leaseId).catch(() => false)) slot.dirty = false;
    if (admission === 'breaker-open') {
      await this.breaker.pauseTask(slot.taskId, slot.channel!).catch((error: Error) => {
        this.logger.warn(`Task ${slot.taskKey}: could not pause it for its channel's breaker: ${error.message}`);
      });
    }
    return null;
  }

  /**
   * The child core stored for a rerun it answered without `X-OpenHIM-TransactionID` (core 8.5 when
   * the channel's primary route is down, a mediator's answer, its rerun authorisation refusing):
   * looked up at once, then, when there is none yet, again once RERUN_RETRY_SETTLE_MS has passed
   * since the send, after which "no child" means the rerun never reached core. The slot stays held
   * meanwhile; 'stopping' when this worker began stopping during the wait (the item stays claimed:
   * the slot's next holder reconciles it, looking the child up the same way).
   */
  private async childOfAnswer(
    slot: Slot,
    item: EngineItem,
    sentAt: Date,
  ): Promise<ChildTransaction | null | 'stopping'> {
    const child = await this.transactions.findChildSince(item.tid, sentAt, slot.taskKey);
    if (child) return child;
    const settle = sentAt.getTime() + this.config.RERUN_RETRY_SETTLE_MS - Date.now();
    if (settle <= 0) return null;
    slot.keptPermit?.drop();
    this.logger.warn(
      `Task ${slot.taskKey}: OpenHIM answered the rerun of ${item.tid} without X-OpenHIM-TransactionID and no child is stored yet; looking again in ${settle} ms`,
    );
    if (!(await this.lifecycle.waitUnlessStopping(settle))) return 'stopping';
    return this.transactions.findChildSince(item.tid, sentAt, slot.taskKey);
  }

  /**
   * The wait before sending again a rerun that may never have reached OpenHIM core, or null when the result
   * stands: core answered with (or stored) a child, the retry window is spent, or a TCP rerun
   * reached its server (nothing tells whether it was processed). An answer without a child gets
   * here only after `childOfAnswer` found none: the backoff counts from the answer, so the time
   * spent waiting for a child is part of it.
   */
  private retryDelay(
    attempt: number,
    firstSentAt: number,
    answeredAt: number,
    result: SendResult,
    tcp: boolean,
  ): number | null {
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
    delay = Math.max(0, delay - (Date.now() - answeredAt));
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
    // Nothing is on the wire while it waits: others may use the channel's permit.
    slot.keptPermit?.drop();
    // The wait also lets core finish storing a child for a request it did read before the cut.
    if (!(await this.lifecycle.waitUnlessStopping(delay))) return 'abandoned';
    const reached = !(result.kind === 'error' && !result.reached);
    if (reached) {
      const child = await this.transactions.findChildSince(item.tid, item.startedAt ?? new Date(0), slot.taskKey);
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
              : await this.transactions.findChildSince(item.tid, item.startedAt ?? new Date(), slot.taskKey);
        return this.final(slot, item, {
          tstatus: 'Completed',
          rerunStatus: 'Failed',
          error: result.message,
          ...(child ? { rerunID: child._id.toHexString() } : {}),
        });
      }
      case 'answered':
        if (tcp) return this.final(slot, item, { tstatus: 'Completed', rerunStatus: 'Completed' });
        // Without the header, the child core stored (when found) links it as the header would have.
        return this.answered(
          slot,
          item,
          result.status,
          result.statusMessage,
          result.rerunId ?? child?._id.toHexString(),
        );
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
    if (slot.channel && outcome.kind === 'final') outcome.channel = slot.channel;
    if (slot.bodySha256 && outcome.kind !== 'asyncFinal') outcome.set.bodySha256 = slot.bodySha256;
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

/** A transaction's channel as a hex id (undefined when it has none). */
function channelKeyOf(channelId: unknown): string | undefined {
  if (channelId && typeof (channelId as { toHexString?: unknown }).toHexString === 'function')
    return (channelId as { toHexString(): string }).toHexString();
  return typeof channelId === 'string' && /^[0-9a-f]{24}$/i.test(channelId) ? channelId.toLowerCase() : undefined;
}

/** An HTTP answer without `X-OpenHIM-TransactionID`: core may still have stored the child. */
function answeredWithoutId(result: SendResult, tcp: boolean): boolean {
  return result.kind === 'answered' && !tcp && !result.rerunId;
}

/**
 * The metrics label of a send, from what OpenHIM answered, or from the child found for an answer
 * without the header when that child is final (the child's final status may differ otherwise).
 */
function sendOutcome(result: SendResult, tcp: boolean, child?: ChildTransaction | null): RerunOutcome {
  switch (result.kind) {
    case 'aborted':
      return 'abandoned';
    case 'error':
      return 'failed';
    case 'answered':
      if (tcp) return 'completed';
      if (result.status === 202) return 'pending_async';
      if (!result.rerunId && isFinalTransactionStatus(child?.status))
        return rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: child.status });
      return rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: statusFromHttp(result.status) });
  }
}

/**
 * Times one send: reruns in flight go down when the answer arrives (`answered`), the outcome (with
 * the time to the answer) is counted once known (`end`), which for an answer without
 * `X-OpenHIM-TransactionID` may be after the wait for its child.
 */
class SendTimer {
  private readonly started = process.hrtime.bigint();
  private seconds?: number;
  private ended = false;

  constructor(private readonly metrics: RerunMetrics) {
    metrics.inFlight(1);
  }

  answered(): void {
    if (this.seconds !== undefined) return;
    this.seconds = Number(process.hrtime.bigint() - this.started) / 1e9;
    this.metrics.inFlight(-1);
  }

  end(outcome: RerunOutcome): void {
    if (this.ended) return;
    this.ended = true;
    this.answered();
    this.metrics.recordRerun(outcome, this.seconds!);
  }
}

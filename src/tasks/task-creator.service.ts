import { BeforeApplicationShutdown, Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { badRequest, forbidden } from './errors';
import { Types } from 'mongoose';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import { INSUFFICIENT_RERUN_PERMISSIONS, RerunAclChannel, RerunPermissions } from '../auth/rerun-permissions';
import { historyEntry } from '../database/task-history';
import { AppConfig } from '../config/app-config';
import { RerunScheduler } from '../rerun/rerun-scheduler.service';
import { queueUnavailable } from './queue-unavailable';
import { AutoRetriesRepository } from '../database/repositories/auto-retries.repository';
import { ChannelAccess, ChannelsRepository } from '../database/repositories/channels.repository';
import { TaskItemsForApi, TaskItemsRepository } from '../database/repositories/task-items.repository';
import { TasksForApi, TasksRepository } from '../database/repositories/tasks.repository';
import { TransactionsForApi, TransactionsRepository } from '../database/repositories/transactions.repository';
import {
  HoldsForApi,
  pausedBy,
  recheckHold,
  RerunHoldsRepository,
} from '../database/repositories/rerun-holds.repository';
import type { StoredRerunHold } from '../database/schemas';
import type { TransformSpec } from '../rerun/transform/request-transform';
import { editsOf, joinReasons, StoredEdit, transformReason } from './task-transforms';
import { Notifier } from '../notifications/notifier.service';
import { EmailNotifications } from '../notifications/email/email-notifications.service';

export const DISABLED_CHANNELS = 'Cannot queue task as there are transactions with disabled or deleted channels';

export interface TaskSpec {
  /** Distinct, lowercase, in order. */
  tids: string[];
  user: string;
  batchSize: number;
  paused: boolean;
  ratePerSecond?: number;
  /** Failed reruns in a row after which the engine pauses the task (0: never). */
  pauseAfterFailures: number;
  /** Auto-pause leaves the task waiting for its channel's probe (it resumes by itself). */
  autoResume?: boolean;
  /** Contact groups e-mailed about its events (instead of NOTIFY_GROUPS). */
  notify?: string[];
  /** No rerun starts before this. */
  startAt?: Date;
  /** Created to rerun the failed transactions of this task. */
  rerunOf?: string;
  /** Why it was created, for its history (`created`; a task that transforms its requests says so after it). */
  reason?: string;
  /** Validated (`validateTransform`): the engine applies it to each rerun request before sending it. */
  transform?: TransformSpec;
  /**
   * Single edits by tid (lower case). The task's items keep those of its own tids (a bulk rerun passes
   * the same map to each of its tasks).
   */
  edits?: ReadonlyMap<string, StoredEdit>;
}

/** Distinct ids in order of first occurrence (ids are case-insensitive hex). */
export function distinctTids(tids: readonly string[]): string[] {
  return [...new Set(tids.map((tid) => tid.toLowerCase()))];
}

/**
 * Creating a task, shared by POST /tasks, POST /tasks/:id/rerun-failed and POST /bulkrerun:
 * OpenHIM's permission and channel checks, then the store format the engine relies on
 * (docs/design.md), then the queue, then OpenHIM's side effects on the transactions.
 */
@Injectable()
export class TaskCreator implements BeforeApplicationShutdown {
  private readonly logger = new Logger(TaskCreator.name);
  /** Tasks whose side effects wait for the next round of writes. */
  private waiting: SideEffectsOf[] = [];
  /** The round of side-effect writes in flight (at most one: the next batch gathers meanwhile). */
  private flushing: Promise<void> | undefined;

  constructor(
    @Inject(TasksRepository) private readonly tasks: TasksForApi,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForApi,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForApi,
    private readonly channels: ChannelsRepository,
    private readonly autoRetries: AutoRetriesRepository,
    private readonly scheduler: RerunScheduler,
    private readonly permissions: RerunPermissions,
    private readonly config: AppConfig,
    @Inject(RerunHoldsRepository) private readonly holds: HoldsForApi,
    @Optional() private readonly notifier?: Notifier,
    @Optional() private readonly email?: EmailNotifications,
  ) {}

  /**
   * A task of `user`'s (POST /tasks, POST /tasks/:id/rerun-failed), checked as OpenHIM checks it:
   * 403 unless the user may rerun every channel of its transactions, then 400 if one is disabled or
   * deleted. The checks run while the items are written (see `store`). Returns the task id.
   */
  async create(user: AuthenticatedUser, spec: Omit<TaskSpec, 'user'>): Promise<string> {
    const ids = spec.tids.map((tid) => new Types.ObjectId(tid));
    return this.write({ ...spec, user: user.email }, () => this.checkTransactions(user, ids));
  }

  /**
   * The checks `create` makes, alone (a preview): 403 unless the user may rerun every channel of the
   * transactions, then 400 if one is disabled or deleted.
   */
  checkTids(user: AuthenticatedUser, tids: readonly string[]): Promise<void> {
    return this.checkTransactions(
      user,
      tids.map((tid) => new Types.ObjectId(tid)),
    );
  }

  /** 403 unless the user may rerun every channel involved; then 400 if one is disabled or deleted. */
  private async checkTransactions(user: AuthenticatedUser, ids: readonly Types.ObjectId[]): Promise<void> {
    const { channelIds, channels, someWithoutChannel } = await this.transactions.channelsOf(ids);
    this.checkChannelAccess(user, channelIds, channels, someWithoutChannel);
  }

  /** The same checks for channels found otherwise (POST /bulkrerun's selection). */
  async checkChannels(
    user: AuthenticatedUser,
    channelIds: readonly Types.ObjectId[],
    someWithoutChannel: boolean,
  ): Promise<void> {
    this.checkChannelAccess(user, channelIds, await this.channels.findByIds(channelIds), someWithoutChannel);
  }

  /** `channels`: those of `channelIds` that exist. */
  private checkChannelAccess(
    user: AuthenticatedUser,
    channelIds: readonly Types.ObjectId[],
    channels: readonly ChannelAccess[],
    someWithoutChannel: boolean,
  ): void {
    if (!user.isAdmin) {
      const byId = new Map(channels.map((channel) => [channel._id.toHexString(), channel]));
      // A channel that no longer exists, or a transaction without one, grants nothing (OpenHIM denies it).
      const involved: RerunAclChannel[] = channelIds.map((id) => byId.get(id.toHexString()) ?? {});
      if (someWithoutChannel) involved.push({});
      if (!this.permissions.canRerunChannels(user, involved)) {
        throw forbidden(INSUFFICIENT_RERUN_PERMISSIONS);
      }
    }
    if (channels.some(isUnavailable)) throw badRequest(DISABLED_CHANNELS);
  }

  /**
   * A task whose transactions' channels were checked already (POST /bulkrerun checks the whole
   * selection with `checkChannels` before answering). Returns the task id.
   */
  store(spec: TaskSpec): Promise<string> {
    return this.write(spec);
  }

  /**
   * Items first, then the task document, then the queue: a failure removes what was written, so
   * there is never a task without queued work nor queued work for a half-written task.
   * Throws a 503 when the queue is unavailable. Returns the task id.
   *
   * `check` (the permission and channel checks) runs while the items are written, to halve the time
   * a large task takes; items are invisible until the task document exists, and are removed again
   * when the check fails.
   *
   * OpenHIM's side effects on the transactions follow in the background (OpenHIM does not wait for
   * them either): on the embedded server they take longer than creating the task itself. Tasks
   * created while a round of them is in flight share the next round.
   */
  private async write(spec: TaskSpec, check?: () => Promise<void>): Promise<string> {
    // Before anything is written: a task must not name contact groups nobody could be e-mailed from.
    if (spec.notify?.length && this.email) {
      const unknown = await this.email.unknownGroups(spec.notify);
      if (unknown.length)
        throw badRequest(
          `notify names contact groups that do not exist: ${unknown.join(', ')} (OpenHIM's contact groups)`,
        );
    }
    const taskId = this.tasks.newId();
    const id = taskId.toHexString();
    const started = Date.now();
    const edits = editsOf(spec.tids, spec.edits);
    try {
      // An emergency stop in force that covers the transactions: the task starts Paused (paused
      // tasks stay their creator's: resume-all leaves them alone).
      const [checked, written, holding] = await Promise.allSettled([
        check ? check() : Promise.resolve(),
        this.items.insertItems(taskId, spec.tids, edits.size ? edits : undefined),
        spec.paused ? Promise.resolve(null) : this.holds.recent().then((holds) => this.holds.holdFor(spec.tids, holds)),
      ]);
      // A refusal (403/400) says more than a write error it may have caused.
      if (checked.status === 'rejected') throw checked.reason;
      if (written.status === 'rejected') throw written.reason;
      if (holding.status === 'rejected') throw holding.reason;
      let hold: StoredRerunHold | null = holding.value;
      const itemsWritten = Date.now();
      const created = new Date();
      const held = hold ? pausedBy(hold, created) : undefined;
      await this.tasks.insertTask({
        _id: taskId,
        status: held?.status ?? (spec.paused ? 'Paused' : 'Queued'),
        created,
        user: spec.user,
        total: spec.tids.length,
        batchSize: spec.batchSize,
        ratePerSecond: spec.ratePerSecond,
        pauseAfterFailures: spec.pauseAfterFailures,
        autoResume: spec.autoResume,
        ...(spec.notify ? { notify: spec.notify } : {}),
        ...(spec.transform ? { transform: spec.transform as Record<string, unknown> } : {}),
        ...(edits.size ? { hasEdits: true } : {}),
        startAt: spec.startAt,
        rerunOf: spec.rerunOf,
        heldBy: held?.heldBy ?? undefined,
        history: [
          historyEntry('created', {
            at: created,
            user: spec.user,
            reason: joinReasons(spec.reason, transformReason(spec.transform, edits.size)),
          }),
          ...(held ? [held.history] : []),
        ],
      });
      // A stop or a release that ran while this task was written may not have seen it.
      if (!spec.paused) hold = await recheckHold(this.holds, this.tasks, taskId, spec.tids, hold);
      if (!spec.paused && !hold) {
        await this.scheduler
          .schedule(id, spec.batchSize, { deadlineMs: this.config.QUEUE_TIMEOUT_MS })
          .catch(queueUnavailable(this.logger, `Could not schedule task ${id}`));
      }
      if (hold) this.logger.log(`Task ${id} created Paused: an emergency stop holds it (${hold.reason})`);
      this.logger.debug(
        `Task ${id}: ${spec.tids.length} items written in ${itemsWritten - started} ms, task stored and queued in ${Date.now() - itemsWritten} ms`,
      );
    } catch (error) {
      await this.remove(taskId).catch((cleanup: Error) =>
        this.logger.error(`Could not remove the half-created task ${id}: ${cleanup.message}`),
      );
      throw error;
    }
    this.waiting.push({ taskId: id, tids: spec.tids, since: Date.now() });
    this.startFlushing();
    this.notifier?.emit({
      type: 'task.created',
      task: { id, status: spec.paused ? 'Paused' : 'Queued', user: spec.user, totalTransactions: spec.tids.length },
      user: spec.user,
      ...(spec.notify ? { notify: spec.notify } : {}),
    });
    return id;
  }

  /**
   * Removes a task and its items (the items even when the task document is already gone); whether
   * the task was there. The task document goes first: running lanes notice it is gone and stop.
   */
  async remove(taskId: Types.ObjectId): Promise<boolean> {
    const removed = await this.tasks.delete(taskId);
    await this.items.deleteForTask(taskId);
    return removed;
  }

  /** Resolves when the side effects of every task created so far are done (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.settled();
  }

  private startFlushing(): void {
    if (this.flushing) return;
    this.flushing = this.flushSideEffects().finally(() => {
      this.flushing = undefined;
      // A task stored after the last round ended but before this ran.
      if (this.waiting.length) this.startFlushing();
    });
  }

  /**
   * One round of writes for all the tasks created since the previous round: under a burst of
   * POSTs, two commands serve many tasks instead of two per task (the API's CPU goes to the driver).
   */
  private async flushSideEffects(): Promise<void> {
    while (this.waiting.length) {
      // Bounded, so that one command's `$in` stays far from MongoDB's 16 MiB limit.
      let count = 0;
      let taken = 0;
      while (
        taken < this.waiting.length &&
        (taken === 0 || count + this.waiting[taken].tids.length <= MAX_IDS_PER_ROUND)
      )
        count += this.waiting[taken++].tids.length;
      const batch = this.waiting.splice(0, taken);
      await this.takeOutOfAutoRetry(batch);
    }
  }

  /** OpenHIM's side effects: the tasks' transactions leave the automatic retries. Logged, never thrown. */
  private async takeOutOfAutoRetry(batch: readonly SideEffectsOf[]): Promise<void> {
    const ids = batch.flatMap(({ tids }) => tids.map((tid) => new Types.ObjectId(tid)));
    const results = await Promise.allSettled([
      this.transactions.disableAutoRetry(ids),
      this.autoRetries.removeTransactions(ids),
    ]);
    const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    for (const { taskId, since } of batch) {
      for (const failure of failures) {
        this.logger.error(
          `Task ${taskId}: could not take its transactions out of auto-retry: ${(failure.reason as Error).message}`,
        );
      }
      if (!failures.length)
        this.logger.debug(`Task ${taskId}: transactions taken out of auto-retry in ${Date.now() - since} ms`);
    }
  }
}

/** Transaction ids per round of side-effect writes (a 100k-id `$in` is ~2 MB of BSON). */
const MAX_IDS_PER_ROUND = 100000;

interface SideEffectsOf {
  taskId: string;
  tids: readonly string[];
  since: number;
}

function isUnavailable(channel: ChannelAccess): boolean {
  return channel.status === 'disabled' || channel.status === 'deleted';
}

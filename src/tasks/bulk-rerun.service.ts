import { InjectQueue } from '@nestjs/bull';
import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { Types } from 'mongoose';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import { RerunPermissions } from '../auth/rerun-permissions';
import { withDeadline } from '../common/deadline';
import { AppConfig } from '../config/app-config';
import { RERUN_QUEUE } from '../rerun/rerun.constants';
import { BulkRerunDto } from './dto/bulk-rerun.dto';
import { resolveRerunOptions } from './dto/rerun-options.dto';
import { badRequest, forbidden } from './errors';
import { isInvalidRegexError, toTransactionQuery } from './filters/transaction-filters';
import { TaskCreator } from './task-creator.service';
import { queueUnavailable } from './queue-unavailable';
import { ChannelsRepository } from '../database/repositories/channels.repository';
import { TransactionsForApi, TransactionsRepository } from '../database/repositories/transactions.repository';
import { PREVIEW_LIMIT_DEFAULT } from './dto/rerun-options.dto';
import {
  assertEditsAmong,
  assertMayTransform,
  StoredEdit,
  storedEdits,
  TransformOptions,
  transformOptionsOf,
  transforms,
} from './task-transforms';
import { TransformPreview, TransformPreviewer } from './transform-preview.service';
import type { ItemEdit } from '../rerun/transform/request-transform';

export const BULK_RERUN_STARTED = { success: true, message: 'Tasks created for bulk rerun of transactions' } as const;

export interface BulkRerunPlan extends Partial<TransformPreview> {
  dryRun: true;
  count: number;
  tasks: number[];
}

/** Edits' tids looked up at once among the matching transactions. */
const EDIT_LOOKUP_SIZE = 1000;

/** Sizes of the tasks that `count` transactions make, `taskSize` at most each. */
export function planTasks(count: number, taskSize: number): number[] {
  const sizes: number[] = [];
  for (let left = count; left > 0; left -= taskSize) sizes.push(Math.min(left, taskSize));
  return sizes;
}

/**
 * POST /bulkrerun (OpenHIM ≥ 7.1): every transaction matching the filters (the transaction list's,
 * an object or a JSON string; `filterLimit`/`filterPage` are ignored, as in OpenHIM), oldest first,
 * split into tasks of BULK_RERUN_TASK_SIZE (OpenHIM: 50, newest first). The checks run before
 * answering; the tasks are created afterwards.
 */
@Injectable()
export class BulkRerunService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(BulkRerunService.name);
  private readonly running = new Set<Promise<void>>();

  constructor(
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForApi,
    private readonly channels: ChannelsRepository,
    private readonly creator: TaskCreator,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
    private readonly permissions: RerunPermissions,
    private readonly config: AppConfig,
    private readonly previewer: TransformPreviewer,
  ) {}

  /**
   * With `transform` or `edits`, or a preview (`dryRun` with one of them or `previewLimit`): 403 first
   * unless the user is in a group of TRANSFORM_GROUPS; an edit of a transaction the filters do not
   * match is a 400. Every task created gets the transform, and the edits of its own transactions.
   */
  async start(user: AuthenticatedUser, dto: BulkRerunDto): Promise<typeof BULK_RERUN_STARTED | BulkRerunPlan> {
    const options = transformOptionsOf(dto);
    const previewing = dto.dryRun === true && (transforms(options) || dto.previewLimit !== undefined);
    if (transforms(options) || previewing) assertMayTransform(user, this.config);
    const query: Record<string, unknown> = { ...toTransactionQuery(dto.filters) };
    if (!user.isAdmin) await this.limitToRerunnableChannels(user, query);
    // Reruns create new (child) transactions that may match the filters too: only what exists now counts.
    const snapshot = { $and: [query, { 'request.timestamp': { $lte: new Date() } }] };

    const count = await this.transactions.count(snapshot).catch((error: unknown) => {
      // JavaScript compiled it, MongoDB's PCRE did not: still the client's expression.
      if (isInvalidRegexError(error))
        throw badRequest(`filters hold a regular expression MongoDB refuses: ${error.message}`);
      throw error;
    });
    if (count > 0) {
      const { channelIds, someWithoutChannel } = await this.transactions.distinctChannels(snapshot);
      await this.creator.checkChannels(user, channelIds, someWithoutChannel);
    }
    if (options.edits.length) await this.checkEditsMatch(snapshot, options.edits);
    const taskSize = Math.min(this.config.BULK_RERUN_TASK_SIZE, this.config.MAX_TASK_TIDS);
    if (dto.dryRun) {
      const plan: BulkRerunPlan = { dryRun: true, count, tasks: planTasks(count, taskSize) };
      if (!previewing) return plan;
      const preview = await this.previewer.ofQuery(snapshot, count, {
        transform: options.transform,
        edits: storedEdits(options.edits),
        limit: dto.previewLimit ?? PREVIEW_LIMIT_DEFAULT,
      });
      return { ...plan, ...preview };
    }
    if (count === 0) return BULK_RERUN_STARTED;
    if (!dto.pauseQueue) {
      // Throws a 503 unless Redis answers now.
      await withDeadline(this.queue.client.ping(), this.config.QUEUE_TIMEOUT_MS, 'Redis', 'ping').catch(
        queueUnavailable(this.logger, 'Rerun queue unavailable'),
      );
    }

    const work = this.createTasks(user.email, snapshot, count, taskSize, dto, options).finally(() =>
      this.running.delete(work),
    );
    this.running.add(work);
    return BULK_RERUN_STARTED;
  }

  /** Resolves when every background creation, and its tasks' side effects, has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size) await Promise.allSettled([...this.running]);
    await this.creator.settled();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.idle();
  }

  /** 400 naming the first edit whose transaction the filters (`query`) do not match. */
  private async checkEditsMatch(query: Record<string, unknown>, edits: readonly ItemEdit[]): Promise<void> {
    const ids = edits.map((edit) => new Types.ObjectId(edit.tid));
    const matched = new Set<string>();
    const among = { $and: [query, { _id: { $in: ids } }] };
    for await (const slice of this.transactions.idsOldestFirst(among, EDIT_LOOKUP_SIZE, 0)) {
      for (const id of slice) matched.add(id.toHexString());
    }
    assertEditsAmong(edits, matched, 'the transactions the filters match');
  }

  /** OpenHIM limits non-admins to their channels: here, the channels they may rerun. */
  private async limitToRerunnableChannels(user: AuthenticatedUser, query: Record<string, unknown>): Promise<void> {
    const candidates = await this.channels.findRerunnableBy(user.groups);
    const allowed = candidates
      .filter((channel) => this.permissions.canRerunChannels(user, [channel]))
      .map((channel) => channel._id);
    const requested = query.channelID as Types.ObjectId | undefined;
    if (requested) {
      if (!allowed.some((id) => id.equals(requested))) {
        throw forbidden(`Forbidden: Unauthorized channel ${requested.toHexString()}`);
      }
    } else {
      query.channelID = { $in: allowed };
    }
  }

  private async createTasks(
    email: string,
    query: Record<string, unknown>,
    count: number,
    taskSize: number,
    dto: BulkRerunDto,
    options: TransformOptions,
  ) {
    const created: string[] = [];
    const edits: Map<string, StoredEdit> | undefined = options.edits.length ? storedEdits(options.edits) : undefined;
    try {
      for await (const ids of this.transactions.idsOldestFirst(query, taskSize, count)) {
        const id = await this.creator.store({
          tids: ids.map((tid) => tid.toHexString()),
          user: email,
          batchSize: dto.batchSize ?? 1,
          paused: dto.pauseQueue === true,
          ratePerSecond: dto.ratePerSecond,
          ...resolveRerunOptions(dto, this.config),
          reason: 'bulk rerun',
          ...(options.transform ? { transform: options.transform } : {}),
          // Each task keeps the edits of its own transactions (TaskCreator).
          ...(edits ? { edits } : {}),
        });
        created.push(id);
      }
      this.logger.log(
        `Bulk rerun by ${email}: ${count} transactions in ${created.length} task(s): ${created.join(', ')}`,
      );
    } catch (error) {
      this.logger.error(
        `Bulk rerun by ${email} stopped after ${created.length} task(s) (${created.join(', ') || 'none'}): ${(error as Error).message}`,
      );
    }
  }
}

import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { Types } from 'mongoose';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import { badRequest, conflict, notFound } from './errors';
import { assertKnownParams, parseFiltersParam, parsePaging, QueryParams } from './filters/query-params';
import {
  isUnfiltered,
  itemMatches,
  itemQuery,
  TASK_ITEM_PAGING,
  TASK_LIST_PAGING,
  toTaskItemFilter,
  toTaskListQuery,
} from './filters/task-filters';
import { AppConfig } from '../config/app-config';
import { historyEntry } from '../database/task-history';
import { CreateTaskDto } from './dto/create-task.dto';
import { resolveRerunOptions } from './dto/rerun-options.dto';
import { UpdateTaskDto } from './dto/update-task.dto';
import { jsonArray, JsonFragments, jsonObjectWithArray } from './json-stream';
import { distinctTids, TaskCreator } from './task-creator.service';
import { queueUnavailable } from './queue-unavailable';
import { RerunScheduler } from '../rerun/rerun-scheduler.service';
import { decideStatusChange } from '../domain/status-changes';
import { isRunnable, TaskStatus } from '../domain/task-status';
import { RerunFailedDto } from './dto/rerun-failed.dto';
import { HEX_ID } from './validation/checks';
import { PREVIEW_LIMIT_DEFAULT } from './dto/rerun-options.dto';
import type { TransformSpec } from '../rerun/transform/request-transform';
import { TransformPreview, TransformPreviewer } from './transform-preview.service';
import {
  assertEditsAmong,
  assertMayTransform,
  StoredEdit,
  storedEdits,
  transformOptionsOf,
  transforms,
} from './task-transforms';
import {
  ItemRecord,
  PUBLIC_ITEM_FIELDS,
  TaskItemsForApi,
  TaskItemsRepository,
} from '../database/repositories/task-items.repository';
import {
  PUBLIC_TASK_DETAIL_FIELDS,
  PUBLIC_TASK_FIELDS,
  TaskRecord,
  TasksForApi,
  TasksRepository,
} from '../database/repositories/tasks.repository';
import { Notifier } from '../notifications/notifier.service';

export const PAGING_PARAMS = ['filters', 'filterPage', 'filterLimit'] as const;
export const TASK_UPDATED = 'The Task was successfully updated';
export const TASK_DELETED = 'The Task was successfully deleted';
export const taskNotFound = (id: string) => `We could not find a Task with this ID: ${id}.`;

/** How many times a status change is retried when the engine changes the status at the same moment. */
const STATUS_RACE_RETRIES = 5;

@Injectable()
export class TasksService {
  private readonly logger = new Logger(TasksService.name);

  constructor(
    @Inject(TasksRepository) private readonly tasks: TasksForApi,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForApi,
    private readonly creator: TaskCreator,
    private readonly scheduler: RerunScheduler,
    private readonly config: AppConfig,
    private readonly previewer: TransformPreviewer,
    @Optional() private readonly notifier?: Notifier,
  ) {}

  /**
   * POST /tasks: returns the new task's id. A `transform` or `edits`: 403 unless the user is in a
   * group of TRANSFORM_GROUPS, 400 for an edit of a tid not in `tids`; both before anything is written.
   */
  async create(user: AuthenticatedUser, dto: CreateTaskDto): Promise<string> {
    const tids = distinctTids(dto.tids);
    const options = transformOptionsOf(dto);
    if (transforms(options)) assertMayTransform(user, this.config);
    if (options.edits.length) assertEditsAmong(options.edits, new Set(tids), "the task's tids");
    const id = await this.creator.create(user, {
      tids,
      batchSize: dto.batchSize ?? 1,
      paused: dto.paused === true,
      ratePerSecond: dto.ratePerSecond,
      ...resolveRerunOptions(dto, this.config),
      ...(options.transform ? { transform: options.transform } : {}),
      ...(options.edits.length ? { edits: storedEdits(options.edits) } : {}),
    });
    const transformed = transforms(options) ? ', transforming its requests' : '';
    this.logger.log(
      `User ${user.email} created task ${id} (${tids.length} transactions${dto.paused ? ', paused' : ''}${transformed})`,
    );
    return id;
  }

  /**
   * POST /tasks with `dryRun`: what the task would send, created nothing. The checks of `create`
   * (TRANSFORM_GROUPS, the edits' tids, then the channels' 403 and 400), then the preview.
   */
  async preview(user: AuthenticatedUser, dto: CreateTaskDto): Promise<{ dryRun: true } & TransformPreview> {
    const tids = distinctTids(dto.tids);
    const options = transformOptionsOf(dto);
    assertMayTransform(user, this.config);
    if (options.edits.length) assertEditsAmong(options.edits, new Set(tids), "the task's tids");
    await this.creator.checkTids(user, tids);
    const preview = await this.previewer.ofTids(tids, {
      transform: options.transform,
      edits: storedEdits(options.edits),
      limit: dto.previewLimit ?? PREVIEW_LIMIT_DEFAULT,
    });
    // A preview shows request bodies: on record, as a creation is.
    this.logger.log(
      `User ${user.email} previewed the requests of ${tids.length} transactions (applies ${preview.applies}, ` +
        `unchanged ${preview.unchanged}, fails ${preview.fails}; ${preview.samples.length} shown)`,
    );
    return { dryRun: true, ...preview };
  }

  /**
   * GET /tasks. Everything that can fail with a 4xx is checked here; the returned body is read from
   * the database while it is sent (any page size, `filterLimit=0`: every task).
   */
  async list(query: QueryParams): Promise<JsonFragments> {
    assertKnownParams(query, PAGING_PARAMS);
    const filters = toTaskListQuery(parseFiltersParam(query));
    // filterLimit=0 is "no limit" in OpenHIM (MongoDB's limit(0)): every task.
    const paging = parsePaging(query, TASK_LIST_PAGING);
    return jsonArray(this.tasks.listBatches(filters, paging), publicTask);
  }

  /**
   * GET /tasks/:id: the task, one page of its transactions, `totalFilteredTransactions`. The task is
   * read and the matching items counted before anything is sent (a missing task is still a 404);
   * the page's items are then streamed from a cursor, so a page of 100 000 costs no more memory
   * than a page of 1000.
   */
  async read(id: Types.ObjectId, query: QueryParams): Promise<JsonFragments> {
    assertKnownParams(query, PAGING_PARAMS);
    const filter = toTaskItemFilter(parseFiltersParam(query));
    const paging = parsePaging(query, TASK_ITEM_PAGING);
    const task = await this.tasks.findById(id);
    if (!task) throw notFound(taskNotFound(id.toHexString()));

    let transactions: AsyncIterable<readonly ItemRecord[]> | Iterable<readonly ItemRecord[]>;
    let totalFilteredTransactions: number;
    if (task.itemsStore === 'items') {
      const itemFilter = isUnfiltered(filter) ? {} : itemQuery(filter);
      totalFilteredTransactions =
        isUnfiltered(filter) && typeof task.totalTransactions === 'number'
          ? task.totalTransactions
          : await this.items.countItems(id, itemFilter);
      // Never ask for more than exist: the page ends where the matching items end.
      const limit = Math.max(0, Math.min(paging.limit, totalFilteredTransactions - paging.skip));
      transactions = this.items.itemBatches(id, itemFilter, { skip: paging.skip, limit });
    } else {
      // Created by OpenHIM core: the items are embedded in the task document (one document, < 16 MiB).
      const matching = (await this.tasks.embeddedItems(id)).filter((item) => itemMatches(item, filter));
      totalFilteredTransactions = matching.length;
      transactions = [matching.slice(paging.skip, paging.skip + paging.limit)];
    }
    return jsonObjectWithArray(
      pick(task, PUBLIC_TASK_DETAIL_FIELDS),
      'transactions',
      jsonArray(transactions, publicItem),
      {
        totalFilteredTransactions,
      },
    );
  }

  /** PUT /tasks/:id: pause, resume or cancel, written to the task's history with who did it. */
  async update(id: Types.ObjectId, dto: UpdateTaskDto, user: AuthenticatedUser): Promise<void> {
    const hexId = id.toHexString();
    if (dto._id !== undefined && dto._id.toLowerCase() !== hexId) {
      throw badRequest(`_id in the body (${dto._id}) is not the task id in the path (${hexId})`);
    }
    const target: TaskStatus = dto.status;
    for (let attempt = 0; attempt < STATUS_RACE_RETRIES; attempt++) {
      const task = await this.tasks.findById(id);
      if (!task) throw notFound(taskNotFound(hexId));
      const decision = decideStatusChange(task.status, target);
      if (decision.kind === 'noop') return;
      if (decision.kind === 'refused') throw badRequest(decision.message);
      // Conditional: the engine may have moved the status since we read it; then decide again.
      const entry = historyEntry(decision.done, { user: user.email });
      // A resume starts a new run: the failures in a row of the last one no longer count.
      const set = target === 'Queued' ? { failureStreak: 0 } : undefined;
      if (!(await this.tasks.setStatusIf(id, decision.from, target, { history: entry, set }))) continue;

      const batchSize = task.batchSize ?? 1;
      if (target === 'Queued') {
        try {
          await this.scheduler
            .schedule(hexId, batchSize, { deadlineMs: this.config.QUEUE_TIMEOUT_MS })
            .catch(queueUnavailable(this.logger, `Could not schedule task ${hexId}`));
        } catch (error) {
          // Put it back as it was, so that nothing claims it is running (nor that it was resumed).
          await this.tasks
            .setStatusIf(id, ['Queued'], 'Paused')
            .then(async (undone) => {
              if (undone) await this.tasks.removeHistoryEntry(id, entry);
            })
            .catch(() => undefined);
          throw error;
        }
      } else {
        await this.unschedule(hexId, batchSize);
      }
      this.logger.log(`Task ${hexId}: ${decision.action} (${task.status} -> ${target})`);
      if (target === 'Cancelled')
        this.notifier?.emit({
          type: 'task.cancelled',
          task: { id: hexId, status: 'Cancelled', user: task.user, totalTransactions: task.totalTransactions },
          user: user.email,
          ...(Array.isArray(task.notify) ? { notify: task.notify } : {}),
        });
      return;
    }
    throw conflict(`The status of task ${hexId} keeps changing; try again`);
  }

  /**
   * POST /tasks/:id/rerun-failed: a new task of the source task's items that ended failed
   * (`rerunStatus: Failed` or an error), in their order, checked like POST /tasks, with the source's
   * transform and the edits of those items (then the user must be in a group of TRANSFORM_GROUPS, as
   * for POST /tasks). Returns its id.
   */
  async rerunFailed(user: AuthenticatedUser, id: Types.ObjectId, dto: RerunFailedDto): Promise<string> {
    const hexId = id.toHexString();
    const source = await this.tasks.findById(id);
    if (!source) throw notFound(taskNotFound(hexId));
    if (isRunnable(source.status)) {
      throw conflict(
        `Task ${hexId} is still running (${source.status}): rerun its failed transactions once it has finished, ` +
          'or pause or cancel it first',
      );
    }
    const failed: Array<{ tid: string; edit?: StoredEdit }> =
      source.itemsStore === 'items'
        ? await this.items.failedItems(id)
        : (await this.tasks.embeddedItems(id)).filter(endedFailed).map((item) => ({ tid: String(item.tid) }));
    const rerunnable = failed.filter((item) => HEX_ID.test(item.tid));
    const tids = distinctTids(rerunnable.map((item) => item.tid));
    if (!tids.length) throw badRequest(`Task ${hexId} has no failed transactions to rerun`);
    const edits = new Map<string, StoredEdit>();
    for (const { tid, edit } of rerunnable) {
      if (edit && !edits.has(tid.toLowerCase())) edits.set(tid.toLowerCase(), edit);
    }
    const transform = source.transform as TransformSpec | undefined;
    if (transform || edits.size) assertMayTransform(user, this.config);
    const newId = await this.creator.create(user, {
      tids,
      batchSize: dto.batchSize ?? source.batchSize ?? 1,
      paused: dto.paused === true,
      ...(typeof source.ratePerSecond === 'number' ? { ratePerSecond: source.ratePerSecond } : {}),
      pauseAfterFailures: source.pauseAfterFailures ?? this.config.AUTO_PAUSE_AFTER_FAILURES,
      ...(source.autoResume === true ? { autoResume: true } : {}),
      ...(Array.isArray(source.notify) ? { notify: source.notify } : {}),
      rerunOf: hexId,
      reason: `rerun of the failed transactions of task ${hexId}`,
      ...(transform ? { transform } : {}),
      ...(edits.size ? { edits } : {}),
    });
    this.logger.log(
      `User ${user.email} created task ${newId}: the ${tids.length} failed transactions of task ${hexId}`,
    );
    return newId;
  }

  /** DELETE /tasks/:id: stops the outstanding work, then removes the task and its items. */
  async remove(id: Types.ObjectId): Promise<void> {
    const hexId = id.toHexString();
    const task = await this.tasks.findById(id);
    if (!task) throw notFound(taskNotFound(hexId));
    await this.unschedule(hexId, task.batchSize ?? 1);
    if (!(await this.creator.remove(id))) throw notFound(taskNotFound(hexId));
    this.logger.log(`Task ${hexId} deleted`);
  }

  /** Drops the task's waiting jobs; best effort (lanes also stop by themselves on the task's status). */
  private unschedule(hexId: string, batchSize: number): Promise<void> {
    return this.scheduler.unscheduleIfAble(hexId, batchSize, { deadlineMs: this.config.QUEUE_TIMEOUT_MS });
  }
}

function pick(record: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const field of fields) if (record[field] !== undefined) view[field] = record[field];
  return view;
}

const publicTask = (task: TaskRecord) => pick(task, PUBLIC_TASK_FIELDS);
const publicItem = (item: ItemRecord) => pick(item, PUBLIC_ITEM_FIELDS);

/** An embedded item (a task created by OpenHIM core) that ended failed. */
function endedFailed(item: ItemRecord): boolean {
  return item.rerunStatus === 'Failed' || (item.error !== undefined && item.error !== null && item.error !== '');
}

import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { Types } from 'mongoose';
import type { AuthenticatedUser } from '../../auth/authenticated-user';
import { AppConfig } from '../../config/app-config';
import { ChannelsRepository } from '../../database/repositories/channels.repository';
import {
  HoldsForApi,
  pausedBy,
  releasedFrom,
  RerunHoldsRepository,
} from '../../database/repositories/rerun-holds.repository';
import { TaskItemsForApi, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { HoldCandidate, TasksForApi, TasksRepository } from '../../database/repositories/tasks.repository';
import { HOLD_ALL, StoredRerunHold } from '../../database/schemas';
import { EMERGENCY_STOP } from '../../domain/status-changes';
import { PENDING_ITEM_STATUSES } from '../../domain/task-status';
import { RerunScheduler } from '../../rerun/rerun-scheduler.service';
import { notFound } from '../errors';
import { HoldView, PauseAllDto, PauseAllResponse, ResumeAllDto, ResumeAllResponse } from './emergency-stop.dto';
import { Notifier } from '../../notifications/notifier.service';

export const unknownChannel = (id: string) => `We could not find a channel with this ID: ${id}.`;
export const noHold = (channelId?: string) =>
  channelId
    ? `No emergency stop holds channel ${channelId} (POST /tasks/pause-all with this channelID puts one)`
    : 'No emergency stop holds every task (POST /tasks/pause-all without channelID puts one)';

/** Lanes are dropped and added for this many tasks at once (each waits for Redis at most QUEUE_TIMEOUT_MS). */
const QUEUE_CONCURRENCY = 8;

/**
 * The emergency stop (docs/design.md, "Emergency stop"): POST /tasks/pause-all pauses every
 * unfinished task (or those with transactions still to rerun on one channel) and leaves a hold, so
 * that tasks created or adopted later start Paused; POST /tasks/resume-all lifts the hold and resumes
 * exactly the tasks it paused that are still Paused. A task remembers its hold in `heldBy`, which any
 * status change made by a person clears.
 */
@Injectable()
export class EmergencyStopService {
  private readonly logger = new Logger(EmergencyStopService.name);

  constructor(
    @Inject(TasksRepository) private readonly tasks: TasksForApi,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForApi,
    @Inject(RerunHoldsRepository) private readonly holds: HoldsForApi,
    private readonly channels: ChannelsRepository,
    private readonly scheduler: RerunScheduler,
    private readonly config: AppConfig,
    @Optional() private readonly notifier?: Notifier,
  ) {}

  /**
   * The hold first, then the tasks: a task created meanwhile is either found here or sees the hold
   * when it checks again after it is written (TaskCreator).
   */
  async pauseAll(user: AuthenticatedUser, dto: PauseAllDto): Promise<PauseAllResponse> {
    const channelId = dto.channelID ? new Types.ObjectId(dto.channelID) : null;
    if (channelId && !(await this.channels.findByIds([channelId])).length) {
      throw notFound(unknownChannel(dto.channelID!));
    }
    const hold = await this.holds.hold(channelId, { reason: dto.reason, user: user.email, at: new Date() });
    const change = pausedBy(hold);
    const paused: HoldCandidate[] = [];
    for (const task of await this.tasks.findInStatuses(EMERGENCY_STOP.pause.from)) {
      if (channelId && !(await this.coveringHold(task, [hold]))) continue;
      // Conditional: a task that finished or was paused or cancelled meanwhile is left as it is.
      if (await this.tasks.setHoldIf(task._id, { from: EMERGENCY_STOP.pause.from }, change)) paused.push(task);
    }
    // As PUT {status: 'Paused'}: the lanes' waiting jobs go; running lanes stop at their next gate.
    await this.forEach(paused, (task) =>
      this.scheduler.unscheduleIfAble(task._id.toHexString(), task.batchSize ?? 1, {
        deadlineMs: this.config.QUEUE_TIMEOUT_MS,
      }),
    );
    this.logger.warn(
      `Emergency stop by ${user.email} (${describeScope(hold)}): ${paused.length} tasks paused; reason: ${hold.reason}`,
    );
    this.notifier?.emit({
      type: 'tasks.paused-all',
      user: user.email,
      reason: hold.reason,
      tasks: paused.map((task) => task._id.toHexString()),
      ...(hold.channelID ? { channel: { id: hold.channelID.toHexString() } } : {}),
    });
    return { paused: paused.map((task) => task._id.toHexString()), hold: holdView(hold) };
  }

  /**
   * Resumes the hold's tasks, lifts it, then looks again for tasks held by it in between (created
   * or adopted while it ran). A task another hold still covers moves to that hold instead. Stopping
   * half-way leaves the hold in force (call again) or only tasks written in that instant, which put
   * themselves right (`recheckHold`).
   */
  async resumeAll(user: AuthenticatedUser, dto: ResumeAllDto): Promise<ResumeAllResponse> {
    const channelId = dto.channelID ? new Types.ObjectId(dto.channelID) : null;
    const hold = await this.holds.forScope(channelId);
    if (!hold) throw notFound(noHold(dto.channelID));
    const others = (await this.holds.all()).filter((other) => !other._id.equals(hold._id));
    const resumed = await this.release(hold, others, user);
    await this.holds.lift(hold._id);
    resumed.push(...(await this.release(hold, others, user)));
    // Hands the work back to the queue; when Redis does not answer, the sweeper schedules these
    // Queued tasks once it does.
    await this.forEach(resumed, (task) =>
      this.scheduler
        .schedule(task._id.toHexString(), task.batchSize ?? 1, { deadlineMs: this.config.QUEUE_TIMEOUT_MS })
        .catch((error: Error) =>
          this.logger.warn(
            `Could not schedule task ${task._id.toHexString()} (the sweeper schedules it): ${error.message}`,
          ),
        ),
    );
    this.logger.warn(
      `Emergency stop lifted by ${user.email} (${describeScope(hold)}): ${resumed.length} tasks resumed`,
    );
    this.notifier?.emit({
      type: 'tasks.resumed-all',
      user: user.email,
      reason: hold.reason,
      tasks: resumed.map((task) => task._id.toHexString()),
      ...(hold.channelID ? { channel: { id: hold.channelID.toHexString() } } : {}),
    });
    return { resumed: resumed.map((task) => task._id.toHexString()) };
  }

  /** The tasks `hold` holds, each resumed or moved to another hold that covers it; the resumed ones. */
  private async release(
    hold: StoredRerunHold,
    others: readonly StoredRerunHold[],
    user: AuthenticatedUser,
  ): Promise<HoldCandidate[]> {
    const resumed: HoldCandidate[] = [];
    const condition = { from: EMERGENCY_STOP.resume.from, heldBy: hold._id };
    for (const task of await this.tasks.findHeldBy(hold._id, EMERGENCY_STOP.resume.from)) {
      const other = await this.coveringHold(task, others);
      if (other) await this.tasks.setHoldIf(task._id, condition, pausedBy(other));
      else if (await this.tasks.setHoldIf(task._id, condition, releasedFrom(hold, user.email))) resumed.push(task);
    }
    return resumed;
  }

  /** The first of `holds` that covers the task's transactions still to rerun, or null. */
  private async coveringHold(task: HoldCandidate, holds: readonly StoredRerunHold[]): Promise<StoredRerunHold | null> {
    if (!holds.length) return null;
    for await (const tids of this.pendingTids(task)) {
      const hold = await this.holds.holdFor(tids, holds);
      if (hold) return hold;
    }
    return null;
  }

  /** The tids still to rerun (or on their way) of a task of ours, or of one OpenHIM core created. */
  private async *pendingTids(task: HoldCandidate): AsyncGenerator<string[]> {
    if (task.itemsStore === 'items') {
      yield* this.items.pendingTidBatches(task._id);
      return;
    }
    const pending = (await this.tasks.embeddedItems(task._id))
      .filter(
        (item) => item.tstatus === undefined || (PENDING_ITEM_STATUSES as readonly string[]).includes(item.tstatus),
      )
      .map((item) => String(item.tid));
    if (pending.length) yield pending;
  }

  private async forEach(tasks: readonly HoldCandidate[], work: (task: HoldCandidate) => Promise<void>) {
    for (let start = 0; start < tasks.length; start += QUEUE_CONCURRENCY) {
      await Promise.all(tasks.slice(start, start + QUEUE_CONCURRENCY).map(work));
    }
  }
}

function describeScope(hold: StoredRerunHold): string {
  return hold.scope === HOLD_ALL ? 'every task' : `channel ${hold.scope}`;
}

export function holdView(hold: StoredRerunHold): HoldView {
  return {
    _id: hold._id.toHexString(),
    scope: hold.scope === HOLD_ALL ? 'all' : 'channel',
    ...(hold.channelID ? { channelID: hold.channelID.toHexString() } : {}),
    reason: hold.reason,
    user: hold.user,
    at: new Date(hold.at).toISOString(),
  };
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import { Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { RerunScheduler } from '../rerun-scheduler.service';
import { WorkerLifecycle } from './worker-lifecycle';
import { EngineTask, TasksForEngine, TasksRepository } from '../../database/repositories/tasks.repository';
import { TaskItemsForEngine, TaskItemsRepository } from '../../database/repositories/task-items.repository';
import {
  HoldsForEngine,
  pausedBy,
  recheckHold,
  RerunHoldsRepository,
} from '../../database/repositories/rerun-holds.repository';
import { EMERGENCY_STOP } from '../../domain/status-changes';

const CHUNK = 1000;
const KEPT_STATUSES = new Set(['Completed', 'Failed']);

/**
 * Takes over a Queued task created by OpenHIM core (items embedded in `transactions[]`): one
 * `taskitems` document per embedded entry (same `_id`, `seq` = position), then the task switches to
 * the items store. Idempotent: a worker dying half-way leaves a lock that expires, and the next
 * adopter skips the items already copied. Entries core left Processing are rerun.
 */
@Injectable()
export class TaskAdopter {
  private readonly logger = new Logger(TaskAdopter.name);

  constructor(
    private readonly config: AppConfig,
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    private readonly scheduler: RerunScheduler,
    private readonly lifecycle: WorkerLifecycle,
    @Inject(RerunHoldsRepository) private readonly holds: HoldsForEngine,
  ) {}

  /** True when the task now uses the items store (adopted here, or already). */
  async adopt(task: EngineTask): Promise<boolean> {
    if (task.itemsStore === 'items') return true;
    const lockUntil = () => new Date(Date.now() + this.config.WORKER_LEASE_MS);
    const owner = this.lifecycle.owner;
    if (task.status !== 'Queued' || !(await this.tasks.lockAdoption(task._id, owner, lockUntil()))) return false;

    const embedded = await this.tasks.embeddedItems(task._id);
    const docs = embedded.map((entry, seq) => {
      const kept = KEPT_STATUSES.has(String(entry.tstatus));
      return {
        _id: entry._id ?? new Types.ObjectId(),
        taskId: task._id,
        seq,
        tid: String(entry.tid ?? ''),
        tstatus: kept ? entry.tstatus : 'Queued',
        ...(kept && entry.error !== undefined ? { error: entry.error } : {}),
        ...(kept && entry.rerunID !== undefined ? { rerunID: entry.rerunID } : {}),
        ...(kept && entry.rerunStatus !== undefined ? { rerunStatus: entry.rerunStatus } : {}),
      };
    });
    for (let start = 0; start < docs.length; start += CHUNK) {
      await this.items.insertIgnoringDuplicates(docs.slice(start, start + CHUNK));
      await this.tasks.lockAdoption(task._id, owner, lockUntil());
    }
    const pending = docs.filter((doc) => doc.tstatus === 'Queued');
    const remaining = pending.length;
    // An emergency stop holding these transactions: the task is adopted Paused, in the same update.
    const tids = pending.map((doc) => doc.tid);
    const hold = remaining ? await this.holds.holdFor(tids) : null;
    const held =
      hold !== null &&
      (await this.tasks.commitAdoption(task._id, owner, docs.length, remaining, {
        from: EMERGENCY_STOP.pause.from,
        change: pausedBy(hold),
      }));
    // Without a hold, or the status changed meanwhile (a person paused or cancelled it): as it is.
    if (!held && !(await this.tasks.commitAdoption(task._id, owner, docs.length, remaining))) {
      // Deleted meanwhile: drop what was copied. Otherwise another adopter finished first.
      if (!(await this.tasks.load(task._id))) await this.items.deleteForTask(task._id);
      return false;
    }
    // A release that ran meanwhile may have looked for the hold's tasks before this one was held.
    const holding = held ? await recheckHold(this.holds, this.tasks, task._id, tids, hold) : null;
    this.logger.log(
      `Adopted task ${task._id.toHexString()} created by OpenHIM core (${docs.length} items, ${remaining} to run)` +
        (holding ? `, Paused: an emergency stop holds it (${holding.reason})` : ''),
    );
    if (!holding) await this.scheduler.schedule(task._id.toHexString(), task.batchSize);
    return true;
  }
}

import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Model } from 'mongoose';
import { Task } from '../../database/schemas';
import { TASK_STATUSES } from '../../domain/task-status';

/** Counts of tasks per status, for the tasks gauge. */
@Injectable()
export class TaskCountsRepository {
  constructor(@InjectModel(Task.name) private readonly tasks: Model<Task>) {}

  /**
   * One count per status, each answered from the `status` index, rather than a $group that reads
   * every task (OpenHIM databases keep years of them).
   */
  async countByStatus(): Promise<Map<string, number>> {
    const counts = await Promise.all(TASK_STATUSES.map((status) => this.tasks.countDocuments({ status }).exec()));
    return new Map(TASK_STATUSES.map((status, index) => [status, counts[index]]));
  }
}

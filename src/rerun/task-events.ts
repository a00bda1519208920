import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { Types } from 'mongoose';
import { TaskItemsForEngine, TaskItemsRepository } from '../database/repositories/task-items.repository';
import { TasksForEngine, TasksRepository } from '../database/repositories/tasks.repository';
import type { NotifiedChannel, NotificationType } from '../notifications/notification-event';
import { Notifier } from '../notifications/notifier.service';

const STATUS_OF: Partial<Record<NotificationType, string>> = {
  'task.started': 'Processing',
  'task.completed': 'Completed',
  'task.failed': 'Completed',
  'task.auto-paused': 'Paused',
  'task.auto-resumed': 'Queued',
};

/**
 * The engine's task notifications: the task's creator and counts are read (and, for a finished
 * task, its failed items counted) off the engine's path, then handed to the Notifier. Never throws,
 * never makes a lane wait.
 */
@Injectable()
export class TaskEvents {
  private readonly logger = new Logger(TaskEvents.name);

  constructor(
    @Inject(TasksRepository) private readonly tasks: TasksForEngine,
    @Inject(TaskItemsRepository) private readonly items: TaskItemsForEngine,
    @Optional() private readonly notifier?: Notifier,
  ) {}

  /** `task.completed` becomes `task.failed` when every item of the task failed. */
  taskEvent(
    type: NotificationType,
    taskId: Types.ObjectId,
    extra: { reason?: string; channel?: NotifiedChannel } = {},
  ) {
    if (!this.notifier) return;
    void this.send(type, taskId, extra).catch((error: Error) =>
      this.logger.warn(`Could not notify ${type} of task ${taskId.toHexString()}: ${error.message}`),
    );
  }

  channelEvent(type: 'breaker.opened' | 'breaker.closed', channel: NotifiedChannel, reason?: string): void {
    this.notifier?.emit({ type, channel, ...(reason ? { reason } : {}) });
  }

  private async send(
    type: NotificationType,
    taskId: Types.ObjectId,
    extra: { reason?: string; channel?: NotifiedChannel },
  ): Promise<void> {
    const summary = await this.tasks.summary(taskId);
    if (!summary) return;
    const finished = type === 'task.completed';
    const failed = finished ? await this.items.countFailed(taskId) : undefined;
    const total = summary.totalTransactions;
    const actual = finished && total !== undefined && total > 0 && failed === total ? 'task.failed' : type;
    this.notifier!.emit({
      type: actual,
      task: {
        id: taskId.toHexString(),
        ...(STATUS_OF[actual] ? { status: STATUS_OF[actual] } : {}),
        ...(summary.user ? { user: summary.user } : {}),
        ...(total !== undefined ? { totalTransactions: total } : {}),
        ...(summary.remainingTransactions !== undefined
          ? { remainingTransactions: summary.remainingTransactions }
          : {}),
        ...(failed !== undefined ? { failed } : {}),
      },
      ...(Array.isArray(summary.notify) ? { notify: summary.notify } : {}),
      ...(actual === 'task.failed' && !extra.reason ? { reason: `all ${total} reruns failed` } : {}),
      ...extra,
    });
  }
}

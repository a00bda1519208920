import { HttpException } from '@nestjs/common';
import { Types } from 'mongoose';
import { TaskStatus } from '../domain/task-status';
import { serviceUnavailable } from './errors';
import type { TaskCreator } from './task-creator.service';
import type { RerunScheduler } from '../rerun/rerun-scheduler.service';
import { TransformPreviewer } from './transform-preview.service';
import { TasksService } from './tasks.service';
import { loadConfig } from '../config/app-config';
import type { TaskItemsRepository } from '../database/repositories/task-items.repository';
import type { TaskRecord, TasksRepository } from '../database/repositories/tasks.repository';

/**
 * The status change under concurrency: the engine may move the status between our read and our
 * conditional update. A fake repository plays the engine's part.
 */
describe('TasksService.update against a concurrently changing status', () => {
  const id = new Types.ObjectId();
  let statuses: TaskStatus[];
  let current: TaskStatus;
  const calls: string[] = [];

  const repository = {
    findById: jest.fn(async (): Promise<TaskRecord | null> => {
      // Each read sees the next status the engine moved to.
      if (statuses.length) current = statuses.shift()!;
      return { _id: id, status: current, batchSize: 2 };
    }),
    setStatusIf: jest.fn(async (_: Types.ObjectId, from: readonly TaskStatus[], to: TaskStatus, _change?: unknown) => {
      calls.push(`${from.join('|')} -> ${to}`);
      if (!from.includes(current)) return false;
      current = to;
      return true;
    }),
    removeHistoryEntry: jest.fn(async () => undefined),
  };
  const operator = { email: 'op@example.org', groups: ['admin'], isAdmin: true };
  const queue = { schedule: jest.fn(async () => undefined), unscheduleIfAble: jest.fn(async () => undefined) };
  const config = loadConfig({});
  const service = new TasksService(
    repository as unknown as TasksRepository,
    {} as TaskItemsRepository,
    {} as TaskCreator,
    queue as unknown as RerunScheduler,
    config,
    {} as TransformPreviewer,
  );
  const failure = async (work: Promise<unknown>) => {
    const error = await work.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(HttpException);
    return { status: (error as HttpException).getStatus(), text: (error as HttpException).getResponse() };
  };

  beforeEach(() => {
    calls.length = 0;
    jest.clearAllMocks();
  });

  it('re-reads after a missed conditional update and refuses what is no longer allowed', async () => {
    // Read as Queued; by the update the engine has completed it.
    statuses = ['Queued', 'Completed'];
    current = 'Queued';
    repository.setStatusIf.mockImplementationOnce(async (_, from, to, __) => {
      calls.push(`${from.join('|')} -> ${to}`);
      current = 'Completed';
      return false;
    });
    const { status, text } = await failure(service.update(id, { status: 'Paused' }, operator));
    expect(status).toBe(400);
    expect(text).toMatch(/^Cannot change a task from Completed to Paused\./);
    expect(queue.unscheduleIfAble).not.toHaveBeenCalled();
  });

  it('re-reads after a missed conditional update and applies what is still allowed', async () => {
    statuses = ['Queued', 'Processing'];
    current = 'Queued';
    repository.setStatusIf.mockImplementationOnce(async (_, from, to, __) => {
      calls.push(`${from.join('|')} -> ${to}`);
      current = 'Processing';
      return false;
    });
    await service.update(id, { status: 'Cancelled' }, operator);
    expect(current).toBe('Cancelled');
    expect(calls).toHaveLength(2);
    expect(queue.unscheduleIfAble).toHaveBeenCalledWith(id.toHexString(), 2, { deadlineMs: config.QUEUE_TIMEOUT_MS });
  });

  it('puts a resumed task back to Paused when the queue is unavailable', async () => {
    statuses = ['Paused'];
    current = 'Paused';
    queue.schedule.mockRejectedValueOnce(serviceUnavailable('queue down'));
    const { status } = await failure(service.update(id, { status: 'Queued' }, operator));
    expect(status).toBe(503);
    expect(current).toBe('Paused');
    expect(calls).toEqual(['Paused -> Queued', 'Queued -> Paused']);
    // The refused resume leaves no trace in the task's history.
    const written = repository.setStatusIf.mock.calls[0][3] as { history: object };
    expect(repository.removeHistoryEntry).toHaveBeenCalledWith(id, written.history);
  });

  it('404 when the task disappears', async () => {
    repository.findById.mockResolvedValueOnce(null);
    const { status, text } = await failure(service.update(id, { status: 'Paused' }, operator));
    expect(status).toBe(404);
    expect(text).toBe(`We could not find a Task with this ID: ${id.toHexString()}.`);
  });
});

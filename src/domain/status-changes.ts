import type { HistoryAction } from './task-history';
import { RUNNABLE_STATUSES, TaskStatus } from './task-status';

/** What `PUT /tasks/:id` may do (docs/design.md, "Task lifecycle"); the engine owns the other moves. */
export const STATUS_CHANGES: ReadonlyArray<{
  to: TaskStatus;
  from: readonly TaskStatus[];
  action: string;
  /** What the task's history calls it. */
  done: HistoryAction;
}> = [
  { to: 'Paused', from: RUNNABLE_STATUSES, action: 'pause', done: 'paused' },
  { to: 'Queued', from: ['Paused'], action: 'resume', done: 'resumed' },
  { to: 'Cancelled', from: ['Queued', 'Processing', 'Paused', 'Pending Async'], action: 'cancel', done: 'cancelled' },
];

export const ALLOWED_CHANGES_TEXT =
  'Allowed changes: Queued, Processing or Pending Async to Paused (pause); Paused to Queued (resume); ' +
  'any status but Completed to Cancelled (cancel)';

export type StatusDecision =
  | { kind: 'noop' }
  | { kind: 'change'; from: readonly TaskStatus[]; action: string; done: HistoryAction }
  | { kind: 'refused'; message: string };

/** Decides a requested change from the task's current status. */
export function decideStatusChange(current: string, target: TaskStatus): StatusDecision {
  if (current === target) return { kind: 'noop' };
  const change = STATUS_CHANGES.find((candidate) => candidate.to === target);
  if (!change) {
    return {
      kind: 'refused',
      message: `The status ${target} cannot be set through the API (the rerun engine sets it). ${ALLOWED_CHANGES_TEXT}`,
    };
  }
  if (!(change.from as readonly string[]).includes(current)) {
    return { kind: 'refused', message: `Cannot change a task from ${current} to ${target}. ${ALLOWED_CHANGES_TEXT}` };
  }
  return { kind: 'change', from: change.from, action: change.action, done: change.done };
}

/**
 * The emergency stop (POST /tasks/pause-all and /tasks/resume-all, docs/design.md "Emergency
 * stop"): it pauses what `PUT {status: 'Paused'}` may pause, and releases only the tasks it paused
 * that are still Paused. Tasks created or adopted while a hold covers them start `Paused`.
 */
export const EMERGENCY_STOP: {
  pause: { from: readonly TaskStatus[]; to: TaskStatus; done: HistoryAction };
  resume: { from: readonly TaskStatus[]; to: TaskStatus; done: HistoryAction };
} = {
  pause: { from: RUNNABLE_STATUSES, to: 'Paused', done: 'emergency-paused' },
  resume: { from: ['Paused'], to: 'Queued', done: 'emergency-resumed' },
};

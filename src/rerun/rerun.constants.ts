/** The one Bull queue of the engine, its job names and job ids. */
export const RERUN_QUEUE = 'rerun';

export const RerunJob = {
  /** Runs one of a task's `batchSize` slots until the task has no more work for it (or a time slice ends). */
  Lane: 'lane',
  /** Checks a task's items answered 202 for their child transaction's final status. */
  AsyncPoll: 'async-poll',
} as const;

export interface LaneJobData {
  taskId: string;
}

export interface AsyncPollJobData {
  taskId: string;
}

/** What a processor returns: `again` re-adds the same job (same id) once it has completed. */
export interface JobResult {
  again: boolean;
  delayMs?: number;
}

export const laneJobId = (taskId: string, lane: number) => `lane:${taskId}:${lane}`;
/** An extra lane that takes over a dead worker's slot while its own lane job is still held by Bull. */
export const takeoverJobId = (taskId: string, leaseId: string) => `lane:${taskId}:takeover:${leaseId}`;
export const asyncPollJobId = (taskId: string) => `async:${taskId}`;

/** Jobs are wake-ups: MongoDB holds the state, so finished jobs are not kept. */
export const JOB_DEFAULTS = { removeOnComplete: true, removeOnFail: true } as const;

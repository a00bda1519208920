/** The one Bull queue of the engine, its job names and default job options. */
export const RERUN_QUEUE = 'rerun';

export const RerunJob = {
  /** Runs one of a task's `batchSize` slots until the task has no more work for it. */
  Lane: 'lane',
} as const;

export interface LaneJobData {
  taskId: string;
}

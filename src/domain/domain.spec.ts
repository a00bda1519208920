import { knownRerunOutcome, rerunOutcomeOf } from './rerun-outcome';
import { isRunnable, RUNNABLE_STATUSES, STARTING_STATUSES, TASK_STATUSES, UNFINISHED_STATUSES } from './task-status';
import { isFinalTransactionStatus, TRANSACTION_STATUSES } from './transaction-status';

describe('src/domain', () => {
  it('runs Queued, Processing and Pending Async tasks; the sweeper also looks after Paused ones', () => {
    expect(RUNNABLE_STATUSES).toEqual(['Queued', 'Processing', 'Pending Async']);
    expect(UNFINISHED_STATUSES).toEqual(['Queued', 'Processing', 'Pending Async', 'Paused']);
    expect(TASK_STATUSES.filter(isRunnable)).toEqual(['Queued', 'Processing', 'Pending Async']);
    expect(STARTING_STATUSES).toEqual(['Queued', 'Processing']);
  });

  it('knows the final transaction statuses', () => {
    expect(['Successful', 'Completed', 'Completed with error(s)', 'Failed'].every(isFinalTransactionStatus)).toBe(true);
    expect(['Processing', 'Pending Async', undefined].some(isFinalTransactionStatus)).toBe(false);
    expect(TRANSACTION_STATUSES.filter((status) => !isFinalTransactionStatus(status))).toEqual(['Processing']);
  });

  it('maps what is recorded on an item to a bounded outcome', () => {
    expect(rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: 'Successful' })).toBe('successful');
    expect(rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: 'Failed' })).toBe('failed');
    expect(rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: 'Pending Async' })).toBe('pending_async');
    expect(rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: 'Weird' })).toBe('other');
    expect(rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: 'Completed with error(s)' })).toBe(
      'completed_with_errors',
    );
    expect(rerunOutcomeOf({ tstatus: 'Completed', rerunStatus: 'Processing' })).toBe('pending_async');
    expect(rerunOutcomeOf({ tstatus: 'Failed' })).toBe('not_rerunnable');
    expect(rerunOutcomeOf({ tstatus: 'Completed' })).toBe('other');
    expect(knownRerunOutcome('retried')).toBe('retried');
    expect(knownRerunOutcome('weird')).toBe('other');
  });
});

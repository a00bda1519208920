import type { FinalTransactionStatus } from './transaction-status';

/**
 * How one rerun ended, as a bounded label set:
 * - `successful`, `completed`, `completed_with_errors`, `failed`: OpenHIM answered; the child
 *   transaction's status (rerunStatus), `failed` including a rerun that could not be sent;
 * - `pending_async`: answered 202, the final status comes later;
 * - `not_rerunnable`: not attempted (transaction missing or not rerunnable: tstatus Failed);
 * - `abandoned`: given up because the worker is stopping (another worker redoes it);
 * - `retried`: never reached OpenHIM core (refused, or no child stored) and sent again later.
 */
export const RERUN_OUTCOMES = [
  'successful',
  'completed',
  'completed_with_errors',
  'failed',
  'pending_async',
  'not_rerunnable',
  'abandoned',
  'retried',
  'other',
] as const;
export type RerunOutcome = (typeof RERUN_OUTCOMES)[number];

const BY_FINAL_STATUS: Record<FinalTransactionStatus, RerunOutcome> = {
  Successful: 'successful',
  Completed: 'completed',
  'Completed with error(s)': 'completed_with_errors',
  Failed: 'failed',
};

const BY_RERUN_STATUS: Record<string, RerunOutcome> = {
  ...BY_FINAL_STATUS,
  'Pending Async': 'pending_async',
  Processing: 'pending_async',
};

/** The outcome of an item from what is recorded on it. */
export function rerunOutcomeOf(item: { tstatus?: string; rerunStatus?: string }): RerunOutcome {
  if (item.tstatus === 'Failed') return 'not_rerunnable';
  return (item.rerunStatus && BY_RERUN_STATUS[item.rerunStatus]) || 'other';
}

/** `outcome` when it is one of RERUN_OUTCOMES, else `other`. */
export function knownRerunOutcome(outcome: string): RerunOutcome {
  return (RERUN_OUTCOMES as readonly string[]).includes(outcome) ? (outcome as RerunOutcome) : 'other';
}

/** OpenHIM transaction statuses after which nothing changes any more. */
export const FINAL_TRANSACTION_STATUSES = ['Successful', 'Completed', 'Completed with error(s)', 'Failed'] as const;
export type FinalTransactionStatus = (typeof FINAL_TRANSACTION_STATUSES)[number];

/** The statuses OpenHIM core gives a transaction: while it is routed, then one of the final ones. */
export const TRANSACTION_STATUSES = ['Processing', ...FINAL_TRANSACTION_STATUSES] as const;

const FINAL = new Set<string>(FINAL_TRANSACTION_STATUSES);

export function isFinalTransactionStatus(status: string | undefined): status is string {
  return status !== undefined && FINAL.has(status);
}

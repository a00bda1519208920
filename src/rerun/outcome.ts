/**
 * The status OpenHIM core gives a transaction from its primary route's HTTP status (its
 * `setFinalStatus`): 2xx Successful, 5xx Failed, anything else Completed. Used when the child
 * transaction is not final (or not there) when the answer arrives.
 */
export function statusFromHttp(status: number | undefined): string {
  if (status === undefined) return 'Completed';
  if (status >= 200 && status < 300) return 'Successful';
  if (status >= 500 && status < 600) return 'Failed';
  return 'Completed';
}

/** OpenHIM's texts for the two reruns that cannot be attempted (`tstatus: Failed`). */
export const notFoundError = (tid: string) => `Transaction ${tid} could not be found`;
export const cannotRerunError = (tid: string) =>
  `Transaction ${tid} cannot be rerun as there isn't enough information about the request`;

/**
 * A job hash without `data`, deleted with its lock: what Bull's moveToActive script leaves when it
 * reaches a Redis that lost the job. Bull takes a job id from the wait list with BRPOPLPUSH, then
 * runs moveToActive(id) on another connection; when Redis restarts in between, ioredis sends
 * moveToActive again to the new, empty Redis once it is back, and the script sets a lock and
 * `processedOn` on a hash that did not exist. That husk is in no list, so nothing ever runs or
 * removes it, and it holds its id: Bull's add of a job under an existing id does nothing, so the
 * work it stands for could never be added again. Returns the 1-based positions in KEYS of the husks
 * removed. Used by the sweepers of the rerun and notifications queues.
 */
export const REMOVE_HUSKS = `
local removed = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and redis.call('HEXISTS', key, 'data') == 0 then
    redis.call('DEL', key, key .. ':lock')
    removed[#removed + 1] = i
  end
end
return removed`;

/**
 * Bull's lock and stall settings of a queue whose truth is in MongoDB: a SIGKILLed worker's jobs
 * return within about 2 x the lease, and a job that stalled any number of times is never failed for it.
 */
export function leasedQueueSettings(leaseMs: number) {
  return {
    lockDuration: leaseMs,
    stalledInterval: leaseMs,
    maxStalledCount: Number.MAX_SAFE_INTEGER,
    retryProcessDelay: 1000,
  };
}

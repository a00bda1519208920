import { InjectQueue } from '@nestjs/bull';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bull';
import { AppConfig } from '../../config/app-config';
import { withDeadline } from '../../common/deadline';
import { RERUN_QUEUE } from '../rerun.constants';

/** Redis keys of a channel's guard (the permits' key keeps the name of the first version's, redis-semaphore's). */
export function guardKeys(prefix: string, channelKey: string) {
  const base = `${prefix}:guard:${channelKey}`;
  return {
    /** The permits held: a sorted set of permit ids scored with when each was taken or last renewed. */
    inFlight: `semaphore:${base}:in-flight`,
    /** Points taken in the current one-second window (expires with it). */
    rate: `${base}:rate`,
    /** Tasks whose lanes wait for a permit (score: until when the entry counts). */
    waiting: `${base}:waiting`,
  };
}

/**
 * What the channels' guards hold now, across every worker (read from Redis): reruns in flight per
 * guarded channel and the tasks waiting for a permit. For GET /rerun-guards and /metrics.
 */
@Injectable()
export class ChannelLoad {
  constructor(
    private readonly config: AppConfig,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
  ) {}

  /** Reruns in flight per channel (hex id): permits not expired. */
  async inFlight(channelKeys: readonly string[]): Promise<Map<string, number>> {
    if (!channelKeys.length) return new Map();
    const since = Date.now() - this.config.WORKER_LEASE_MS;
    const pipeline = this.queue.client.pipeline();
    for (const key of channelKeys) pipeline.zcount(guardKeys(this.config.QUEUE_PREFIX, key).inFlight, since, '+inf');
    const results = await withDeadline(pipeline.exec(), this.config.QUEUE_TIMEOUT_MS, 'Redis');
    return new Map(channelKeys.map((key, index) => [key, Number(results?.[index]?.[1] ?? 0)]));
  }

  /** The tasks (hex ids) whose lanes wait for a permit of the channel now. */
  async waitingTasks(channelKey: string): Promise<string[]> {
    const key = guardKeys(this.config.QUEUE_PREFIX, channelKey).waiting;
    return withDeadline(
      this.queue.client.zrangebyscore(key, Date.now(), '+inf'),
      this.config.QUEUE_TIMEOUT_MS,
      'Redis',
    );
  }
}

import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import type Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { Semaphore } from 'redis-semaphore';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../../config/app-config';
import { withDeadline } from '../../common/deadline';
import { GuardsForEngine, RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import type { StoredRerunGuard } from '../../database/schemas';
import { RERUN_QUEUE } from '../rerun.constants';
import { guardKeys } from './channel-load.service';

/** A channel's limits in force: its own, else the environment's (0: no limit). */
export interface ChannelLimits {
  maxInFlight: number;
  maxPerSecond: number;
}

export function limitsOf(
  guard: Pick<StoredRerunGuard, 'maxInFlight' | 'maxPerSecond'> | undefined | null,
  defaults: Pick<AppConfig, 'GUARD_MAX_IN_FLIGHT' | 'GUARD_MAX_PER_SECOND'>,
): ChannelLimits {
  return {
    maxInFlight: guard?.maxInFlight ?? defaults.GUARD_MAX_IN_FLIGHT,
    maxPerSecond: guard?.maxPerSecond ?? defaults.GUARD_MAX_PER_SECOND,
  };
}

/** A rerun's admission to its channel's downstream; given back once the downstream answered. */
export interface Permit {
  release(): void;
}

/** What keeps a waiting lane waiting: it asks, about once a second, whether it still should. */
export interface Waiter {
  /** Hex id of the task (listed as waiting on the channel). */
  taskKey: string;
  /** False when the rerun is no longer wanted (task paused or gone, lease lost, worker stopping). */
  stillWanted(): Promise<boolean>;
}

export type Admission = Permit | 'breaker-open' | 'not-wanted';

const NO_PERMIT: Permit = { release: () => undefined };
/** How often a waiting lane tries for a permit, and how often it asks whether it still should. */
const RETRY_MS = 25;
const RECHECK_MS = 1000;

/**
 * The downstream guards (docs/design.md, "Outage recovery"): before each send, a rerun to a channel
 * with limits takes one of its `maxInFlight` permits (redis-semaphore: a sorted set of leases that
 * expire after WORKER_LEASE_MS unless refreshed, so a killed worker's permits come back) and one
 * of its `maxPerSecond` points (rate-limiter-flexible, a one-second window), both in Redis and so
 * shared by every task and worker. A channel without limits costs nothing here but the cached read
 * of the guards (at most once a second per process). A rerun whose channel's breaker is open is not
 * admitted (only its probe is).
 */
@Injectable()
export class ChannelGuards {
  private readonly logger = new Logger(ChannelGuards.name);
  private readonly limiters = new Map<string, { points: number; limiter: RateLimiterRedis }>();
  private readonly lastTrouble = new Map<string, number>();

  constructor(
    private readonly config: AppConfig,
    @Inject(RerunGuardsRepository) private readonly guards: GuardsForEngine,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
  ) {}

  private get redis(): Redis {
    return this.queue.client as unknown as Redis;
  }

  /** The channel's guard as read at most a second ago (undefined: it has none). */
  async guardOf(channelKey: string): Promise<StoredRerunGuard | undefined> {
    return (await this.guards.recent()).get(channelKey);
  }

  /**
   * Waits for the channel's permits. `probe`: the breaker's probe, admitted while it is open.
   * 'breaker-open' / 'not-wanted': nothing was taken, the rerun must not be sent.
   */
  async admit(channelKey: string | undefined, waiter: Waiter, probe = false): Promise<Admission> {
    if (!channelKey) return NO_PERMIT;
    let guard = await this.guardOf(channelKey);
    if (!probe && guard?.breaker?.state === 'open') return 'breaker-open';
    let limits = limitsOf(guard, this.config);
    if (!limits.maxInFlight && !limits.maxPerSecond) return NO_PERMIT;

    const keys = guardKeys(this.config.QUEUE_PREFIX, channelKey);
    let nextCheck = Date.now() + RECHECK_MS;
    let listed = false;
    try {
      for (;;) {
        const permit = await this.tryPermit(keys, channelKey, limits).catch((error: Error) => {
          this.redisTrouble(channelKey, error);
          // Redis away: asked again after a check, not in a tight loop.
          return { waitMs: RECHECK_MS };
        });
        if ('release' in permit) return permit;
        const wait = permit.waitMs;
        if (Date.now() + wait >= nextCheck) {
          nextCheck = Date.now() + RECHECK_MS;
          if (!(await waiter.stillWanted())) return 'not-wanted';
          guard = await this.guardOf(channelKey);
          if (!probe && guard?.breaker?.state === 'open') return 'breaker-open';
          limits = limitsOf(guard, this.config);
          if (!limits.maxInFlight && !limits.maxPerSecond) return NO_PERMIT;
          listed = true;
          // Lists the task as waiting on the channel (GET /rerun-guards) for a little longer than a check.
          await this.redis
            .zadd(keys.waiting, Date.now() + 2 * RECHECK_MS, waiter.taskKey)
            .then(() => this.redis.pexpire(keys.waiting, 10 * RECHECK_MS))
            .catch(() => undefined);
        }
        await sleep(Math.min(wait, Math.max(1, nextCheck - Date.now())));
      }
    } finally {
      if (listed) await this.redis.zrem(keys.waiting, waiter.taskKey).catch(() => undefined);
    }
  }

  /** Logs Redis failing the guards at most every 10 s per channel (every waiting lane asks). */
  private redisTrouble(channelKey: string, error: Error): void {
    const now = Date.now();
    if ((this.lastTrouble.get(channelKey) ?? 0) > now - 10000) return;
    this.lastTrouble.set(channelKey, now);
    this.logger.warn(`Channel ${channelKey}: reruns wait, the guard cannot ask Redis for a permit (${error.message})`);
  }

  /** A permit, or how long to wait before asking again. */
  private async tryPermit(
    keys: ReturnType<typeof guardKeys>,
    channelKey: string,
    limits: ChannelLimits,
  ): Promise<Permit | { waitMs: number }> {
    let semaphore: Semaphore | undefined;
    if (limits.maxInFlight) {
      semaphore = new Semaphore(this.redis, keys.semaphore, limits.maxInFlight, {
        lockTimeout: this.config.WORKER_LEASE_MS,
        refreshInterval: Math.floor(this.config.WORKER_LEASE_MS / 3),
        // One attempt: the waiting (and whether the rerun is still wanted) is admit's.
        acquireAttemptsLimit: 1,
        onLockLost: () =>
          this.logger.warn(`Channel ${channelKey}: a permit expired before its rerun was answered (Redis restarted?)`),
      });
      const acquired = await withDeadline(semaphore.tryAcquire(), this.config.WORKER_LEASE_MS / 3, 'Redis');
      if (!acquired) return { waitMs: RETRY_MS };
    }
    if (limits.maxPerSecond) {
      const waitMs = await this.consume(keys.rate, limits.maxPerSecond).catch(async (error: Error) => {
        await release(semaphore);
        throw error;
      });
      if (waitMs > 0) {
        await release(semaphore);
        return { waitMs };
      }
    }
    if (!semaphore) return NO_PERMIT;
    return { release: () => void release(semaphore) };
  }

  /** One of the second's points: 0 when taken, else the wait until the next second. */
  private async consume(keyPrefix: string, points: number): Promise<number> {
    let entry = this.limiters.get(keyPrefix);
    if (!entry || entry.points !== points) {
      entry = {
        points,
        limiter: new RateLimiterRedis({
          storeClient: this.redis,
          keyPrefix,
          points,
          duration: 1,
          useRedisPackage: false,
        }),
      };
      this.limiters.set(keyPrefix, entry);
    }
    try {
      await withDeadline(entry.limiter.consume('starts'), this.config.WORKER_LEASE_MS / 3, 'Redis');
      return 0;
    } catch (result) {
      if (result instanceof RateLimiterRes) return Math.max(1, result.msBeforeNext);
      throw result;
    }
  }
}

async function release(semaphore: Semaphore | undefined): Promise<void> {
  // A permit that cannot be given back expires with its lease.
  if (semaphore) await semaphore.release().catch(() => undefined);
}

import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../../config/app-config';
import { withDeadline } from '../../common/deadline';
import { GuardsForEngine, RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import type { StoredRerunGuard } from '../../database/schemas';
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

/**
 * Who runs reruns one after another (a lane's slot): it may keep a permit from one rerun to its
 * next, while the channel had plenty free when it was taken, so that a guard whose limits are far
 * off costs no Redis round trip per rerun. `dropPermit` gives it back (the slot is released, or the
 * lane is about to wait without sending).
 */
export interface PermitHolder {
  keptPermit?: KeptPermit;
}

export interface KeptPermit {
  channelKey: string;
  drop(): void;
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
/** The rate's window. */
const WINDOW_MS = 1000;
/** A worker takes up to this share of a second's points at once and hands them out itself. */
const POINTS_SHARE = 0.05;

/**
 * One admission, atomically: drops the channel's expired permits, then takes a permit (a member of
 * a sorted set scored with the time it was taken or last renewed) when fewer than `maxInFlight`
 * are held, and up to `wanted` points of the current one-second window when fewer than
 * `maxPerSecond` were taken; nothing unless both. Returns {-1} (no permit free), {-2, ms until the
 * window ends} (no point left) or {0, points taken, ms left in the window, permits held}.
 * KEYS: permits, window. ARGV: now, lease, maxInFlight (0: no permit wanted), id, maxPerSecond,
 * wanted (0: no point wanted).
 */
const ADMIT_SCRIPT = `
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local rate = tonumber(ARGV[5])
local wanted = tonumber(ARGV[6])
local held = 0
if limit > 0 then
  redis.call('zremrangebyscore', KEYS[1], '-inf', now - lease)
  held = redis.call('zcard', KEYS[1])
  if held >= limit then return {-1} end
end
local taken = 0
local ttl = 0
if wanted > 0 then
  local used = tonumber(redis.call('get', KEYS[2]) or '0')
  ttl = redis.call('pttl', KEYS[2])
  if ttl < 1 then ttl = ${WINDOW_MS} end
  if used >= rate then return {-2, ttl} end
  taken = math.min(wanted, rate - used)
  if redis.call('incrby', KEYS[2], taken) == taken then redis.call('pexpire', KEYS[2], ${WINDOW_MS}) ttl = ${WINDOW_MS} end
end
if limit > 0 then
  redis.call('zadd', KEYS[1], now, ARGV[4])
  redis.call('pexpire', KEYS[1], lease)
  held = held + 1
end
return {0, taken, ttl, held}
`;

type AdmitCommand = (
  permits: string,
  window: string,
  now: number,
  lease: number,
  maxInFlight: number,
  id: string,
  maxPerSecond: number,
  wanted: number,
) => Promise<number[]>;

/**
 * The downstream guards (docs/design.md, "Outage recovery"): before each send, a rerun to a channel
 * with limits holds one of its `maxInFlight` permits and one of the second's `maxPerSecond` points,
 * both counted in Redis and so shared by every task and worker. A permit is a lease: renewed every
 * third of WORKER_LEASE_MS while held (one pipeline per worker for all it holds) and dropped by the
 * next admission once it has expired, so a killed worker's permits come back. A lane may keep its
 * permit for its next rerun when at most half the channel's permits were held as it took it (the
 * other half keeps turning over, so no task is starved), and a worker takes a few points of a second
 * at once (POINTS_SHARE of them) and hands them out itself: with limits far off, a rerun costs no
 * Redis round trip. A channel without limits costs nothing here but the cached read of the guards
 * (at most once a second per process). A rerun whose channel's breaker is open is not admitted
 * (only its probe is).
 *
 * Why not redis-semaphore and rate-limiter-flexible (used at first): three Redis commands per rerun,
 * two of them awaited one after the other before the send, cost the bench's single task about 12 %
 * of its throughput (the issue allows 5 %), and neither keeps a permit or hands out points locally.
 */
@Injectable()
export class ChannelGuards implements OnApplicationShutdown {
  private readonly logger = new Logger(ChannelGuards.name);
  private readonly lastTrouble = new Map<string, number>();
  /** Permits held by this process: id → the sorted set it is in. */
  private readonly held = new Map<string, string>();
  /** Points of the current window taken from Redis and not yet handed out, per channel. */
  private readonly points = new Map<string, { left: number; until: number }>();
  /** A fetch of points in flight per channel: other lanes wait for it rather than fetch their own. */
  private readonly fetchingPoints = new Map<string, Promise<void>>();
  private readonly prefix = randomBytes(6).toString('hex');
  private sequence = 0;
  private redisClient?: Redis & { admitPermit: AdmitCommand };
  private renewal?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    @Inject(RerunGuardsRepository) private readonly guards: GuardsForEngine,
  ) {}

  /** Opened on first use: a deployment without guards never connects. */
  private get redis(): Redis & { admitPermit: AdmitCommand } {
    if (!this.redisClient) {
      const client = new Redis(this.config.REDIS_URL!, {
        enableAutoPipelining: true,
        maxRetriesPerRequest: null,
        enableReadyCheck: false,
        retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
      });
      client.on('error', () => undefined); // reported by the admissions that fail
      client.defineCommand('admitPermit', { numberOfKeys: 2, lua: ADMIT_SCRIPT });
      this.redisClient = client as Redis & { admitPermit: AdmitCommand };
      const every = Math.max(100, Math.floor(this.config.WORKER_LEASE_MS / 3));
      this.renewal = setInterval(() => void this.renewHeld(), every);
      this.renewal.unref();
    }
    return this.redisClient;
  }

  /** After the processor's shutdown (onModuleDestroy) has let the lanes finish and give their permits back. */
  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.renewal);
    await this.redisClient?.quit().catch(() => this.redisClient?.disconnect());
  }

  /** The channel's guard as read at most a second ago (undefined: it has none). */
  async guardOf(channelKey: string): Promise<StoredRerunGuard | undefined> {
    return (await this.guards.recent()).get(channelKey);
  }

  /**
   * Waits for the channel's permit and point. `probe`: the breaker's probe, admitted while it is
   * open. 'breaker-open' / 'not-wanted': nothing was taken, the rerun must not be sent.
   */
  async admit(channelKey: string | undefined, waiter: Waiter, holder: PermitHolder, probe = false): Promise<Admission> {
    if (holder.keptPermit && holder.keptPermit.channelKey !== channelKey) holder.keptPermit.drop();
    if (!channelKey) return NO_PERMIT;
    let guard = await this.guardOf(channelKey);
    if (!probe && guard?.breaker?.state === 'open') return 'breaker-open';
    let limits = limitsOf(guard, this.config);
    if (!limits.maxInFlight) holder.keptPermit?.drop();
    if (!limits.maxInFlight && !limits.maxPerSecond) return NO_PERMIT;

    const keys = guardKeys(this.config.QUEUE_PREFIX, channelKey);
    let nextCheck = Date.now() + RECHECK_MS;
    let listed = false;
    try {
      for (;;) {
        const permit = await this.tryPermit(channelKey, keys, limits, holder).catch((error: Error) => {
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
          if (!limits.maxInFlight) holder.keptPermit?.drop();
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

  /** A point handed out from those this worker took (false: none left in this window). */
  private localPoint(channelKey: string): boolean {
    const local = this.points.get(channelKey);
    if (!local || local.left <= 0 || Date.now() >= local.until) return false;
    local.left--;
    return true;
  }

  /** Puts back a point handed out for a rerun that was not admitted after all. */
  private returnPoint(channelKey: string): void {
    const local = this.points.get(channelKey);
    if (local && Date.now() < local.until) local.left++;
  }

  /** A permit, or how long to wait before asking again. */
  private async tryPermit(
    channelKey: string,
    keys: ReturnType<typeof guardKeys>,
    limits: ChannelLimits,
    holder: PermitHolder,
  ): Promise<Permit | { waitMs: number }> {
    const needPermit = limits.maxInFlight > 0 && !holder.keptPermit;
    // A point from this worker's share; else this lane fetches a share, and lanes that come
    // meanwhile wait for it (checked and marked without an await in between).
    let pointAtHand = false;
    let fetched: (() => void) | undefined;
    while (limits.maxPerSecond > 0 && !pointAtHand && !fetched) {
      pointAtHand = this.localPoint(channelKey);
      const fetching = this.fetchingPoints.get(channelKey);
      if (pointAtHand) break;
      if (fetching) await fetching;
      else this.fetchingPoints.set(channelKey, new Promise<void>((resolve) => (fetched = resolve)));
    }
    const needPoint = fetched !== undefined;
    if (!needPermit && !needPoint) return NO_PERMIT;
    const wanted = needPoint ? Math.max(1, Math.floor(limits.maxPerSecond * POINTS_SHARE)) : 0;
    const id = `${this.prefix}:${++this.sequence}`;
    const sentAt = Date.now();
    let answer: number[];
    try {
      answer = await withDeadline(
        this.redis.admitPermit(
          keys.inFlight,
          keys.rate,
          sentAt,
          this.config.WORKER_LEASE_MS,
          needPermit ? limits.maxInFlight : 0,
          id,
          limits.maxPerSecond,
          wanted,
        ),
        Math.floor(this.config.WORKER_LEASE_MS / 3),
        'Redis',
      );
      const [status, taken, windowLeft] = answer;
      // One point is this rerun's; the rest are handed out by this worker until the window ends.
      if (status === 0 && needPoint) this.points.set(channelKey, { left: taken - 1, until: sentAt + windowLeft });
    } catch (error) {
      if (pointAtHand) this.returnPoint(channelKey);
      throw error;
    } finally {
      if (fetched) {
        this.fetchingPoints.delete(channelKey);
        fetched();
      }
    }
    const [status, , windowLeft, held] = answer;
    if (status !== 0 && pointAtHand) this.returnPoint(channelKey);
    if (status === -1) return { waitMs: RETRY_MS };
    if (status === -2) return { waitMs: Math.max(1, windowLeft) };
    if (!needPermit) return NO_PERMIT;
    this.held.set(id, keys.inFlight);
    const drop = () => {
      if (holder.keptPermit === keeper) holder.keptPermit = undefined;
      if (!this.held.delete(id)) return;
      // A permit that cannot be given back expires with its lease.
      this.redis.zrem(keys.inFlight, id).catch(() => undefined);
    };
    const keeper: KeptPermit = { channelKey, drop };
    // Plenty free: the lane keeps it for its next rerun (given back when its slot is released).
    const keep = held * 2 <= limits.maxInFlight;
    return {
      release: () => {
        if (keep && this.held.has(id)) holder.keptPermit = keeper;
        else drop();
      },
    };
  }

  /** Renews every permit this process holds (one pipeline); one gone (Redis restarted) is logged. */
  private async renewHeld(): Promise<void> {
    if (!this.held.size || !this.redisClient) return;
    const now = Date.now();
    const entries = [...this.held];
    const pipeline = this.redisClient.pipeline();
    for (const [id, key] of entries) pipeline.zadd(key, 'XX', 'CH', now, id);
    for (const key of new Set(entries.map(([, key]) => key))) pipeline.pexpire(key, this.config.WORKER_LEASE_MS);
    const results = await pipeline.exec().catch(() => null);
    const lost = entries.filter(([id], index) => this.held.has(id) && Number(results?.[index]?.[1] ?? 1) === 0);
    if (lost.length)
      this.logger.warn(`${lost.length} permits expired before their reruns were answered (Redis restarted?)`);
  }
}

import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { Gauge } from 'prom-client';
import { AppConfig } from '../../config/app-config';
import { TASK_STATUSES } from '../../domain/task-status';
import { RERUN_QUEUE } from '../../rerun/rerun.constants';
import { withDeadline } from '../../common/deadline';
import { METRIC_PREFIX, MetricsRegistry } from '../../common/metrics/metrics.registry';
import { RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import { TasksRepository } from '../../database/repositories/tasks.repository';
import { ChannelsRepository } from '../../database/repositories/channels.repository';
import { ChannelLoad } from '../../rerun/guards/channel-load.service';
import { limitsOf } from '../../rerun/guards/channel-guards.service';

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'paused'] as const;
const SOURCE_TIMEOUT_MS = 2000;

/** A value read at most every `ttlMs`; concurrent readers share one read; failures are not kept. */
class CachedRead<T> {
  private pending?: Promise<T>;
  private last?: { at: number; value: T };

  constructor(
    private readonly ttlMs: number,
    private readonly read: () => Promise<T>,
  ) {}

  get(): Promise<T> {
    if (this.pending) return this.pending;
    if (this.last && Date.now() - this.last.at < this.ttlMs) return Promise.resolve(this.last.value);
    const pending = this.read().then((value) => {
      this.last = { at: Date.now(), value };
      return value;
    });
    this.pending = pending;
    const clear = () => {
      if (this.pending === pending) this.pending = undefined;
    };
    pending.then(clear, clear);
    return pending;
  }
}

/** The channels' guards as the gauges need them (hex channel ids). */
interface GuardStates {
  /** Breaker state of every channel with a guard document. */
  breakers: Array<{ channel: string; open: boolean }>;
  /** Channels with a limit in force (their own, or the defaults for every channel). */
  limited: string[];
}

/**
 * Gauges of state shared by every process (tasks in MongoDB, jobs in Redis, the channels' guards in
 * both), read when scraped and cached for METRICS_CACHE_MS. Every replica reports the same values:
 * aggregate them with max(), not sum(). A source that does not answer leaves its gauges out of that
 * scrape; MongoDB (tasks) and Redis (queue jobs) show as down in `openhim_rerun_metrics_source_up`.
 */
@Injectable()
export class ClusterMetrics {
  private readonly logger = new Logger('Metrics');
  private readonly taskCounts: CachedRead<Map<string, number>>;
  private readonly jobCounts: CachedRead<Record<string, number>>;
  private readonly guardStates: CachedRead<GuardStates>;
  private readonly channelsInFlight: CachedRead<Map<string, number>>;

  constructor(
    registry: MetricsRegistry,
    config: AppConfig,
    repository: TasksRepository,
    @InjectQueue(RERUN_QUEUE) queue: Queue,
    @Inject(RerunGuardsRepository) guards: Pick<RerunGuardsRepository, 'all'>,
    channels: ChannelsRepository,
    load: ChannelLoad,
  ) {
    const registers = [registry];
    this.taskCounts = new CachedRead(config.METRICS_CACHE_MS, () =>
      withDeadline(repository.countByStatus(), SOURCE_TIMEOUT_MS, 'MongoDB'),
    );
    this.jobCounts = new CachedRead(config.METRICS_CACHE_MS, () =>
      withDeadline(
        queue.getJobCounts() as Promise<unknown> as Promise<Record<string, number>>,
        SOURCE_TIMEOUT_MS,
        'Redis',
      ),
    );
    this.guardStates = new CachedRead(config.METRICS_CACHE_MS, () =>
      withDeadline(readGuardStates(guards, channels, config), SOURCE_TIMEOUT_MS, 'MongoDB'),
    );
    this.channelsInFlight = new CachedRead(config.METRICS_CACHE_MS, async () => {
      const { limited } = await this.guardStates.get();
      return withDeadline(load.inFlight(limited), SOURCE_TIMEOUT_MS, 'Redis');
    });
    const fill = this.fill.bind(this);
    const taskCounts = () => this.taskCounts.get();
    const jobCounts = () => this.jobCounts.get();
    const guardStates = () => this.guardStates.get();
    const channelsInFlight = () => this.channelsInFlight.get();
    // Shares the reads of the gauges below (one read per source and scrape).
    new Gauge({
      name: `${METRIC_PREFIX}metrics_source_up`,
      help: 'Whether MongoDB (tasks) and Redis (queue jobs) answered this scrape in time (1) or not (0)',
      labelNames: ['source'],
      registers,
      async collect() {
        const [mongo, redis] = await Promise.allSettled([taskCounts(), jobCounts()]);
        this.set({ source: 'mongodb' }, mongo.status === 'fulfilled' ? 1 : 0);
        this.set({ source: 'redis' }, redis.status === 'fulfilled' ? 1 : 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}tasks`,
      help: 'Rerun tasks by status (all tasks in the database)',
      labelNames: ['status'],
      registers,
      async collect() {
        await fill(this, 'mongodb', async () => {
          const counts = await taskCounts();
          return TASK_STATUSES.map((status) => [{ status }, counts.get(status) ?? 0] as const);
        });
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}queue_jobs`,
      help: `Jobs in the Bull queue "${RERUN_QUEUE}" by state`,
      labelNames: ['state'],
      registers,
      async collect() {
        await fill(this, 'redis', async () => {
          const counts = await jobCounts();
          return QUEUE_STATES.map((state) => [{ state }, Number(counts[state] ?? 0)] as const);
        });
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}channel_reruns_in_flight`,
      help:
        'Reruns in flight to a channel across every task and worker, per channel (id) with a downstream limit in ' +
        'force (GET /rerun-guards)',
      labelNames: ['channel'],
      registers,
      async collect() {
        await fill(this, 'redis', async () =>
          [...(await channelsInFlight())].map(([channel, count]) => [{ channel }, count] as const),
        );
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}channel_breaker_open`,
      help: "Whether a channel's circuit breaker is open (1) or closed (0), per channel (id) with a guard",
      labelNames: ['channel'],
      registers,
      async collect() {
        await fill(this, 'mongodb', async () =>
          (await guardStates()).breakers.map(({ channel, open }) => [{ channel }, open ? 1 : 0] as const),
        );
      },
    });
  }

  private async fill<L extends string>(
    gauge: Gauge<L>,
    source: 'mongodb' | 'redis',
    read: () => Promise<ReadonlyArray<readonly [Partial<Record<L, string>>, number]>>,
  ): Promise<void> {
    gauge.reset();
    try {
      for (const [labels, value] of await read()) gauge.set(labels, value);
    } catch (error) {
      this.logger.warn(`Metrics without ${source} figures: ${(error as Error).message}`);
    }
  }
}

async function readGuardStates(
  guards: Pick<RerunGuardsRepository, 'all'>,
  channels: Pick<ChannelsRepository, 'idsAndNames'>,
  config: AppConfig,
): Promise<GuardStates> {
  const all = await guards.all();
  const limitsInForce = (limits: { maxInFlight: number; maxPerSecond: number }) =>
    limits.maxInFlight > 0 || limits.maxPerSecond > 0;
  const limited = new Set(
    all.filter((guard) => limitsInForce(limitsOf(guard, config))).map((guard) => guard.channelID.toHexString()),
  );
  if (limitsInForce(limitsOf(undefined, config))) {
    // The defaults apply to every channel without limits of its own.
    const own = new Set(all.map((guard) => guard.channelID.toHexString()));
    const ids = await channels.idsAndNames();
    for (const { _id } of ids) if (!own.has(_id.toHexString())) limited.add(_id.toHexString());
  }
  return {
    breakers: all.map((guard) => ({ channel: guard.channelID.toHexString(), open: guard.breaker?.state === 'open' })),
    limited: [...limited].sort(),
  };
}

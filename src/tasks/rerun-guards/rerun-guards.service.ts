import { Inject, Injectable, Logger } from '@nestjs/common';
import { Types } from 'mongoose';
import type { AuthenticatedUser } from '../../auth/authenticated-user';
import { AppConfig } from '../../config/app-config';
import { ChannelsRepository } from '../../database/repositories/channels.repository';
import { GuardsForApi, RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import { TasksRepository } from '../../database/repositories/tasks.repository';
import { StoredRerunGuard } from '../../database/schemas';
import { ChannelLoad } from '../../rerun/guards/channel-load.service';
import { ChannelLimits, limitsOf } from '../../rerun/guards/channel-guards.service';
import { unknownChannel } from '../emergency-stop/emergency-stop.service';
import { notFound } from '../errors';
import { queueUnavailable } from '../queue-unavailable';
import { BreakerView, RerunGuardView, SetGuardLimitsDto } from './rerun-guards.dto';

/** What the guards API reads of the tasks: those Paused waiting for a channel's probe. */
type TasksForGuards = Pick<TasksRepository, 'findWaitingFor' | 'channelsWaitedFor'>;

/** What a channel's guard holds in Redis now: reruns in flight, tasks whose lanes wait for a permit. */
interface Load {
  inFlight: number;
  waiting: string[];
}

const hasLimit = (limits: ChannelLimits) => limits.maxInFlight > 0 || limits.maxPerSecond > 0;

/**
 * The downstream guards API (docs/design.md, "Outage recovery"): lists the channels' limits, their
 * circuit breakers and what waits for them, and sets or removes a channel's own limits. The
 * figures of the moment (reruns in flight, lanes waiting for a permit) come from Redis: when it does
 * not answer within QUEUE_TIMEOUT_MS, the request is a 503 and nothing is written.
 */
@Injectable()
export class RerunGuardsService {
  private readonly logger = new Logger(RerunGuardsService.name);

  constructor(
    @Inject(RerunGuardsRepository) private readonly guards: GuardsForApi,
    @Inject(TasksRepository) private readonly tasks: TasksForGuards,
    private readonly channels: ChannelsRepository,
    // Every channel's id and name (ChannelsRepository reads channels by id or ACL only).
    private readonly load: ChannelLoad,
    private readonly config: AppConfig,
  ) {}

  /**
   * Every channel with a guard document (own limits, or a breaker that counted failures) and, while
   * GUARD_MAX_IN_FLIGHT or GUARD_MAX_PER_SECOND is set, every channel; by channel id.
   */
  async list(): Promise<RerunGuardView[]> {
    const [guards, waitedFor] = await Promise.all([this.guards.all(), this.tasks.channelsWaitedFor()]);
    const byChannel = new Map(guards.map((guard) => [guard.channelID.toHexString(), guard]));
    const names = this.defaultsApply()
      ? await this.allChannelNames()
      : await this.channelNames(guards.map((guard) => guard.channelID));
    const keys = [...new Set([...byChannel.keys(), ...(this.defaultsApply() ? names.keys() : [])])].sort();
    const limited = keys.filter((key) => hasLimit(limitsOf(byChannel.get(key), this.config)));
    const load = await this.readLoad(limited);
    const waitedForKeys = new Set(waitedFor.map((id) => id.toHexString()));
    const paused = new Map(
      await Promise.all(
        keys
          .filter((key) => waitedForKeys.has(key))
          .map(async (key) => [key, await this.pausedFor(new Types.ObjectId(key))] as const),
      ),
    );
    return keys.map((key) =>
      view(key, names.get(key), byChannel.get(key), this.config, load.get(key), paused.get(key) ?? []),
    );
  }

  /** Replaces the channel's limits (a field left out: the default applies again). */
  async setLimits(user: AuthenticatedUser, channelId: Types.ObjectId, dto: SetGuardLimitsDto): Promise<RerunGuardView> {
    const key = channelId.toHexString();
    const [channel] = await this.channels.findByIds([channelId]);
    if (!channel) throw notFound(unknownChannel(key));
    // Redis first: when it does not answer, nothing is written.
    const load = await this.readLoad([key]);
    const guard = await this.guards.setLimits(
      channelId,
      { maxInFlight: dto.maxInFlight, maxPerSecond: dto.maxPerSecond },
      user.email,
    );
    this.logger.log(
      `Guard of channel ${key} set by ${user.email}: maxInFlight ${describeLimit(dto.maxInFlight)}, ` +
        `maxPerSecond ${describeLimit(dto.maxPerSecond)}`,
    );
    return view(key, channel.name, guard, this.config, load.get(key), await this.pausedFor(channelId));
  }

  /**
   * Removes the channel's own limits: the defaults apply again (its breaker's state stays). A
   * channel that is gone from OpenHIM but still has a guard may have it removed.
   */
  async removeLimits(user: AuthenticatedUser, channelId: Types.ObjectId): Promise<RerunGuardView> {
    const key = channelId.toHexString();
    const [channel] = await this.channels.findByIds([channelId]);
    if (!channel && !(await this.guards.forChannel(channelId))) throw notFound(unknownChannel(key));
    const load = await this.readLoad([key]);
    const guard = await this.guards.removeLimits(channelId);
    this.logger.log(`Guard limits of channel ${key} removed by ${user.email}: the defaults apply`);
    return view(key, channel?.name, guard ?? undefined, this.config, load.get(key), await this.pausedFor(channelId));
  }

  private defaultsApply(): boolean {
    return hasLimit(limitsOf(undefined, this.config));
  }

  /** In-flight counts and waiting lanes of these channels (hex ids); a 503 when Redis does not answer. */
  private async readLoad(keys: readonly string[]): Promise<Map<string, Load>> {
    if (!keys.length) return new Map();
    const [inFlight, waiting] = await Promise.all([
      this.load.inFlight(keys),
      Promise.all(keys.map((key) => this.load.waitingTasks(key))),
    ]).catch(queueUnavailable(this.logger, "Could not read the channels' guards from Redis"));
    return new Map(keys.map((key, index) => [key, { inFlight: inFlight.get(key) ?? 0, waiting: waiting[index] }]));
  }

  /** The tasks Paused waiting for the channel's probe (hex ids). */
  private async pausedFor(channelId: Types.ObjectId): Promise<string[]> {
    return (await this.tasks.findWaitingFor(channelId)).map((task) => task._id.toHexString());
  }

  private async channelNames(ids: readonly Types.ObjectId[]): Promise<Map<string, string | undefined>> {
    const channels = await this.channels.findByIds(ids);
    return new Map(channels.map((channel) => [channel._id.toHexString(), channel.name]));
  }

  private async allChannelNames(): Promise<Map<string, string | undefined>> {
    const channels = await this.channels.idsAndNames();
    return new Map(channels.map((channel) => [channel._id.toHexString(), channel.name]));
  }
}

function describeLimit(limit: number | undefined): string {
  return limit === undefined ? 'default' : String(limit);
}

/** A channel's entry: limits in force and its own, the breaker, what waits for the channel. */
function view(
  channelKey: string,
  name: string | undefined,
  guard: StoredRerunGuard | undefined,
  config: Pick<AppConfig, 'GUARD_MAX_IN_FLIGHT' | 'GUARD_MAX_PER_SECOND'>,
  load: Load | undefined,
  paused: readonly string[],
): RerunGuardView {
  const limits = limitsOf(guard, config);
  const limited = hasLimit(limits);
  return {
    channelID: channelKey,
    ...(name !== undefined ? { name } : {}),
    maxInFlight: limits.maxInFlight,
    maxPerSecond: limits.maxPerSecond,
    own: {
      ...(guard?.maxInFlight !== undefined ? { maxInFlight: guard.maxInFlight } : {}),
      ...(guard?.maxPerSecond !== undefined ? { maxPerSecond: guard.maxPerSecond } : {}),
    },
    inFlight: limited ? (load?.inFlight ?? 0) : 0,
    breaker: breakerView(guard),
    waitingTasks: [...new Set([...paused, ...(limited ? (load?.waiting ?? []) : [])])],
    ...(guard?.updatedBy !== undefined ? { updatedBy: guard.updatedBy } : {}),
    ...(guard?.updatedAt !== undefined ? { updatedAt: new Date(guard.updatedAt).toISOString() } : {}),
  };
}

function breakerView(guard: StoredRerunGuard | undefined): BreakerView {
  const breaker = guard?.breaker;
  return {
    state: breaker?.state === 'open' ? 'open' : 'closed',
    failures: Number(breaker?.failures ?? 0),
    ...(breaker?.lastError !== undefined ? { lastError: breaker.lastError } : {}),
    ...(breaker?.openedAt ? { openedAt: new Date(breaker.openedAt).toISOString() } : {}),
    ...(breaker?.nextProbeAt ? { nextProbeAt: new Date(breaker.nextProbeAt).toISOString() } : {}),
    ...(breaker?.backoffMs !== undefined ? { backoffMs: breaker.backoffMs } : {}),
    probing: !!breaker?.probe && new Date(breaker.probe.until).getTime() > Date.now(),
  };
}

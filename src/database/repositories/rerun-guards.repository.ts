import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Document, UpdateFilter } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { RerunGuard, StoredRerunGuard } from '../schemas';
import { CollectionRepository } from './collection-repository';

/** A channel's limits as an admin sets them (absent: the environment's default applies). */
export interface GuardLimits {
  maxInFlight?: number;
  maxPerSecond?: number;
}

const DUPLICATE_KEY = 11000;
/** How long the engine may reuse the guards it read (limits and breaker states). */
const RECENT_MS = 1000;

/**
 * Our `rerunguards` (docs/design.md, "Outage recovery"): per channel, the limits an admin set and
 * the circuit breaker's state, which every worker reads (cached for a second) and changes only
 * through conditional single-document updates, so two workers never open, probe or close one
 * breaker twice. Every operation settles within a lease (the engine asks).
 */
@Injectable()
export class RerunGuardsRepository extends CollectionRepository<RerunGuard> {
  private recentGuards?: { at: number; guards: Promise<Map<string, StoredRerunGuard>> };

  constructor(@InjectModel(RerunGuard.name) model: Model<RerunGuard>, config: AppConfig) {
    super(model, config);
  }

  async all(): Promise<StoredRerunGuard[]> {
    return (await this.op('all', (o) =>
      this.collection.find({}, { sort: { channelID: 1 }, ...o }).toArray(),
    )) as StoredRerunGuard[];
  }

  /** The guards by channel (hex id) as read at most a second ago in this process. */
  recent(): Promise<Map<string, StoredRerunGuard>> {
    const now = Date.now();
    if (!this.recentGuards || now - this.recentGuards.at > RECENT_MS) {
      const guards = this.all().then((all) => new Map(all.map((guard) => [guard.channelID.toHexString(), guard])));
      this.recentGuards = { at: now, guards };
      guards.catch(() => (this.recentGuards = undefined));
    }
    return this.recentGuards.guards;
  }

  /** Forgets the cached guards (this process changed one). */
  forget(): void {
    this.recentGuards = undefined;
  }

  async forChannel(channelId: Types.ObjectId): Promise<StoredRerunGuard | null> {
    return (await this.op('forChannel', (o) =>
      this.collection.findOne({ channelID: channelId }, o),
    )) as StoredRerunGuard | null;
  }

  /** Sets a channel's limits (both: a field left out goes back to the default). */
  async setLimits(channelId: Types.ObjectId, limits: GuardLimits, user: string): Promise<StoredRerunGuard> {
    const set: Record<string, unknown> = { updatedBy: user, updatedAt: new Date() };
    const unset: Record<string, ''> = {};
    for (const field of ['maxInFlight', 'maxPerSecond'] as const) {
      if (limits[field] === undefined) unset[field] = '';
      else set[field] = limits[field];
    }
    return this.upsert(channelId, { $set: set, ...(Object.keys(unset).length ? { $unset: unset } : {}) });
  }

  /**
   * Removes a channel's limits (the defaults apply again); the breaker's state stays while it is
   * open or counting. Returns the guard left, or null when none is.
   */
  async removeLimits(channelId: Types.ObjectId): Promise<StoredRerunGuard | null> {
    this.forget();
    const after = (await this.collection.findOneAndUpdate(
      { channelID: channelId },
      { $unset: { maxInFlight: '', maxPerSecond: '', updatedBy: '', updatedAt: '' } },
      { returnDocument: 'after' },
    )) as StoredRerunGuard | null;
    if (after && !after.breaker?.failures && after.breaker?.state !== 'open' && !after.breaker?.nextProbeAt) {
      await this.collection.deleteOne({
        _id: after._id,
        maxInFlight: { $exists: false },
        maxPerSecond: { $exists: false },
        'breaker.state': { $ne: 'open' },
        'breaker.failures': { $not: { $gt: 0 } },
        'breaker.nextProbeAt': { $exists: false },
      });
      return null;
    }
    return after;
  }

  // ---- the circuit breaker ------------------------------------------------------------------------

  /** `n` more failed reruns in a row to the channel; the count afterwards and the breaker's state. */
  async addFailures(
    channelId: Types.ObjectId,
    n: number,
    lastError: string,
  ): Promise<{ failures: number; open: boolean }> {
    const after = await this.upsert(channelId, {
      $inc: { 'breaker.failures': n },
      $set: { 'breaker.lastError': lastError },
    });
    return { failures: Number(after.breaker?.failures ?? 0), open: after.breaker?.state === 'open' };
  }

  /** A rerun to the channel succeeded: the count restarts from the failures that followed it. */
  async resetFailures(channelId: Types.ObjectId, failures: number): Promise<void> {
    await this.op('resetFailures', (o) =>
      this.collection.updateOne(
        { channelID: channelId, 'breaker.failures': { $gt: failures } },
        { $set: { 'breaker.failures': failures } },
        o,
      ),
    );
  }

  /**
   * Opens the breaker if it is closed and the failures in a row reached `threshold` (one caller
   * wins). The first probe is due `backoffMs` from now.
   */
  async open(channelId: Types.ObjectId, threshold: number, backoffMs: number): Promise<StoredRerunGuard | null> {
    const now = Date.now();
    this.forget();
    return (await this.op('open', (o) =>
      this.collection.findOneAndUpdate(
        { channelID: channelId, 'breaker.state': { $ne: 'open' }, 'breaker.failures': { $gte: threshold } },
        {
          $set: {
            'breaker.state': 'open',
            'breaker.openedAt': new Date(now),
            'breaker.backoffMs': backoffMs,
            'breaker.nextProbeAt': new Date(now + backoffMs),
            'breaker.probes': 0,
          },
          $unset: { 'breaker.probe': '' },
        },
        { returnDocument: 'after', ...o },
      ),
    )) as StoredRerunGuard | null;
  }

  /**
   * Tasks wait for the channel's probe (auto-pause with `autoResume`): the first is due `backoffMs`
   * from now, unless probes are already scheduled.
   */
  async awaitProbe(channelId: Types.ObjectId, backoffMs: number): Promise<void> {
    const now = Date.now();
    await this.upsert(channelId, { $setOnInsert: { 'breaker.state': 'closed' } });
    await this.op('awaitProbe', (o) =>
      this.collection.updateOne(
        { channelID: channelId, 'breaker.nextProbeAt': { $exists: false } },
        {
          $set: {
            'breaker.backoffMs': backoffMs,
            'breaker.nextProbeAt': new Date(now + backoffMs),
            'breaker.probes': 0,
          },
        },
        o,
      ),
    );
  }

  /** The channels whose next probe is due and that no live worker is probing. */
  async dueForProbe(now: Date): Promise<StoredRerunGuard[]> {
    return (await this.op('dueForProbe', (o) =>
      this.collection
        .find(
          {
            'breaker.nextProbeAt': { $lte: now },
            $or: [{ 'breaker.probe': { $exists: false } }, { 'breaker.probe.until': { $lt: now } }],
          },
          o,
        )
        .toArray(),
    )) as StoredRerunGuard[];
  }

  /** Takes the channel's probe for `owner` (one worker at a time; an expired holder's is taken over). */
  async claimProbe(channelId: Types.ObjectId, owner: string, until: Date): Promise<StoredRerunGuard | null> {
    const now = new Date();
    return (await this.op('claimProbe', (o) =>
      this.collection.findOneAndUpdate(
        {
          channelID: channelId,
          'breaker.nextProbeAt': { $lte: now },
          $or: [{ 'breaker.probe': { $exists: false } }, { 'breaker.probe.until': { $lt: now } }],
        },
        { $set: { 'breaker.probe': { owner, until } } },
        { returnDocument: 'after', ...o },
      ),
    )) as StoredRerunGuard | null;
  }

  /** Records which item the probe sends and keeps it held until `until`; false when it is no longer ours. */
  async holdProbe(
    channelId: Types.ObjectId,
    owner: string,
    until: Date,
    item?: { taskId: Types.ObjectId; seq: number; tid: string },
  ): Promise<boolean> {
    const set: Record<string, unknown> = { 'breaker.probe.until': until };
    if (item) {
      set['breaker.probe.taskId'] = item.taskId;
      set['breaker.probe.seq'] = item.seq;
      set['breaker.probe.tid'] = item.tid;
    }
    const { matchedCount } = await this.op('holdProbe', (o) =>
      this.collection.updateOne(
        { channelID: channelId, 'breaker.probe.owner': owner },
        { $set: set, ...(item ? { $inc: { 'breaker.probes': 1 } } : {}) },
        o,
      ),
    );
    return matchedCount === 1;
  }

  /** The probe failed: the next one is due after twice the back-off (at most `maxBackoffMs`). */
  async probeFailed(
    channelId: Types.ObjectId,
    owner: string,
    maxBackoffMs: number,
    error: string,
  ): Promise<StoredRerunGuard | null> {
    const guard = await this.forChannel(channelId);
    if (guard?.breaker?.probe?.owner !== owner) return null;
    const backoffMs = Math.min(maxBackoffMs, Math.max(1, (guard.breaker.backoffMs ?? 1) * 2));
    this.forget();
    return (await this.op('probeFailed', (o) =>
      this.collection.findOneAndUpdate(
        { channelID: channelId, 'breaker.probe.owner': owner },
        {
          $set: {
            'breaker.backoffMs': backoffMs,
            'breaker.nextProbeAt': new Date(Date.now() + backoffMs),
            'breaker.lastError': error,
          },
          $unset: { 'breaker.probe': '' },
        },
        { returnDocument: 'after', ...o },
      ),
    )) as StoredRerunGuard | null;
  }

  /** Gives the probe back without a verdict (nothing to probe, the worker stopping): due again now. */
  async dropProbe(channelId: Types.ObjectId, owner: string, nextProbeAt: Date): Promise<void> {
    await this.op('dropProbe', (o) =>
      this.collection.updateOne(
        { channelID: channelId, 'breaker.probe.owner': owner },
        { $set: { 'breaker.nextProbeAt': nextProbeAt }, $unset: { 'breaker.probe': '' } },
        o,
      ),
    );
  }

  /**
   * The downstream answered (a probe succeeded, or nothing waits any more): closes the breaker and
   * ends the probing. With `owner`, only while that worker holds the probe. Returns whether it applied.
   */
  async close(channelId: Types.ObjectId, owner?: string): Promise<boolean> {
    this.forget();
    const { matchedCount } = await this.op('close', (o) =>
      this.collection.updateOne(
        { channelID: channelId, ...(owner ? { 'breaker.probe.owner': owner } : {}) },
        {
          $set: { 'breaker.state': 'closed', 'breaker.failures': 0 },
          $unset: {
            'breaker.openedAt': '',
            'breaker.backoffMs': '',
            'breaker.nextProbeAt': '',
            'breaker.probe': '',
            'breaker.probes': '',
          },
        },
        o,
      ),
    );
    return matchedCount === 1;
  }

  private async upsert(channelId: Types.ObjectId, update: Record<string, unknown>): Promise<StoredRerunGuard> {
    const write = () =>
      this.op('upsert', (o) =>
        this.collection.findOneAndUpdate({ channelID: channelId }, update as UpdateFilter<Document>, {
          upsert: true,
          returnDocument: 'after',
          ...o,
        }),
      );
    this.forget();
    // Two first writes for one channel at once: one loses the insert race (unique channelID).
    const after = await write().catch((error: { code?: number }) => {
      if (error?.code === DUPLICATE_KEY) return write();
      throw error;
    });
    return after as unknown as StoredRerunGuard;
  }
}

/** What the guards API uses. */
export type GuardsForApi = Pick<RerunGuardsRepository, 'all' | 'forChannel' | 'setLimits' | 'removeLimits'>;

/** What the engine uses: the cached limits and states, and the breaker's moves. */
export type GuardsForEngine = Pick<
  RerunGuardsRepository,
  | 'recent'
  | 'forChannel'
  | 'addFailures'
  | 'resetFailures'
  | 'open'
  | 'awaitProbe'
  | 'dueForProbe'
  | 'claimProbe'
  | 'holdProbe'
  | 'probeFailed'
  | 'dropProbe'
  | 'close'
>;

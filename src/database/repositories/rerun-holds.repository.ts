import { Inject, Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { HOLD_ALL, RerunHold, StoredRerunHold } from '../schemas';
import { EMERGENCY_STOP } from '../../domain/status-changes';
import { historyEntry } from '../task-history';
import { CollectionRepository } from './collection-repository';
import type { HoldChange, TasksRepository } from './tasks.repository';
import { TransactionsRepository } from './transactions.repository';

/** A hold's scope: every channel (null), or one. */
export type HoldScope = Types.ObjectId | null;

const DUPLICATE_KEY = 11000;
/**
 * How long the holds read before a task is written may be reused: the read after the write
 * (`recheckHold`) is always fresh and puts right a task written under a stale answer.
 */
const RECENT_MS = 1000;
const scopeOf = (channelId: HoldScope) => (channelId ? channelId.toHexString() : HOLD_ALL);

/**
 * Our `rerunholds` (the emergency stop's holds: one per scope, a handful at most), for the API
 * (stop, release) and the engine (adoption). Every read settles within a lease (the engine asks).
 */
@Injectable()
export class RerunHoldsRepository extends CollectionRepository<RerunHold> {
  constructor(
    @InjectModel(RerunHold.name) model: Model<RerunHold>,
    config: AppConfig,
    @Inject(TransactionsRepository) private readonly transactions: Pick<TransactionsRepository, 'channelAmong'>,
  ) {
    super(model, config);
  }

  private recentHolds?: { at: number; holds: Promise<StoredRerunHold[]> };

  /** Every hold in force. */
  async all(): Promise<StoredRerunHold[]> {
    return (await this.op('all', (o) => this.collection.find({}, o).toArray())) as StoredRerunHold[];
  }

  /**
   * The holds in force as read at most RECENT_MS ago in this process: for the read before a task is
   * written (a burst of POSTs shares one), never for `recheckHold`.
   */
  recent(): Promise<StoredRerunHold[]> {
    const now = Date.now();
    if (!this.recentHolds || now - this.recentHolds.at > RECENT_MS) {
      const holds = this.all();
      this.recentHolds = { at: now, holds };
      holds.catch(() => (this.recentHolds = undefined));
    }
    return this.recentHolds.holds;
  }

  async forScope(channelId: HoldScope): Promise<StoredRerunHold | null> {
    return (await this.op('forScope', (o) =>
      this.collection.findOne({ scope: scopeOf(channelId) }, o),
    )) as StoredRerunHold | null;
  }

  /**
   * Puts a hold on the scope, or restates the one there (its id stays: the tasks it paused remain
   * its own). Returns it.
   */
  async hold(channelId: HoldScope, fields: { reason: string; user: string; at: Date }): Promise<StoredRerunHold> {
    const scope = scopeOf(channelId);
    const upsert = () =>
      this.collection.findOneAndUpdate(
        { scope },
        { $set: { ...fields, ...(channelId ? { channelID: channelId } : {}) } },
        { upsert: true, returnDocument: 'after' },
      );
    this.recentHolds = undefined;
    // Two stops of one scope at once: the second upsert may lose the insert race (unique scope).
    const held = await upsert().catch((error: { code?: number }) => {
      if (error?.code === DUPLICATE_KEY) return upsert();
      throw error;
    });
    return held as unknown as StoredRerunHold;
  }

  /** Lifts a hold; whether it was there. */
  async lift(holdId: Types.ObjectId): Promise<boolean> {
    this.recentHolds = undefined;
    const { deletedCount } = await this.collection.deleteOne({ _id: holdId });
    return deletedCount > 0;
  }

  /**
   * The hold that covers transactions `tids` (a task being created or adopted): the hold on every
   * channel, else one on a channel one of them goes to, else null. Reads the transactions only when
   * a channel is held.
   */
  async holdFor(tids: readonly string[], holds?: readonly StoredRerunHold[]): Promise<StoredRerunHold | null> {
    const inForce = holds ?? (await this.all());
    if (!inForce.length) return null;
    const all = inForce.find((hold) => hold.scope === HOLD_ALL);
    if (all) return all;
    const byChannel = inForce.filter((hold) => hold.channelID);
    const channel = await this.transactions.channelAmong(
      tids,
      byChannel.map((hold) => hold.channelID!),
    );
    return channel ? (byChannel.find((hold) => hold.channelID!.equals(channel)) ?? null) : null;
  }
}

/** What a hold does to a task it covers: Paused, held by it, with its user and reason in the history. */
export function pausedBy(hold: StoredRerunHold, at?: Date): HoldChange {
  return {
    status: EMERGENCY_STOP.pause.to,
    heldBy: hold._id,
    history: historyEntry(EMERGENCY_STOP.pause.done, { at, user: hold.user, reason: hold.reason }),
  };
}

/** What lifting a hold does to a task it held (and no other hold covers): Queued again. */
export function releasedFrom(hold: StoredRerunHold, user?: string): HoldChange {
  return {
    status: EMERGENCY_STOP.resume.to,
    heldBy: null,
    history: historyEntry(EMERGENCY_STOP.resume.done, { user, reason: hold.reason }),
    // A resume starts a new run: the failures in a row of the last one no longer count.
    set: { failureStreak: 0 },
  };
}

/**
 * After a task was written (created, or adopted from core) under `seen` (the hold that covered it
 * then, or null): the hold in force now. A stop writes its hold before it looks for tasks, and a
 * release looks for the tasks of a hold again after lifting it, so a task written while either ran
 * is either found by it or put right here: paused by a hold that came, moved to another hold, or
 * released when its hold went. Returns the hold now holding the task, or null (it may run).
 */
export async function recheckHold(
  holds: Pick<RerunHoldsRepository, 'holdFor'>,
  tasks: Pick<TasksRepository, 'setHoldIf'>,
  taskId: Types.ObjectId,
  tids: readonly string[],
  seen: StoredRerunHold | null,
): Promise<StoredRerunHold | null> {
  const now = await holds.holdFor(tids);
  if (seen && now?._id.equals(seen._id)) return seen;
  const condition = seen ? { from: EMERGENCY_STOP.resume.from, heldBy: seen._id } : { from: EMERGENCY_STOP.pause.from };
  if (now) return (await tasks.setHoldIf(taskId, condition, pausedBy(now))) ? now : seen;
  if (seen && (await tasks.setHoldIf(taskId, condition, releasedFrom(seen)))) return null;
  return seen;
}

/** What the tasks API uses: the holds, putting and lifting them, and whether one covers a new task. */
export type HoldsForApi = Pick<RerunHoldsRepository, 'all' | 'recent' | 'forScope' | 'hold' | 'lift' | 'holdFor'>;

/** What the engine uses: whether a hold covers a task it adopts. */
export type HoldsForEngine = Pick<RerunHoldsRepository, 'holdFor'>;

import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Document } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { CollectionRepository, repeatable } from './collection-repository';
import { CHANNELS_COLLECTION, StoredTransaction, Transaction } from '../schemas';
import { CHANNEL_ACCESS_FIELDS, ChannelAccess } from './channels.repository';
import { chunk, ID_QUERY_CHUNK, mapLimit } from './chunks';
import { toObjectId } from './object-ids';

/** What the engine reads of a transaction to rerun it. */
export type OriginalTransaction = Pick<StoredTransaction, '_id' | 'clientID' | 'channelID' | 'canRerun' | 'request'>;

/** The channels of some transactions, for the access checks (`channelsOf`). */
export interface TransactionChannels {
  channelIds: Types.ObjectId[];
  /** Those of `channelIds` that exist, with the fields the checks read. */
  channels: ChannelAccess[];
  someWithoutChannel: boolean;
}

/** A rerun's child transaction, as far as the engine needs it. */
export type ChildTransaction = Pick<StoredTransaction, '_id' | 'status'>;

const ORIGINAL_FIELDS: Record<Exclude<keyof OriginalTransaction, '_id'>, 1> = {
  clientID: 1,
  channelID: 1,
  canRerun: 1,
  request: 1,
};
/** A prefetched original nobody asked for (its lane gave up) is dropped after this. */
const PREFETCH_TTL_MS = 10000;
/** Tolerated clock difference between this worker and OpenHIM core when matching a child to a start. */
const CLOCK_SKEW_MS = 1000;
const CHUNK_CONCURRENCY = 4;
/** Larger slices for the read-only channel lookup (fewer round trips; measured fastest). */
const CHANNEL_QUERY_CHUNK = 20000;

/**
 * OpenHIM's `transactions`. OpenHIM core writes them (including the child transactions of reruns);
 * we read them and write only `autoRetry`/`autoRetryAttempt`. Everything goes to the driver: the
 * filters are built complete (ObjectIds, Dates, RegExps, validated operators), and mongoose's casting
 * against our loose schema (e.g. `childIDs` declared as strings where core stores ObjectIds) could
 * only cost CPU or change what they match. The engine's reads settle within a lease
 * (driver/bounded.ts).
 */
@Injectable()
export class TransactionsRepository extends CollectionRepository<Transaction> {
  /** Originals read ahead by the lanes, each taken once by `findOriginal`. */
  private readonly prefetched = new Map<string, { at: number; original: Promise<OriginalTransaction | null> }>();
  private prefetchSweep?: NodeJS.Timeout;

  constructor(@InjectModel(Transaction.name) model: Model<Transaction>, config: AppConfig) {
    super(model, config);
  }

  // ---- the API (POST /tasks, bulk reruns) ---------------------------------------------------------

  /**
   * Distinct channels of the existing transactions among `ids`, with what the access checks read of
   * those that exist, and whether some transactions have no channel. Grouped and joined by the
   * server: one command per `_id: {$in}` slice (answered from the `_id` index).
   */
  async channelsOf(ids: readonly Types.ObjectId[]): Promise<TransactionChannels> {
    const seen = new Map<string, Types.ObjectId>();
    const channels = new Map<string, ChannelAccess>();
    let someWithoutChannel = false;
    await mapLimit(chunk(ids, CHANNEL_QUERY_CHUNK), CHUNK_CONCURRENCY, async (slice) => {
      const groups = await this.collection
        .aggregate<{ _id: unknown; channel: ChannelAccess[] }>([
          { $match: { _id: { $in: slice } } },
          { $group: { _id: '$channelID' } },
          { $lookup: { from: CHANNELS_COLLECTION, localField: '_id', foreignField: '_id', as: 'channel' } },
          { $project: Object.fromEntries(CHANNEL_ACCESS_FIELDS.map((field) => [`channel.${field}`, 1])) },
        ])
        .toArray();
      for (const { _id: channelId, channel } of groups) {
        if (!(channelId instanceof Types.ObjectId)) {
          someWithoutChannel = true;
          continue;
        }
        seen.set(channelId.toHexString(), channelId);
        if (channel[0]) channels.set(channelId.toHexString(), channel[0]);
      }
    });
    return { channelIds: [...seen.values()], channels: [...channels.values()], someWithoutChannel };
  }

  /** A task takes its transactions out of OpenHIM's automatic retries (fixed values: safe to repeat). */
  async disableAutoRetry(ids: readonly Types.ObjectId[]): Promise<void> {
    await mapLimit(chunk(ids, ID_QUERY_CHUNK), CHUNK_CONCURRENCY, (slice) =>
      repeatable(() =>
        this.collection.updateMany({ _id: { $in: slice } }, { $set: { autoRetry: false, autoRetryAttempt: 0 } }),
      ),
    );
  }

  /**
   * One of `channelIds` that a transaction among `tids` goes to, or null (the emergency stop: does a
   * hold on those channels cover these transactions?). Slices of ID_QUERY_CHUNK ids, one after
   * another, stopping at the first found; each settles within a lease (the engine asks too).
   */
  async channelAmong(tids: readonly string[], channelIds: readonly Types.ObjectId[]): Promise<Types.ObjectId | null> {
    if (!channelIds.length) return null;
    const ids = tids.map(toObjectId).filter((id): id is Types.ObjectId => id !== null);
    for (const slice of chunk(ids, ID_QUERY_CHUNK)) {
      const found = await this.op('channelAmong', (o) =>
        this.collection.findOne(
          { _id: { $in: slice }, channelID: { $in: [...channelIds] } },
          { projection: { _id: 0, channelID: 1 }, ...o },
        ),
      );
      const channel = toObjectId(found?.channelID);
      if (channel) return channel;
    }
    return null;
  }

  // The bulk rerun reads below go to the driver: their queries are built complete (ObjectIds, Dates,
  // RegExps, validated operators), and mongoose's casting against our loose schema (e.g. `childIDs`
  // declared as strings where core stores ObjectIds) could only change what they match.

  async count(query: Record<string, unknown>): Promise<number> {
    return this.collection.countDocuments(query);
  }

  async distinctChannels(
    query: Record<string, unknown>,
  ): Promise<{ channelIds: Types.ObjectId[]; someWithoutChannel: boolean }> {
    const collection = this.collection;
    const [values, withoutChannel] = await Promise.all([
      collection.distinct('channelID', query),
      collection.findOne({ $and: [query, { channelID: null }] }, { projection: { _id: 1 } }),
    ]);
    const channelIds = (values as unknown[]).filter(
      (value): value is Types.ObjectId => value instanceof Types.ObjectId,
    );
    return { channelIds, someWithoutChannel: withoutChannel !== null };
  }

  /**
   * Ids matching `query`, oldest request first (ties by id: stable), in slices of `size`. An
   * aggregation with `allowDiskUse`: no index of core's provides this sort, and a `find` holding it in
   * memory fails past 32 MB on MongoDB 4.2 (100 MB later), where `find` cannot spill to disk; the
   * pipeline's `$sort` can on every version, and sorts only the two fields it needs.
   */
  async *idsOldestFirst(query: Record<string, unknown>, size: number, max: number): AsyncGenerator<Types.ObjectId[]> {
    const cursor = this.collection.aggregate<{ _id: Types.ObjectId }>(
      [
        { $match: query },
        { $sort: { 'request.timestamp': 1, _id: 1 } },
        ...(max > 0 ? [{ $limit: max }] : []),
        { $project: { _id: 1 } },
      ],
      { allowDiskUse: true, batchSize: Math.min(size, 10000) },
    );
    let slice: Types.ObjectId[] = [];
    try {
      for await (const doc of cursor) {
        slice.push(doc._id);
        if (slice.length === size) {
          yield slice;
          slice = [];
        }
      }
      if (slice.length) yield slice;
    } finally {
      await cursor.close().catch(() => undefined);
    }
  }

  // ---- the engine ---------------------------------------------------------------------------------

  /** Several originals in one query (lanes read a window of items ahead). */
  async readOriginals(tids: string[]): Promise<Map<string, OriginalTransaction>> {
    const ids = tids.map(toObjectId).filter((id): id is Types.ObjectId => id !== null);
    if (!ids.length) return new Map();
    const docs = await this.op('readOriginals', (o) =>
      this.collection.find({ _id: { $in: ids } }, { projection: ORIGINAL_FIELDS, ...o }).toArray(),
    );
    return new Map(docs.map((doc) => [String(doc._id), doc as OriginalTransaction]));
  }

  /** The next `findOriginal(tid)` answers with this instead of asking MongoDB (a failed read: it asks). */
  primeOriginal(tid: string, original: Promise<OriginalTransaction | null>): void {
    const id = toObjectId(tid);
    if (!id) return;
    original.catch(() => undefined); // awaited by findOriginal, or never
    this.prefetched.set(id.toHexString(), { at: Date.now(), original });
    this.prefetchSweep ??= setInterval(() => this.dropStalePrefetches(), PREFETCH_TTL_MS).unref();
  }

  /** The transaction to rerun; null when `tid` is not an id or there is no such transaction. */
  async findOriginal(tid: string): Promise<OriginalTransaction | null> {
    const id = toObjectId(tid);
    if (!id) return null;
    const key = id.toHexString();
    const prefetched = this.prefetched.get(key);
    if (prefetched) {
      this.prefetched.delete(key);
      try {
        return await prefetched.original;
      } catch {
        // read on its own below
      }
    }
    return (await this.op('findOriginal', (o) =>
      this.collection.findOne({ _id: id }, { projection: ORIGINAL_FIELDS, ...o }),
    )) as OriginalTransaction | null;
  }

  private dropStalePrefetches(): void {
    const before = Date.now() - PREFETCH_TTL_MS;
    for (const [key, entry] of this.prefetched) if (entry.at < before) this.prefetched.delete(key);
    if (!this.prefetched.size) {
      clearInterval(this.prefetchSweep);
      this.prefetchSweep = undefined;
    }
  }

  async childStatuses(ids: string[]): Promise<Map<string, string | undefined>> {
    const oids = ids.map(toObjectId).filter((id): id is Types.ObjectId => id !== null);
    const found = await this.op('childStatuses', (o) =>
      this.collection.find({ _id: { $in: oids } }, { projection: { status: 1 }, ...o }).toArray(),
    );
    return new Map(found.map((doc) => [String(doc._id), doc.status as string | undefined]));
  }

  /**
   * The rerun OpenHIM core stored for `tid` since `since` (core stores the child with `parentID`
   * when the request arrives, before routing it; `parentID` is indexed in core's schema). With
   * `taskId`: a child that carries a `taskID` (core 8.5 may keep the header; 4.0.5's schema drops
   * it) must carry that one, so another task's rerun of the same transaction is never taken for ours.
   */
  async findChildSince(tid: string, since: Date, taskId?: string): Promise<ChildTransaction | null> {
    const id = toObjectId(tid);
    if (!id) return null;
    const filter: Document = {
      parentID: { $in: [id, tid] },
      'request.timestamp': { $gte: new Date(since.getTime() - CLOCK_SKEW_MS) },
    };
    if (taskId !== undefined) {
      const task = toObjectId(taskId);
      // null also matches a child without the field.
      filter.taskID = { $in: task ? [task, task.toHexString(), null] : [taskId, null] };
    }
    const children = await this.op('findChildSince', (o) =>
      this.collection
        .find(filter, {
          projection: { status: 1, 'request.timestamp': 1 },
          sort: { 'request.timestamp': 1 },
          limit: 1,
          ...o,
        })
        .toArray(),
    );
    return (children[0] as ChildTransaction | undefined) ?? null;
  }
}

/** What the tasks API uses: POST /tasks's checks, the bulk rerun's selection, the auto-retry side effect. */
export type TransactionsForApi = Pick<
  TransactionsRepository,
  'channelsOf' | 'disableAutoRetry' | 'count' | 'distinctChannels' | 'idsOldestFirst' | 'channelAmong' | 'readOriginals'
>;

/** What the engine uses: the transactions to rerun and their child transactions (read only). */
export type TransactionsForEngine = Pick<
  TransactionsRepository,
  'readOriginals' | 'primeOriginal' | 'findOriginal' | 'childStatuses' | 'findChildSince' | 'channelAmong'
>;

import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { Transaction } from '../../database/schemas';
import { chunk, ID_QUERY_CHUNK, mapLimit } from './chunks';
import { driverCollection } from './tasks.repository';

const CHUNK_CONCURRENCY = 4;
/** Larger slices for the read-only channel lookup (fewer round trips; measured fastest). */
const CHANNEL_QUERY_CHUNK = 20000;

/**
 * OpenHIM's `transactions` (read; we write only autoRetry/autoRetryAttempt). The calls on every
 * POST /tasks go to the driver directly: their filters are ObjectIds already, so mongoose's
 * casting would only cost CPU.
 */
@Injectable()
export class TransactionsRepository {
  constructor(@InjectModel(Transaction.name) private readonly transactions: Model<Transaction>) {}

  /**
   * Distinct channels of the existing transactions among `ids`, and whether some have no channel
   * (grouped by the server; each `_id: {$in}` slice is answered from the `_id` index).
   */
  async channelsOf(
    ids: readonly Types.ObjectId[],
  ): Promise<{ channelIds: Types.ObjectId[]; someWithoutChannel: boolean }> {
    const seen = new Map<string, Types.ObjectId>();
    let someWithoutChannel = false;
    await mapLimit(chunk(ids, CHANNEL_QUERY_CHUNK), CHUNK_CONCURRENCY, async (slice) => {
      const groups = await this.transactions.collection
        .aggregate<{ _id: unknown }>([{ $match: { _id: { $in: slice } } }, { $group: { _id: '$channelID' } }])
        .toArray();
      for (const { _id: channelId } of groups) {
        if (channelId instanceof Types.ObjectId) seen.set(channelId.toHexString(), channelId);
        else someWithoutChannel = true;
      }
    });
    return { channelIds: [...seen.values()], someWithoutChannel };
  }

  /** A task takes its transactions out of OpenHIM's automatic retries. */
  async disableAutoRetry(ids: readonly Types.ObjectId[]): Promise<void> {
    await mapLimit(chunk(ids, ID_QUERY_CHUNK), CHUNK_CONCURRENCY, (slice) =>
      this.transactions.collection.updateMany(
        { _id: { $in: slice } },
        { $set: { autoRetry: false, autoRetryAttempt: 0 } },
      ),
    );
  }

  // The bulk rerun reads below go to the driver: their queries are built complete (ObjectIds, Dates,
  // RegExps, validated operators), and mongoose's casting against our loose schema (e.g. `childIDs`
  // declared as strings where core stores ObjectIds) could only change what they match.

  async count(query: Record<string, unknown>): Promise<number> {
    return this.transactions.collection.countDocuments(query);
  }

  async distinctChannels(
    query: Record<string, unknown>,
  ): Promise<{ channelIds: Types.ObjectId[]; someWithoutChannel: boolean }> {
    const collection = this.transactions.collection;
    const [values, withoutChannel] = await Promise.all([
      collection.distinct('channelID', query),
      collection.findOne({ $and: [query, { channelID: null }] }, { projection: { _id: 1 } }),
    ]);
    const channelIds = (values as unknown[]).filter(
      (value): value is Types.ObjectId => value instanceof Types.ObjectId,
    );
    return { channelIds, someWithoutChannel: withoutChannel !== null };
  }

  /** Ids matching `query`, oldest request first (ties by id: stable), in slices of `size`. */
  async *idsOldestFirst(query: Record<string, unknown>, size: number, max: number): AsyncGenerator<Types.ObjectId[]> {
    const cursor = driverCollection(this.transactions).find<{ _id: Types.ObjectId }>(query, {
      projection: { _id: 1 },
      sort: { 'request.timestamp': 1, _id: 1 },
      limit: max,
      batchSize: Math.min(size, 10000),
    });
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
}

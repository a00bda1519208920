import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Collection, Document } from 'mongodb';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { Channel, StoredRequest, Transaction } from '../../database/schemas';
import { bounded, Bounded, operationBoundMs } from './bounded';
import { nativeCollection } from './native-collection';

export interface OriginalTransaction {
  _id: Types.ObjectId;
  clientID?: unknown;
  channelID?: unknown;
  canRerun?: boolean;
  request?: StoredRequest;
}

export interface ChildTransaction {
  _id: Types.ObjectId;
  status?: string;
}

export interface RerunChannel {
  type?: string;
  tcpHost?: string;
  tcpPort?: number;
}

/** How long a channel's type and address are cached (they rarely change; a read per item would not). */
const CHANNEL_CACHE_MS = 10000;
const ORIGINAL_FIELDS = { clientID: 1, channelID: 1, canRerun: 1, request: 1 } as const;
/** A prefetched original nobody asked for (its lane gave up) is dropped after this. */
const PREFETCH_TTL_MS = 10000;
/** Tolerated clock difference between this worker and OpenHIM core when matching a child to a start. */
const CLOCK_SKEW_MS = 1000;

/**
 * The engine's reads of OpenHIM's `transactions` and `channels` (it writes neither). Every read
 * settles within a lease (bounded.ts).
 */
@Injectable()
export class RerunTransactionsRepository {
  private readonly transactions: Collection;
  private readonly channels: Collection;
  private readonly channelCache = new Map<string, { at: number; channel: Promise<RerunChannel | null> }>();
  private readonly boundMs: number;

  constructor(
    @InjectModel(Transaction.name) transactions: Model<Transaction>,
    @InjectModel(Channel.name) channels: Model<Channel>,
    config: AppConfig,
  ) {
    this.transactions = nativeCollection(transactions);
    this.channels = nativeCollection(channels);
    this.boundMs = operationBoundMs(config.WORKER_LEASE_MS);
  }

  private op<T>(what: string, operation: (options: Bounded) => Promise<T>): Promise<T> {
    return bounded(this.boundMs, what, operation);
  }

  /** Originals read ahead by the lanes, each taken once by `findOriginal`. */
  private readonly prefetched = new Map<string, { at: number; original: Promise<OriginalTransaction | null> }>();
  private prefetchSweep?: NodeJS.Timeout;

  /** Several originals in one query (lanes read a window of items ahead). */
  async readOriginals(tids: string[]): Promise<Map<string, OriginalTransaction>> {
    const ids = tids.map(toObjectId).filter((id): id is Types.ObjectId => id !== null);
    if (!ids.length) return new Map();
    const docs = await this.op('transactions.readOriginals', (o) =>
      this.transactions.find({ _id: { $in: ids } }, { projection: ORIGINAL_FIELDS, ...o }).toArray(),
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
    return (await this.op('transactions.findOriginal', (o) =>
      this.transactions.findOne({ _id: id }, { projection: ORIGINAL_FIELDS, ...o }),
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
    const found = await this.op('transactions.childStatuses', (o) =>
      this.transactions.find({ _id: { $in: oids } }, { projection: { status: 1 }, ...o }).toArray(),
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
    const children = await this.op('transactions.findChildSince', (o) =>
      this.transactions
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

  /** The channel's type and TCP address, cached briefly. */
  channel(channelId: unknown): Promise<RerunChannel | null> {
    const id = toObjectId(channelId);
    if (!id) return Promise.resolve(null);
    const key = id.toHexString();
    const cached = this.channelCache.get(key);
    if (cached && Date.now() - cached.at < CHANNEL_CACHE_MS) return cached.channel;
    const channel = this.op('channels.findOne', (o) =>
      this.channels.findOne({ _id: id }, { projection: { type: 1, tcpHost: 1, tcpPort: 1 }, ...o }),
    ).then((doc: Document | null) => doc as RerunChannel | null);
    this.channelCache.set(key, { at: Date.now(), channel });
    channel.catch(() => this.channelCache.delete(key));
    return channel;
  }
}

function toObjectId(value: unknown): Types.ObjectId | null {
  if (value instanceof Types.ObjectId) return value;
  if (value && typeof value === 'object' && (value as { _bsontype?: string })._bsontype === 'ObjectId') {
    return new Types.ObjectId(String(value));
  }
  return typeof value === 'string' && /^[0-9a-fA-F]{24}$/.test(value) ? new Types.ObjectId(value) : null;
}

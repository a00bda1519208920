import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { CollectionRepository } from './collection-repository';
import { Channel, StoredChannel } from '../schemas';
import { toObjectId } from './object-ids';

/** What the API checks of a channel before rerunning its transactions. */
export type ChannelAccess = Pick<StoredChannel, '_id'> &
  Partial<Pick<StoredChannel, (typeof CHANNEL_ACCESS_FIELDS)[number]>>;

/** Where the engine sends a channel's reruns (TCP channels go to their own port). */
export type RerunChannel = Partial<Pick<StoredChannel, 'type' | 'tcpHost' | 'tcpPort'>>;

/** What the API's access checks read of a channel. */
export const CHANNEL_ACCESS_FIELDS = ['_id', 'name', 'status', 'txRerunAcl'] as const;
const ACCESS_FIELDS = Object.fromEntries(CHANNEL_ACCESS_FIELDS.map((field) => [field, 1]));
/** How long a channel's type and address are cached (they rarely change; a read per item would not). */
const CHANNEL_CACHE_MS = 10000;

/** OpenHIM's `channels` (read only), for the API's access checks and the engine's rerun address. */
@Injectable()
export class ChannelsRepository extends CollectionRepository<Channel> {
  private readonly rerunChannels = new Map<string, { at: number; channel: Promise<RerunChannel | null> }>();

  constructor(@InjectModel(Channel.name) model: Model<Channel>, config: AppConfig) {
    super(model, config);
  }

  async findByIds(ids: readonly Types.ObjectId[]): Promise<ChannelAccess[]> {
    if (!ids.length) return [];
    return this.model
      .find({ _id: { $in: [...ids] } }, ACCESS_FIELDS)
      .lean<ChannelAccess[]>()
      .exec();
  }

  /** Every channel's id and name (GET /rerun-guards and the guards' gauges, when default limits apply to all). */
  async idsAndNames(): Promise<Array<{ _id: Types.ObjectId; name?: string }>> {
    return this.model.find({}, { _id: 1, name: 1 }).lean<Array<{ _id: Types.ObjectId; name?: string }>>().exec();
  }

  /** Channels whose `txRerunAcl` shares a group with `groups`. */
  async findRerunnableBy(groups: readonly string[]): Promise<ChannelAccess[]> {
    if (!groups.length) return [];
    return this.model
      .find({ txRerunAcl: { $in: [...groups] } }, ACCESS_FIELDS)
      .lean<ChannelAccess[]>()
      .exec();
  }

  /** The engine: the channel's type and TCP address, cached briefly; settles within a lease. */
  rerunChannel(channelId: unknown): Promise<RerunChannel | null> {
    const id = toObjectId(channelId);
    if (!id) return Promise.resolve(null);
    const key = id.toHexString();
    const cached = this.rerunChannels.get(key);
    if (cached && Date.now() - cached.at < CHANNEL_CACHE_MS) return cached.channel;
    const channel = this.op('findOne', (o) =>
      this.collection.findOne<RerunChannel>({ _id: id }, { projection: { type: 1, tcpHost: 1, tcpPort: 1 }, ...o }),
    );
    this.rerunChannels.set(key, { at: Date.now(), channel });
    channel.catch(() => this.rerunChannels.delete(key));
    return channel;
  }
}

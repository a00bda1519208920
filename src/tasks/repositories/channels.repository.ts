import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { Channel } from '../../database/schemas';

export interface ChannelAccess {
  _id: Types.ObjectId;
  name?: string;
  status?: string;
  txRerunAcl?: string[];
}

/** OpenHIM's `channels` (read only). */
@Injectable()
export class ChannelsRepository {
  constructor(@InjectModel(Channel.name) private readonly channels: Model<Channel>) {}

  async findByIds(ids: readonly Types.ObjectId[]): Promise<ChannelAccess[]> {
    if (!ids.length) return [];
    return this.channels
      .find({ _id: { $in: [...ids] } }, { name: 1, status: 1, txRerunAcl: 1 })
      .lean<ChannelAccess[]>()
      .exec();
  }

  /** Channels whose `txRerunAcl` shares a group with `groups`. */
  async findRerunnableBy(groups: readonly string[]): Promise<ChannelAccess[]> {
    if (!groups.length) return [];
    return this.channels
      .find({ txRerunAcl: { $in: [...groups] } }, { name: 1, status: 1, txRerunAcl: 1 })
      .lean<ChannelAccess[]>()
      .exec();
  }
}

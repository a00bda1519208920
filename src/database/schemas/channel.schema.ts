import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

export const CHANNEL_STATUSES = ['enabled', 'disabled', 'deleted'] as const;
export const CHANNEL_TYPES = ['http', 'polling', 'tcp', 'tls'] as const;
export const CHANNELS_COLLECTION = 'channels';

/** OpenHIM's `channels` collection (read only). */
@Schema({ collection: CHANNELS_COLLECTION, strict: false, versionKey: '__v' })
export class Channel {
  @Prop() name: string;
  @Prop() urlPattern?: string;
  /** Absent means enabled. */
  @Prop() status?: string;
  /** Absent means http. */
  @Prop() type?: string;
  @Prop() tcpHost?: string;
  @Prop() tcpPort?: number;
  @Prop({ type: [String] }) txRerunAcl?: string[];
}
/** A channel as stored. */
export type StoredChannel = Channel & { _id: Types.ObjectId };
export type ChannelDocument = HydratedDocument<Channel>;
export const ChannelSchema = SchemaFactory.createForClass(Channel);

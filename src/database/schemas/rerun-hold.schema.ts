import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

export const RERUN_HOLDS_COLLECTION = 'rerunholds';
/** The scope of a hold on every channel. */
export const HOLD_ALL = 'all';

/**
 * An emergency stop in force (ours, collection `rerunholds`): one document per scope, every channel
 * (`scope: 'all'`) or one channel (`scope` = its hex id, `channelID`). While it exists, tasks the API
 * creates and tasks the engine adopts from OpenHIM core that it covers start Paused.
 */
@Schema({ collection: RERUN_HOLDS_COLLECTION, versionKey: false })
export class RerunHold {
  @Prop({ required: true, unique: true }) scope: string;
  @Prop({ type: Types.ObjectId }) channelID?: Types.ObjectId;
  @Prop({ required: true }) reason: string;
  /** Who stopped (the API user's email). */
  @Prop({ required: true }) user: string;
  /** When the stop was (last) requested. */
  @Prop({ required: true }) at: Date;
}
/** A hold as stored. */
export type StoredRerunHold = RerunHold & { _id: Types.ObjectId };
export type RerunHoldDocument = HydratedDocument<RerunHold>;
export const RerunHoldSchema = SchemaFactory.createForClass(RerunHold);

import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

/** OpenHIM's `autoretries` queue: a task's transactions are removed from it at creation. */
@Schema({ collection: 'autoretries', strict: false, versionKey: '__v' })
export class AutoRetry {
  @Prop({ type: Types.ObjectId }) transactionID: Types.ObjectId;
  @Prop({ type: Types.ObjectId }) channelID?: Types.ObjectId;
  @Prop() requestTimestamp?: Date;
}
export type AutoRetryDocument = HydratedDocument<AutoRetry>;
export const AutoRetrySchema = SchemaFactory.createForClass(AutoRetry);

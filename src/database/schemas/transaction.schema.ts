import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Schema as MongooseSchema, Types } from 'mongoose';

export interface StoredRequest {
  host?: string;
  port?: string;
  path?: string;
  headers?: Record<string, unknown>;
  querystring?: string;
  body?: string;
  method?: string;
  timestamp?: Date;
}

export interface StoredResponse {
  status?: number;
  headers?: Record<string, unknown>;
  body?: string;
  timestamp?: Date;
}

/**
 * OpenHIM's `transactions` collection. We read it and write only `autoRetry`/`autoRetryAttempt`;
 * OpenHIM core writes the rest (including the child transactions of reruns).
 */
@Schema({ collection: 'transactions', strict: false, versionKey: '__v' })
export class Transaction {
  @Prop({ type: Types.ObjectId }) clientID?: Types.ObjectId;
  @Prop({ type: Types.ObjectId }) channelID?: Types.ObjectId;
  @Prop({ default: true }) canRerun?: boolean;
  @Prop({ type: MongooseSchema.Types.Mixed }) request?: StoredRequest;
  @Prop({ type: MongooseSchema.Types.Mixed }) response?: StoredResponse;
  @Prop() status?: string;
  /** Set on a rerun's child transaction: the id of the original. */
  @Prop() parentID?: string;
  @Prop({ type: [String] }) childIDs?: string[];
  @Prop() autoRetry?: boolean;
  @Prop() autoRetryAttempt?: number;
}
/** A transaction as stored. */
export type StoredTransaction = Transaction & { _id: Types.ObjectId };
export type TransactionDocument = HydratedDocument<Transaction>;
export const TransactionSchema = SchemaFactory.createForClass(Transaction);

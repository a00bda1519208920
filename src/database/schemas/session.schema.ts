import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument } from 'mongoose';

/** What OpenHIM core's koa-session store keeps in `data` (passport's user is the email). */
export interface SessionData {
  passport?: { user?: unknown };
  /** Epoch ms after which the session is dead (it never slides). */
  _expire?: unknown;
  _maxAge?: unknown;
  [key: string]: unknown;
}

/** OpenHIM core 8's `sessions` collection (its MongooseStore), shared with core. */
@Schema({ collection: 'sessions', strict: false, versionKey: false })
export class Session {
  @Prop({ type: String }) _id: string;
  @Prop({ type: Object }) data: SessionData;
  @Prop() updatedAt: Date;
}
export type SessionDocument = HydratedDocument<Session>;
export const SessionSchema = SchemaFactory.createForClass(Session);

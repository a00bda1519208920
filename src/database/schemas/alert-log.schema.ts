import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

export const ALERT_LOG_COLLECTION = 'rerunalerts';
/**
 * How long an entry is kept: longer than the longest `maxAlerts` window (a day), with room for
 * clocks that differ between workers. The TTL monitor deletes entries past it.
 */
export const ALERT_LOG_TTL_SECONDS = 2 * 24 * 3600;
/** An entry is `sending` from its claim until the SMTP server accepted the message. */
export const ALERT_STATES = ['sending', 'sent'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/**
 * The e-mails sent to the members of OpenHIM contact groups (ours, collection `rerunalerts`; core
 * keeps its own channel alerts in `alerts`): one entry per (address, time sent), what `maxAlerts`
 * is checked against. Entries of one address are numbered (`seq`, unique per address): an entry is
 * claimed by inserting the number after the last one, so of two workers that read the same last
 * entry only one can add the next (the other gets a duplicate key and reads again).
 */
@Schema({ collection: ALERT_LOG_COLLECTION, versionKey: false })
export class AlertLog {
  /** The address, lower case. */
  @Prop({ required: true }) user: string;
  /** 1, 2, ... per address (numbers restart once every entry of the address expired). */
  @Prop({ required: true }) seq: number;
  /** When the send was claimed. */
  @Prop({ required: true }) at: Date;
  @Prop({ type: String, required: true, enum: ALERT_STATES }) state: AlertState;
  /** When the SMTP server accepted the message. */
  @Prop() sentAt?: Date;
  /** The notification event (its id and type). */
  @Prop({ required: true }) eventId: string;
  @Prop({ required: true }) type: string;
  /** The member's limit when it was sent (`no max`, `1 per hour`, `1 per day`). */
  @Prop({ required: true }) maxAlerts: string;
}
/** An entry as stored. */
export type StoredAlertLog = AlertLog & { _id: Types.ObjectId };
export type AlertLogDocument = HydratedDocument<AlertLog>;
export const AlertLogSchema = SchemaFactory.createForClass(AlertLog);
AlertLogSchema.index({ user: 1, seq: -1 }, { unique: true });
AlertLogSchema.index({ eventId: 1, user: 1 });
AlertLogSchema.index({ at: 1 }, { expireAfterSeconds: ALERT_LOG_TTL_SECONDS });

import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument } from 'mongoose';

export const NOTIFICATIONS_COLLECTION = 'notifications';

/** Where one delivery of an event stands: `pending` until delivered, or given up after NOTIFY_RETRY_MS. */
export const DELIVERY_STATES = ['pending', 'delivered', 'given-up'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** What every delivery records, whatever its kind. */
interface DeliveryProgress {
  state: DeliveryState;
  /** Attempts started (a worker killed mid-attempt counts it). */
  attempts: number;
  /** Why the last attempt failed. */
  lastError?: string;
  lastAttemptAt?: Date;
  deliveredAt?: Date;
  givenUpAt?: Date;
  /** When the next attempt is due (after a failed one). */
  nextAttemptAt?: Date;
  /** An attempt is under way until then (the claim of one worker; a dead worker's claim expires). */
  inFlightUntil?: Date;
}

/** A POST of the event to one of WEBHOOK_URLS. */
export interface StoredWebhookDelivery extends DeliveryProgress {
  kind: 'webhook';
  url: string;
}

/** Who did not get an e-mail of an event, and why. */
export interface StoredSkippedRecipient {
  user: string;
  reason: string;
}

/** The e-mails of the event to the members of OpenHIM contact groups. */
export interface StoredEmailDelivery extends DeliveryProgress {
  kind: 'email';
  groups: string[];
  /** Addresses the SMTP server accepted (never mailed again on a retry). */
  sent: string[];
  skipped: StoredSkippedRecipient[];
}

export type StoredDelivery = StoredWebhookDelivery | StoredEmailDelivery;
export type DeliveryKind = StoredDelivery['kind'];

/**
 * One event the service told people about (ours, collection `notifications`): the event as sent
 * (`body`, the exact bytes of every webhook attempt; `event`, the same parsed), the task it is about,
 * and one entry per delivery with its state. Written once by `Notifier.emit`, then only the
 * deliveries change (conditional updates by the notifications worker).
 */
@Schema({ collection: NOTIFICATIONS_COLLECTION, versionKey: false })
export class Notification {
  /** The event's id (a UUID). */
  @Prop({ type: String, required: true }) _id: string;
  /** The webhook body, parsed (`{id, type, at, task?, channel?, ...}`). */
  @Prop({ type: Object, required: true }) event: Record<string, unknown>;
  /** The webhook body, serialised once: what every attempt sends and signs. */
  @Prop({ required: true }) body: string;
  /** The task the event is about (hex id). */
  @Prop() taskId?: string;
  @Prop({ type: [Object], required: true }) deliveries: StoredDelivery[];
  @Prop({ required: true }) createdAt: Date;
}
export type StoredNotification = Notification;
export type NotificationDocument = HydratedDocument<Notification>;
export const NotificationSchema = SchemaFactory.createForClass(Notification);
// GET /notifications?taskId= (newest first), and the sweeper's look for pending deliveries.
NotificationSchema.index({ taskId: 1, createdAt: -1, _id: -1 });
NotificationSchema.index({ 'deliveries.state': 1 });

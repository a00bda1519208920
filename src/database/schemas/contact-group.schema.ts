import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

export const CONTACT_GROUPS_COLLECTION = 'contactgroups';
/** How a member is contacted (core's `method`). */
export const CONTACT_METHODS = ['email', 'sms'] as const;
export type ContactMethod = (typeof CONTACT_METHODS)[number];
/** How often a member may be alerted (core's `maxAlerts`; absent means `no max`). */
export const MAX_ALERTS = ['no max', '1 per hour', '1 per day'] as const;
export type MaxAlerts = (typeof MAX_ALERTS)[number];

/** A member of a contact group as core stores it: an e-mail address or a phone number (`user`). */
export interface ContactGroupUser {
  user: string;
  method: ContactMethod | string;
  maxAlerts?: MaxAlerts | string;
}

/**
 * OpenHIM's `contactgroups` collection (read only): core's `ContactGroup` model, `{group (unique),
 * users: [{user, method: 'email' | 'sms', maxAlerts: 'no max' | '1 per hour' | '1 per day'}]}`,
 * edited in the console under "Contact lists". Core indexes `group`; we create nothing on it.
 */
@Schema({ collection: CONTACT_GROUPS_COLLECTION, strict: false, versionKey: '__v', autoIndex: false })
export class ContactGroup {
  @Prop() group: string;
  @Prop({ type: [Object] }) users?: ContactGroupUser[];
}
/** A contact group as stored. */
export type StoredContactGroup = ContactGroup & { _id: Types.ObjectId };
export type ContactGroupDocument = HydratedDocument<ContactGroup>;
export const ContactGroupSchema = SchemaFactory.createForClass(ContactGroup);

import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument } from 'mongoose';

/** OpenHIM's `users` collection (read only here, except the default root bootstrap). */
@Schema({ collection: 'users', strict: false, versionKey: '__v' })
export class User {
  @Prop({ required: true }) email: string;
  @Prop() firstname?: string;
  @Prop() surname?: string;
  @Prop({ type: [String], default: [] }) groups: string[];
  @Prop() passwordAlgorithm?: string;
  @Prop() passwordHash?: string;
  @Prop() passwordSalt?: string;
}
export type UserDocument = HydratedDocument<User>;
export const UserSchema = SchemaFactory.createForClass(User);

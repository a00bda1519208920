import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Types } from 'mongoose';

/** OpenHIM ≥ 7.2 keeps credentials in `passports`; the `token` passport carries the sha512 fields. */
@Schema({ collection: 'passports', strict: false, versionKey: '__v' })
export class Passport {
  @Prop({ required: true }) protocol: string;
  @Prop({ required: true }) email: string;
  @Prop({ type: Types.ObjectId }) user?: Types.ObjectId;
  @Prop() passwordAlgorithm?: string;
  @Prop() passwordHash?: string;
  @Prop() passwordSalt?: string;
}
export type PassportDocument = HydratedDocument<Passport>;
export const PassportSchema = SchemaFactory.createForClass(Passport);

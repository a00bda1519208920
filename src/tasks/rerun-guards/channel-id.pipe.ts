import { Injectable, PipeTransform } from '@nestjs/common';
import { Types } from 'mongoose';
import { badRequest } from '../errors';
import { HEX_ID } from '../validation/checks';

export const badChannelId = (value: string) =>
  `Invalid channel id ${JSON.stringify(value)}: expected a 24-character hex id`;

/** A channel id in the path: 24 hex characters, else 400 (as TaskIdPipe for task ids). */
@Injectable()
export class ChannelIdPipe implements PipeTransform<string, Types.ObjectId> {
  transform(value: string): Types.ObjectId {
    if (!HEX_ID.test(value)) throw badRequest(badChannelId(value));
    return new Types.ObjectId(value);
  }
}

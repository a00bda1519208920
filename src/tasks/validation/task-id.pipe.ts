import { Injectable, PipeTransform } from '@nestjs/common';
import { Types } from 'mongoose';
import { badRequest } from '../errors';
import { HEX_ID } from './checks';

/** A task id in the path: 24 hex characters, else 400 (OpenHIM answered 500). */
@Injectable()
export class TaskIdPipe implements PipeTransform<string, Types.ObjectId> {
  transform(value: string): Types.ObjectId {
    if (!HEX_ID.test(value)) {
      throw badRequest(`Invalid task id ${JSON.stringify(value)}: expected a 24-character hex id`);
    }
    return new Types.ObjectId(value);
  }
}

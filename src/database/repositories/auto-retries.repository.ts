import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model, Types } from 'mongoose';
import { AutoRetry } from '../schemas';
import { chunk, ID_QUERY_CHUNK, mapLimit } from './chunks';
import { repeatable } from './collection-repository';

/** OpenHIM's `autoretries` queue: a task's transactions leave it. */
@Injectable()
export class AutoRetriesRepository {
  constructor(@InjectModel(AutoRetry.name) private readonly autoRetries: Model<AutoRetry>) {}

  async removeTransactions(ids: readonly Types.ObjectId[]): Promise<void> {
    await mapLimit(chunk(ids, ID_QUERY_CHUNK), 4, (slice) =>
      // Straight to the driver: the ids are ObjectIds already, mongoose's casting would only cost CPU.
      repeatable(() => this.autoRetries.collection.deleteMany({ transactionID: { $in: slice } })),
    );
  }
}

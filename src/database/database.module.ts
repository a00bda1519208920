import { DynamicModule, Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AppConfig } from '../config/app-config';
import {
  AutoRetry,
  AutoRetrySchema,
  Channel,
  ChannelSchema,
  Passport,
  PassportSchema,
  Session,
  SessionSchema,
  Task,
  TaskItem,
  TaskItemSchema,
  TaskSchema,
  Transaction,
  TransactionSchema,
  User,
  UserSchema,
} from './schemas';
import { OpenhimIndexes } from './openhim-indexes';

/**
 * The connection and every model. Our `taskitems` and `tasks` are indexed by their schemas; on
 * OpenHIM's other collections we create only the indexes our queries need (openhim-indexes.ts).
 */
@Module({})
export class DatabaseModule {
  static forRoot(config: AppConfig): DynamicModule {
    if (!config.MONGODB_URI) throw new Error('MONGODB_URI is not set');
    const models = MongooseModule.forFeature([
      { name: User.name, schema: UserSchema },
      { name: Passport.name, schema: PassportSchema },
      { name: Session.name, schema: SessionSchema },
      { name: Channel.name, schema: ChannelSchema },
      { name: Transaction.name, schema: TransactionSchema },
      { name: AutoRetry.name, schema: AutoRetrySchema },
      { name: Task.name, schema: TaskSchema, collection: config.TASKS_COLLECTION },
      { name: TaskItem.name, schema: TaskItemSchema },
    ]);
    return {
      module: DatabaseModule,
      global: true,
      imports: [MongooseModule.forRoot(config.MONGODB_URI, { serverSelectionTimeoutMS: 10000 }), models],
      providers: [OpenhimIndexes],
      exports: [models, OpenhimIndexes],
    };
  }
}

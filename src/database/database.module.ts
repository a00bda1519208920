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

/**
 * The connection and every model. OpenHIM's collections get no indexes from us (OpenHIM core owns
 * them); only `tasks` and our `taskitems` are indexed here.
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
      exports: [models],
    };
  }
}

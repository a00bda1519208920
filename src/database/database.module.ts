import { DynamicModule, Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AppConfig } from '../config/app-config';
import {
  AlertLog,
  AlertLogSchema,
  AutoRetry,
  AutoRetrySchema,
  Channel,
  ChannelSchema,
  ContactGroup,
  ContactGroupSchema,
  Notification,
  NotificationSchema,
  Passport,
  PassportSchema,
  RerunGuard,
  RerunGuardSchema,
  RerunHold,
  RerunHoldSchema,
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
import { guardDriverWrites } from './driver/driver-write-guard';
import { OpenhimIndexes } from './openhim-indexes';
import { AlertLogRepository } from './repositories/alert-log.repository';
import { AutoRetriesRepository } from './repositories/auto-retries.repository';
import { ChannelsRepository } from './repositories/channels.repository';
import { ContactGroupsRepository } from './repositories/contact-groups.repository';
import { NotificationsRepository } from './repositories/notifications.repository';
import { RerunGuardsRepository } from './repositories/rerun-guards.repository';
import { RerunHoldsRepository } from './repositories/rerun-holds.repository';
import { TaskItemsRepository } from './repositories/task-items.repository';
import { TasksRepository } from './repositories/tasks.repository';
import { TransactionsRepository } from './repositories/transactions.repository';

/** One repository per collection of the service's, shared by the API and the engine. */
const REPOSITORIES = [
  TasksRepository,
  TaskItemsRepository,
  TransactionsRepository,
  ChannelsRepository,
  AutoRetriesRepository,
  RerunHoldsRepository,
  RerunGuardsRepository,
  ContactGroupsRepository,
  AlertLogRepository,
  NotificationsRepository,
];

/**
 * The connection, every model and the repositories of the tasks API and the engine (global). Our
 * `taskitems` and `tasks` are indexed by their schemas; on OpenHIM's other collections we create
 * only the indexes our queries need (openhim-indexes.ts).
 */
@Module({})
export class DatabaseModule {
  /**
   * The MongoDB driver's write guard (a driver defect leaves operations, and its own heartbeat,
   * pending forever after a server closed connections: driver/driver-write-guard.ts), installed for
   * the whole process in every role.
   */
  constructor() {
    guardDriverWrites();
  }

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
      { name: RerunHold.name, schema: RerunHoldSchema },
      { name: RerunGuard.name, schema: RerunGuardSchema },
      { name: ContactGroup.name, schema: ContactGroupSchema },
      { name: AlertLog.name, schema: AlertLogSchema },
      { name: Notification.name, schema: NotificationSchema },
    ]);
    return {
      module: DatabaseModule,
      global: true,
      imports: [MongooseModule.forRoot(config.MONGODB_URI, { serverSelectionTimeoutMS: 10000 }), models],
      providers: [OpenhimIndexes, ...REPOSITORIES],
      exports: [models, OpenhimIndexes, ...REPOSITORIES],
    };
  }
}

import { BullModule } from '@nestjs/bull';
import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { NotificationsSweeper } from './delivery/notifications-sweeper.service';
import { NotificationsProcessor } from './delivery/notifications.processor';
import { EmailNotifications } from './email/email-notifications.service';
import { NotificationsController } from './notifications.controller';
import { NOTIFICATIONS_QUEUE } from './notifications.constants';
import { Notifier } from './notifier.service';
import { leasedQueueSettings } from '../common/queue/bull-repairs';

/**
 * What every role has (global, so the tasks API and the engine inject `Notifier` and
 * `EmailNotifications` anywhere): the notifications queue, without processors, and the emitter.
 * Lock and stall settings matter where the processors run: a SIGKILLed worker's job returns to the
 * queue after about 2 x WORKER_LEASE_MS, and is never failed for stalling.
 */
@Global()
@Module({
  imports: [
    BullModule.registerQueueAsync({
      name: NOTIFICATIONS_QUEUE,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        settings: leasedQueueSettings(config.WORKER_LEASE_MS),
      }),
    }),
  ],
  providers: [Notifier, EmailNotifications],
  exports: [Notifier, EmailNotifications, BullModule],
})
export class NotificationsModule {}

/** GET /notifications (API role). */
@Module({ controllers: [NotificationsController] })
export class NotificationsApiModule {}

/** The deliveries: processor and sweeper (worker role and all-in-one only, as RerunWorkerModule). */
@Module({ providers: [NotificationsProcessor, NotificationsSweeper] })
export class NotificationsWorkerModule {}

import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AuthModule } from '../auth/auth.module';
import { GlobalExceptionFilter } from '../common/filters/global-exception.filter';
import { AppConfig } from '../config/app-config';
import { HealthModule } from '../health/health.module';
import {
  NotificationsApiModule,
  NotificationsModule,
  NotificationsWorkerModule,
} from '../notifications/notifications.module';
import { QueueDashboardModule } from '../observability/dashboard/queue-dashboard.module';
import { ObservabilityModule } from '../observability/observability.module';
import { RerunWorkerModule } from '../rerun/rerun-worker.module';
import { TasksModule } from '../tasks/tasks.module';
import { CoreModule } from './core.module';

/** The HTTP API; with `withWorker` (all-in-one) it also consumes the rerun and notifications queues. */
@Module({})
export class ApiModule {
  static forRoot(config: AppConfig, options: { withWorker: boolean }): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        CoreModule.forRoot(config),
        AuthModule,
        NotificationsModule,
        NotificationsApiModule,
        TasksModule,
        HealthModule,
        ObservabilityModule.forRoot(config, { role: options.withWorker ? 'all' : 'api', http: true }),
        ...(config.QUEUE_DASHBOARD ? [QueueDashboardModule] : []),
        ...(options.withWorker ? [RerunWorkerModule, NotificationsWorkerModule] : []),
      ],
      providers: [{ provide: APP_FILTER, useClass: GlobalExceptionFilter }],
    };
  }
}

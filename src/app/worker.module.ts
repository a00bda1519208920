import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { GlobalExceptionFilter } from '../common/filters/global-exception.filter';
import { AppConfig } from '../config/app-config';
import { HealthModule } from '../health/health.module';
import { NotificationsModule, NotificationsWorkerModule } from '../notifications/notifications.module';
import { ObservabilityModule } from '../observability/observability.module';
import { RerunWorkerModule } from '../rerun/rerun-worker.module';
import { CoreModule } from './core.module';

/**
 * The worker role: Bull processors, and with `http` (WORKER_HTTP_PORT set) GET /metrics and the
 * health endpoints on a port of its own; no API routes.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig, options: { http: boolean } = { http: false }): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        CoreModule.forRoot(config),
        ObservabilityModule.forRoot(config, { role: 'worker', http: options.http }),
        RerunWorkerModule,
        NotificationsModule,
        NotificationsWorkerModule,
        ...(options.http ? [HealthModule] : []),
      ],
      providers: options.http ? [{ provide: APP_FILTER, useClass: GlobalExceptionFilter }] : [],
    };
  }
}

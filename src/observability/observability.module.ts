import { DynamicModule, Global, Module, Provider } from '@nestjs/common';
import { AUTHENTICATION_PROVIDERS } from '../auth/authentication.providers';
import { AppConfig } from '../config/app-config';
import { RerunQueueModule } from '../rerun/rerun-queue.module';
import { AdminAccess } from './access/admin-access';
import { LoggingModule } from './logging/logging.module';
import { ServiceRole } from './logging/pino-options';
import { ClusterMetrics } from './metrics/cluster-metrics';
import { HttpMetrics } from './metrics/http-metrics';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsRegistry } from './metrics/metrics.registry';
import { RerunMetrics } from './metrics/rerun-metrics';
import { TaskCountsRepository } from './metrics/task-counts.repository';

/**
 * Logs and metrics for either role. Global, so the engine can inject `RerunMetrics` anywhere.
 * With `http`, also GET /metrics (the API, and the worker when WORKER_HTTP_PORT is set).
 */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(config: AppConfig, options: { role: ServiceRole; http: boolean }): DynamicModule {
    // The API has the auth module; a worker serving protected metrics verifies credentials itself.
    const workerAuth: Provider[] =
      options.role === 'worker' && options.http && !config.METRICS_PUBLIC ? AUTHENTICATION_PROVIDERS : [];
    return {
      module: ObservabilityModule,
      imports: [LoggingModule.forRoot(config, options.role), RerunQueueModule],
      controllers: options.http ? [MetricsController] : [],
      providers: [
        { provide: MetricsRegistry, useFactory: () => MetricsRegistry.create() },
        RerunMetrics,
        HttpMetrics,
        TaskCountsRepository,
        ClusterMetrics,
        AdminAccess,
        ...workerAuth,
      ],
      exports: [MetricsRegistry, RerunMetrics, HttpMetrics, AdminAccess],
    };
  }
}

import { DynamicModule, Global, Module } from '@nestjs/common';
import { AuthCoreModule } from '../auth/auth-core.module';
import { AppConfig } from '../config/app-config';
import { RerunQueueModule } from '../rerun/rerun-queue.module';
import { LoggingModule } from './logging/logging.module';
import { ServiceRole } from './logging/pino-options';
import { ClusterMetrics } from './metrics/cluster-metrics';
import { HttpMetrics } from './metrics/http-metrics';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsRegistry } from '../common/metrics/metrics.registry';
import { RerunMetrics } from '../rerun/metrics/rerun-metrics';

/**
 * Logs and metrics for either role. Global, so the engine can inject `RerunMetrics` anywhere.
 * With `http`, also GET /metrics (the API, and the worker when WORKER_HTTP_PORT is set).
 */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(config: AppConfig, options: { role: ServiceRole; http: boolean }): DynamicModule {
    return {
      module: ObservabilityModule,
      // GET /metrics checks admin credentials itself (METRICS_PUBLIC=false), in either role.
      imports: [
        LoggingModule.forRoot(config, options.role),
        RerunQueueModule,
        ...(options.http ? [AuthCoreModule] : []),
      ],
      controllers: options.http ? [MetricsController] : [],
      providers: [
        { provide: MetricsRegistry, useFactory: () => MetricsRegistry.create() },
        RerunMetrics,
        HttpMetrics,
        ClusterMetrics,
      ],
      exports: [MetricsRegistry, RerunMetrics, HttpMetrics],
    };
  }
}

import { MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import { AuthCoreModule } from '../../auth/auth-core.module';
import { RerunQueueModule } from '../../rerun/rerun-queue.module';
import { QueueDashboard } from './queue-dashboard';

/** Bull Board at /queues (API role). Mounted as Nest middleware so request logging covers it. */
@Module({ imports: [RerunQueueModule, AuthCoreModule], providers: [QueueDashboard] })
export class QueueDashboardModule implements NestModule {
  constructor(private readonly dashboard: QueueDashboard) {}

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(this.dashboard.handler()).forRoutes({ path: 'queues{/*rest}', method: RequestMethod.ALL });
  }
}

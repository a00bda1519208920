import { BullModule } from '@nestjs/bull';
import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { ConfigModule } from '../config/config.module';
import { DatabaseModule } from '../database/database.module';

/** What both roles share: the validated config, MongoDB and the Redis behind Bull. */
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig): DynamicModule {
    if (!config.REDIS_URL) throw new Error('REDIS_URL is not set');
    return {
      module: CoreModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule.forRoot(config),
        BullModule.forRoot({
          url: config.REDIS_URL,
          prefix: config.QUEUE_PREFIX,
          redis: {
            // Keep retrying through a Redis restart instead of failing queued commands.
            maxRetriesPerRequest: null,
            enableReadyCheck: false,
            retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
          },
        }),
      ],
    };
  }
}

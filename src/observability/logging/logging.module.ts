import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppConfig } from '../../config/app-config';
import { httpLogOptions, ServiceRole } from './pino-options';
import { useProcessLogger } from './process-logger';

/**
 * Structured logs for both roles: HTTP requests get one line each (pino-http through nestjs-pino)
 * with a request id that every line logged while handling them carries too. Requests are logged
 * through the process logger (process-logger.ts), which Nest's `Logger` also writes to, so there is
 * one pino logger per process: with several applications in one process (tests) the first one's
 * format and role apply.
 */
@Module({})
export class LoggingModule {
  static forRoot(config: AppConfig, role: ServiceRole, destination?: DestinationStream): DynamicModule {
    const logger = useProcessLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, role }, destination);
    return {
      module: LoggingModule,
      imports: [LoggerModule.forRoot({ pinoHttp: { ...httpLogOptions(), logger } })],
    };
  }
}

import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppConfig } from '../../config/app-config';
import { pinoHttpOptions, ServiceRole } from './pino-options';

/**
 * Structured logs for both roles (nestjs-pino): Nest's `Logger` writes through pino, HTTP requests
 * get one line each with a request id that every line logged while handling them carries too.
 * pino is set up once per process: with several applications in one process (tests) the first
 * one's settings apply.
 */
@Module({})
export class LoggingModule {
  static forRoot(config: AppConfig, role: ServiceRole, destination?: DestinationStream): DynamicModule {
    const [options, stream] = pinoHttpOptions({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, role });
    return {
      module: LoggingModule,
      imports: [LoggerModule.forRoot({ pinoHttp: [options, destination ?? stream] })],
    };
  }
}

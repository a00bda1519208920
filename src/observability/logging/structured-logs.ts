import type { INestApplicationContext } from '@nestjs/common';
import { Logger, PinoLogger } from 'nestjs-pino';
import type { LogLevel } from '../../config/app-config';
import { pinoLevel } from './pino-options';

/**
 * Routes Nest's logging through pino (the application must be created with `bufferLogs: true`).
 * pino is set up once per process, so the level is applied again here: the last application
 * started sets it (several applications run in one process only in tests).
 */
export function useStructuredLogs(app: INestApplicationContext, level: LogLevel): void {
  app.useLogger(app.get(Logger));
  if (PinoLogger.root) PinoLogger.root.level = pinoLevel(level);
}

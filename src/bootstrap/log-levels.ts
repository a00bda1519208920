import type { LogLevel as NestLogLevel } from '@nestjs/common';
import type { LogLevel } from '../config/app-config';

const ORDER: NestLogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** LOG_LEVEL (info = Nest's "log") to the list of levels Nest prints. */
export function nestLogLevels(level: LogLevel): NestLogLevel[] {
  const wanted: NestLogLevel = level === 'info' ? 'log' : level;
  return ORDER.slice(0, ORDER.indexOf(wanted) + 1);
}

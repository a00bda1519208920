import { Logger as NestLogger, LoggerService } from '@nestjs/common';
import pino, { DestinationStream, Level, Logger as Pino } from 'pino';
import { contextLogger, processLogger, setProcessLogger } from '../../common/logging/log-context';
import { LogSettings, pinoLevel, pinoOptions } from './pino-options';

/**
 * Creates the one pino logger of the process (first call) and makes every Nest `Logger` write
 * through it. Everything logs through it from the first line on: start-up lines written before Nest
 * exists, Nest's own lines, HTTP requests (pino-http makes its request loggers children of it) and
 * the engine. So with stdout not a terminal every line is JSON. It is held in
 * common/logging/log-context.ts (`processLogger`, `contextLogger`).
 * Later calls only change the level: several applications in one process (tests) share the first
 * one's format and role; the last one sets the level. `destination` (tests) replaces the logger.
 */
export function useProcessLogger(settings: LogSettings, destination?: DestinationStream): Pino {
  let root = processLogger();
  if (!root || destination) {
    const [options, stream] = pinoOptions(settings);
    root = pino(options, destination ?? stream);
    setProcessLogger(root);
  } else {
    root.level = pinoLevel(settings.level);
  }
  NestLogger.overrideLogger(nestLogger);
  return root;
}

/**
 * Nest's `LoggerService` on the process logger: the same lines as nestjs-pino's `Logger` (the
 * Nest context in `context`, errors in `err`), with the bindings of the current context.
 */
class NestPinoLogger implements LoggerService {
  /** Start-up errors that the caller reports in one line of its own: Nest's copies go to debug. */
  quietContexts = new Set<string>();
  /** Start-up retries (MongoDB not reachable yet): a warning with the cause, without the stack. */
  retryContexts = new Set<string>();

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, optionalParams: unknown[]): void {
    const logger = contextLogger();
    if (!logger) return;
    const fields: Record<string, unknown> = {};
    let params: unknown[] = [];
    // Nest's Logger passes its context last.
    if (optionalParams.length) {
      fields.context = optionalParams[optionalParams.length - 1];
      params = optionalParams.slice(0, -1).filter((param) => param !== undefined);
    }
    if ((level === 'error' || level === 'fatal') && this.quietContexts.has(fields.context as string)) level = 'debug';
    if (level === 'error' && this.retryContexts.has(fields.context as string) && typeof message === 'string') {
      const cause = typeof params[0] === 'string' ? params[0].split('\n')[0] : '';
      level = 'warn';
      message = cause ? `${message} (${cause})` : message;
      params = [];
    }
    if (!logger.isLevelEnabled(level)) return;
    if (message instanceof Error) {
      logger[level]({ ...fields, err: message }, message.message, ...params);
    } else if (typeof message === 'object' && message !== null) {
      logger[level]({ ...fields, ...message }, ...(params as [string?]));
    } else if (
      level === 'error' &&
      params.length === 1 &&
      typeof params[0] === 'string' &&
      /\n\s*at /.test(params[0])
    ) {
      // Nest's exception handlers pass (message, stack, context).
      const err = new Error(String(message));
      err.stack = params[0];
      logger.error({ ...fields, err }, String(message));
    } else {
      logger[level](fields, String(message), ...params);
    }
  }
}

const nestLogger = new NestPinoLogger();

/** The Nest logger to give `NestFactory` (so nothing is buffered, and nothing lost if start-up fails). */
export function nestProcessLogger(): LoggerService {
  return nestLogger;
}

/**
 * While the application starts, the errors Nest logs itself for a failed start (its exception
 * handler, a failed `listen`) go to debug: the caller reports the failure in one line that says
 * what to do; MongoDB connection retries are warnings naming the cause. Returns the function that
 * ends this.
 */
export function quietNestStartupErrors(): () => void {
  const contexts = ['ExceptionHandler', 'NestApplication', 'NestFactory'];
  for (const context of contexts) nestLogger.quietContexts.add(context);
  // @nestjs/mongoose logs each failed connection attempt as an error with a stack.
  nestLogger.retryContexts.add('MongooseModule');
  return () => {
    contexts.forEach((context) => nestLogger.quietContexts.delete(context));
    nestLogger.retryContexts.delete('MongooseModule');
  };
}

import { INestApplicationContext, Logger } from '@nestjs/common';
import { AppConfig, ConfigError, LOG_FORMATS, LOG_LEVELS, loadConfig } from '../config/app-config';
import type { ServiceRole } from '../observability/logging/pino-options';
import { processLogger } from '../common/logging/log-context';
import { quietNestStartupErrors, useProcessLogger } from '../observability/logging/process-logger';
import { describeStartupError, StartupError } from './startup-errors';

/** What an entry point's `start` gets: the config, and where to register what it starts. */
export interface Startup {
  readonly config: AppConfig;
  /**
   * Something started besides the application (embedded MongoDB, private Redis): stopped at exit,
   * after the application is closed, the last started first.
   */
  started(name: string, stop: () => Promise<void>): void;
  /** The application, once created: closed first at exit. */
  application(app: INestApplicationContext): void;
}

/** How long closing the application and stopping the rest may take before the process exits anyway. */
const SHUTDOWN_LIMIT_MS = 60000;
/** The same for a failed start (nothing is running yet). */
const FAILED_START_LIMIT_MS = 15000;

/**
 * Runs an entry point: logs from the first line through the process logger (JSON lines when
 * stdout is not a terminal), validates the config, then calls `start`. A start that fails logs one
 * `fatal` line saying what failed and what to do, stops whatever was started, and exits 1.
 * SIGTERM/SIGINT, also during start-up, close the application, then stop the rest, then exit 0.
 */
export function run(role: ServiceRole, start: (startup: Startup) => Promise<void>): void {
  useProcessLogger({
    level: oneOf(process.env.LOG_LEVEL, LOG_LEVELS, 'info'),
    format: oneOf(process.env.LOG_FORMAT, LOG_FORMATS, 'auto'),
    role,
  });
  const config = loadConfigOrExit();
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  let app: INestApplicationContext | undefined;
  let stopping = false;
  const logger = new Logger('Shutdown');

  const stopEverything = async (): Promise<void> => {
    if (app) {
      const closing = app;
      app = undefined;
      // What the application could not close still stops below (and with the process).
      await closing.close().catch((error: Error) => logger.warn(`Could not close the application: ${error.message}`));
    }
    for (const { name, stop } of stops.splice(0).reverse()) {
      await stop().catch((error: Error) => logger.warn(`Could not stop the ${name}: ${error.message}`));
    }
  };

  const exitAfter = (code: number, limitMs: number, work: () => Promise<void>): void => {
    setTimeout(() => {
      logger.error(`Stopping took longer than ${limitMs / 1000} s; exiting now`);
      process.exit(code || 1);
    }, limitMs).unref();
    work().then(
      () => process.exit(code),
      (error: Error) => {
        logger.error(`Shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  };

  let signalledAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // One Ctrl-C can arrive twice within milliseconds: from the terminal, and forwarded by npm.
    if (stopping && Date.now() - signalledAt < 1000) return;
    if (stopping) {
      // A second Ctrl-C: exit now. Whatever is still running is stopped by its own exit hook.
      logger.warn(`${signal} received again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    signalledAt = Date.now();
    logger.log(`${signal} received: closing`);
    exitAfter(0, SHUTDOWN_LIMIT_MS, async () => {
      await stopEverything();
      logger.log('Stopped');
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const unquiet = quietNestStartupErrors();
  start({
    config,
    started(name, stop) {
      stops.push({ name, stop });
      // Started while a signal was being handled: stopped at once.
      if (stopping) void stopEverything();
    },
    application(created) {
      app = created;
      if (stopping) void stopEverything();
    },
  }).then(
    () => unquiet(),
    (error: unknown) => {
      unquiet();
      if (stopping) return; // a signal cut the start short: already stopping
      stopping = true;
      const { message, unexpected } = describeStartupError(error, config);
      processLogger()!.fatal({ context: 'Bootstrap', ...(unexpected ? { err: error } : {}) }, message);
      exitAfter(1, FAILED_START_LIMIT_MS, stopEverything);
    },
  );
}

/** The config, or one `fatal` line listing every problem and exit 1. */
function loadConfigOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fatalAndExit(
      `Invalid configuration: ${error.problems.join('; ')}. Correct these environment variables and start again.`,
    );
  }
}

/** Stops a role that cannot run without a setting (see `run`: nothing is started yet). */
export function requireSetting(config: AppConfig, name: 'MONGODB_URI' | 'REDIS_URL', role: string): void {
  if (!config[name]) {
    throw new StartupError(
      `Invalid configuration: ${name} must be set for the ${role} role (a separate API and workers must share one database and one Redis). ` +
        'Use `npm start` for the all-in-one process with embedded defaults.',
    );
  }
}

function fatalAndExit(message: string): never {
  processLogger()!.fatal({ context: 'Bootstrap' }, message);
  process.exit(1);
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? (value as T) : fallback;
}

import { Logger } from '@nestjs/common';
import { AppConfig, ConfigError, loadConfig } from '../config/app-config';

/** Loads the config or exits with the one message listing every problem. */
export function loadConfigOrExit(): AppConfig {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

export function requireSetting(config: AppConfig, name: 'MONGODB_URI' | 'REDIS_URL', role: string): void {
  if (!config[name]) {
    process.stderr.write(
      `Invalid configuration:\n  - ${name} must be set for the ${role} role (a separate API and workers must share one database and one Redis). ` +
        'Use `npm start` for the all-in-one process with embedded defaults.\n',
    );
    process.exit(1);
  }
}

export function exitOnStartupError(error: unknown): never {
  new Logger('Bootstrap').error(`Startup failed: ${(error as Error).message}`);
  process.exit(1);
}

import { INestApplication, INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { ApiModule } from '../app/api.module';
import { WorkerModule } from '../app/worker.module';
import { setupSwagger } from '../common/swagger';
import { AppConfig } from '../config/app-config';
import { nestLogLevels } from './log-levels';
import { loadTls } from './tls';

/** Builds the HTTP API (not yet listening). `withWorker` makes it all-in-one. */
export async function createApiApplication(
  config: AppConfig,
  options: { withWorker: boolean },
): Promise<NestExpressApplication> {
  const tls = config.API_PROTOCOL === 'https' ? await loadTls(config) : undefined;
  if (tls?.selfSigned) {
    new Logger('Bootstrap').warn(
      'Serving HTTPS with a generated self-signed certificate for localhost; set TLS_CERT_FILE and TLS_KEY_FILE in production.',
    );
  }
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config, options), {
    httpsOptions: tls ? { key: tls.key, cert: tls.cert } : undefined,
    bodyParser: false,
    logger: nestLogLevels(config.LOG_LEVEL),
  });
  app.useBodyParser('json', { limit: config.BODY_LIMIT });
  if (config.TRUST_PROXY) app.set('trust proxy', trustProxyValue(config.TRUST_PROXY));
  // OpenHIM answers preflights with the caller's origin and these methods.
  app.enableCors({ origin: true, methods: 'GET,HEAD,PUT,POST,DELETE', credentials: true });
  setupSwagger(app);
  return app;
}

/** Builds the worker: an application context without HTTP. */
export async function createWorkerApplication(config: AppConfig): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    logger: nestLogLevels(config.LOG_LEVEL),
  });
}

/** Closes the application on SIGTERM/SIGINT, then runs `after` (embedded servers), then exits. */
export function closeOnSignals(app: INestApplication | INestApplicationContext, after: () => Promise<void> = async () => {}) {
  const logger = new Logger('Shutdown');
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.log(`${signal} received: closing`);
    const hardStop = setTimeout(() => {
      logger.error('Shutdown took too long; exiting');
      process.exit(1);
    }, 60000);
    hardStop.unref();
    try {
      await app.close();
      await after();
      process.exit(0);
    } catch (error) {
      logger.error(`Shutdown failed: ${(error as Error).message}`);
      process.exit(1);
    }
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

function trustProxyValue(setting: string): boolean | number | string {
  if (setting === 'true' || setting === 'false') return setting === 'true';
  return /^\d+$/.test(setting) ? Number(setting) : setting;
}

import { INestApplication, INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { ApiModule } from '../app/api.module';
import { WorkerModule } from '../app/worker.module';
import { setupSwagger } from '../common/swagger';
import { isListedOrigin } from '../auth/session/session-origin';
import { AppConfig } from '../config/app-config';
import { useStructuredLogs } from '../observability/logging/structured-logs';
import { HttpMetrics } from '../observability/metrics/http-metrics';
import { nestLogLevels } from './log-levels';
import { loadTls } from './tls';

/** Builds the HTTP API (not yet listening). `withWorker` makes it all-in-one. */
export async function createApiApplication(
  config: AppConfig,
  options: { withWorker: boolean },
): Promise<NestExpressApplication> {
  const tls = config.API_PROTOCOL === 'https' ? await loadTls(config) : undefined;
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config, options), {
    httpsOptions: tls ? { key: tls.key, cert: tls.cert } : undefined,
    bodyParser: false,
    logger: nestLogLevels(config.LOG_LEVEL),
    // Held until pino takes over, so startup lines are structured too.
    bufferLogs: true,
  });
  useStructuredLogs(app, config.LOG_LEVEL);
  if (tls?.selfSigned) {
    new Logger('Bootstrap').warn(
      'Serving HTTPS with a generated self-signed certificate for localhost; set TLS_CERT_FILE and TLS_KEY_FILE in production.',
    );
  }
  // First, so refused and failed requests are timed too.
  app.use(app.get(HttpMetrics).middleware);
  app.useBodyParser('json', { limit: config.BODY_LIMIT });
  if (config.TRUST_PROXY) app.set('trust proxy', trustProxyValue(config.TRUST_PROXY));
  // OpenHIM answers preflights with the caller's origin and these methods; credentials (cookies,
  // a browser's Basic) only for the console origins listed in CORS_ORIGINS.
  app.enableCors((request, callback) =>
    callback(null, {
      origin: true,
      methods: 'GET,HEAD,PUT,POST,DELETE',
      credentials: isListedOrigin(config.CORS_ORIGINS, request.headers.origin),
    }),
  );
  setupSwagger(app);
  return app;
}

/**
 * Builds and starts the worker: an application context without HTTP or, when WORKER_HTTP_PORT is
 * set, an application already listening there (plain HTTP) with GET /metrics and /health only.
 */
export async function createWorkerApplication(config: AppConfig): Promise<INestApplicationContext> {
  const options = { logger: nestLogLevels(config.LOG_LEVEL), bufferLogs: true };
  if (config.WORKER_HTTP_PORT === undefined) {
    const context = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, { http: false }), options);
    useStructuredLogs(context, config.LOG_LEVEL);
    return context;
  }
  const app = await NestFactory.create<NestExpressApplication>(WorkerModule.forRoot(config, { http: true }), {
    ...options,
    bodyParser: false,
  });
  useStructuredLogs(app, config.LOG_LEVEL);
  app.use(app.get(HttpMetrics).middleware);
  await app.listen(config.WORKER_HTTP_PORT, config.WORKER_HTTP_HOST);
  const { port } = app.getHttpServer().address() as { port: number };
  new Logger('Bootstrap').log(
    `Worker metrics and health at http://${config.WORKER_HTTP_HOST}:${port} (/metrics, /health, /health/live)`,
  );
  return app;
}

/** Closes the application on SIGTERM/SIGINT, then runs `after` (embedded servers), then exits. */
export function closeOnSignals(
  app: INestApplication | INestApplicationContext,
  after: () => Promise<void> = async () => {},
) {
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

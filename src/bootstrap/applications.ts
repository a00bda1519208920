import { INestApplication, INestApplicationContext, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { ApiModule } from '../app/api.module';
import { WorkerModule } from '../app/worker.module';
import { setupSwagger } from '../common/swagger';
import { isListedOrigin } from '../auth/session/session-origin';
import { AppConfig } from '../config/app-config';
import { nestProcessLogger } from '../observability/logging/process-logger';
import { HttpMetrics } from '../observability/metrics/http-metrics';
import { checkCanListen, ListenTarget, listenError } from './startup-errors';
import { loadTls } from './tls';

/**
 * Nest logs through the process logger from the start (nothing buffered, nothing lost when a
 * start fails), and a failed start is thrown to the caller instead of aborting the process.
 */
const NEST_OPTIONS = { logger: nestProcessLogger(), abortOnError: false } as const;

/** Builds the HTTP API (not yet listening). `withWorker` makes it all-in-one. */
export async function createApiApplication(
  config: AppConfig,
  options: { withWorker: boolean },
): Promise<NestExpressApplication> {
  const tls = config.API_PROTOCOL === 'https' ? await loadTls(config) : undefined;
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config, options), {
    ...NEST_OPTIONS,
    httpsOptions: tls ? { key: tls.key, cert: tls.cert } : undefined,
    bodyParser: false,
  });
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
export async function createWorkerApplication(
  config: AppConfig,
  onCreated: (app: INestApplicationContext) => void = () => {},
): Promise<INestApplicationContext> {
  if (config.WORKER_HTTP_PORT === undefined) {
    const context = await NestFactory.createApplicationContext(
      WorkerModule.forRoot(config, { http: false }),
      NEST_OPTIONS,
    );
    onCreated(context);
    return context;
  }
  const target = workerListenTarget(config);
  await checkCanListen(target);
  const app = await NestFactory.create<NestExpressApplication>(WorkerModule.forRoot(config, { http: true }), {
    ...NEST_OPTIONS,
    bodyParser: false,
  });
  onCreated(app);
  app.use(app.get(HttpMetrics).middleware);
  await listen(app, target);
  const { port } = app.getHttpServer().address() as { port: number };
  new Logger('Bootstrap').log(
    `Worker metrics and health at http://${config.WORKER_HTTP_HOST}:${port} (/metrics, /health, /health/live)`,
  );
  return app;
}

/** Where the API listens, and the settings that say so. */
export function apiListenTarget(config: AppConfig): ListenTarget {
  return { host: config.API_HOST, port: config.API_PORT, portSetting: 'API_PORT', hostSetting: 'API_HOST' };
}

function workerListenTarget(config: AppConfig): ListenTarget {
  return {
    host: config.WORKER_HTTP_HOST,
    port: config.WORKER_HTTP_PORT ?? 0,
    portSetting: 'WORKER_HTTP_PORT',
    hostSetting: 'WORKER_HTTP_HOST',
  };
}

/** `app.listen`, failing with a message that names the port and the setting to change. */
export async function listen(app: INestApplication, target: ListenTarget): Promise<void> {
  try {
    await app.listen(target.port, target.host);
  } catch (error) {
    throw listenError(error, target);
  }
}

function trustProxyValue(setting: string): boolean | number | string {
  if (setting === 'true' || setting === 'false') return setting === 'true';
  return /^\d+$/.test(setting) ? Number(setting) : setting;
}

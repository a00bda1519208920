import type { INestApplication, INestApplicationContext } from '@nestjs/common';
import { Db, MongoClient } from 'mongodb';
import { createApiApplication, createWorkerApplication } from '../../src/bootstrap/applications';
import { PrivateRedis, startPrivateRedis } from '../../src/bootstrap/private-redis';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { MongoWireServer, type MongoWireServerOptions } from '@openhim-rerun/mongo-wire';
import { embeddedMongoOptions } from './mongodb-version';

/**
 * What an end-to-end test needs: the embedded MongoDB-compatible server and a real redis-server,
 * both on free ports, plus a direct driver connection for fixtures and assertions.
 */
export class TestEnvironment {
  readonly dbName = `openhim_test_${process.pid}_${Math.random().toString(16).slice(2, 8)}`;
  mongo: MongoWireServer;
  redis: PrivateRedis;
  client: MongoClient;
  db: Db;
  private readonly apps: Array<INestApplication | INestApplicationContext> = [];

  /** `mongo`: options of the embedded server (e.g. a fixed `mongodbVersion`, `replSet`). */
  static async start(mongo: Partial<MongoWireServerOptions> = {}): Promise<TestEnvironment> {
    const env = new TestEnvironment();
    env.mongo = new MongoWireServer({ port: 0, ...embeddedMongoOptions(), ...mongo });
    await env.mongo.start();
    env.redis = await startPrivateRedis();
    env.client = await MongoClient.connect(env.mongoUri);
    env.db = env.client.db(env.dbName);
    return env;
  }

  get mongoUri(): string {
    return this.mongo.uri(this.dbName);
  }

  /** A validated config pointing at this environment; `overrides` are environment variables. */
  config(overrides: Record<string, string> = {}): AppConfig {
    return loadConfig({
      MONGODB_URI: this.mongoUri,
      REDIS_URL: this.redis.url,
      API_PORT: '0',
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      QUEUE_PREFIX: `test-${this.dbName}`,
      ...overrides,
    });
  }

  /** Starts the real API (HTTPS by default) on a free port; returns its base URL. */
  async startApi(
    overrides: Record<string, string> = {},
    options: { withWorker?: boolean } = {},
  ): Promise<{ app: INestApplication; baseUrl: string; config: AppConfig }> {
    const config = this.config(overrides);
    const app = await createApiApplication(config, { withWorker: options.withWorker ?? false });
    await app.listen(0, '127.0.0.1');
    this.apps.push(app);
    const address = app.getHttpServer().address() as { port: number };
    return { app, baseUrl: `${config.API_PROTOCOL}://127.0.0.1:${address.port}`, config };
  }

  /** Starts an in-process worker (processors only). */
  async startWorker(overrides: Record<string, string> = {}): Promise<INestApplicationContext> {
    const app = await createWorkerApplication(this.config(overrides));
    this.apps.push(app);
    return app;
  }

  async stop(): Promise<void> {
    for (const app of this.apps.splice(0).reverse()) await app.close().catch(() => undefined);
    await this.client?.close().catch(() => undefined);
    await this.redis?.stop();
    await this.mongo?.stop();
  }
}

import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { closeOnSignals, createApiApplication } from './bootstrap/applications';
import { PrivateRedis, startPrivateRedis } from './bootstrap/private-redis';
import { exitOnStartupError, loadConfigOrExit } from './bootstrap/run';

/**
 * All-in-one: the API and a worker in one process. MongoDB and Redis default to embedded ones
 * (in memory, gone at exit) when MONGODB_URI / REDIS_URL are unset.
 */
async function main() {
  const config = loadConfigOrExit();
  const logger = new Logger('Bootstrap');
  const stops: Array<() => Promise<void>> = [];

  if (!config.MONGODB_URI) {
    // Loaded only here: with MONGODB_URI set the embedded server is never part of the process.
    const { MongoWireServer } = await import('./mongo-wire');
    const mongo = new MongoWireServer({ host: '127.0.0.1', port: 0 });
    await mongo.start();
    config.MONGODB_URI = mongo.uri('openhim');
    stops.push(() => mongo.stop());
    logger.warn(
      `MONGODB_URI is not set: using the embedded in-memory MongoDB-compatible server at ${config.MONGODB_URI}. ` +
        "ALL DATA IS LOST WHEN THE PROCESS EXITS. Set MONGODB_URI=mongodb://host:27017/openhim to use a real MongoDB (e.g. OpenHIM's).",
    );
  }
  if (!config.REDIS_URL) {
    let redis: PrivateRedis;
    try {
      redis = await startPrivateRedis();
    } catch (error) {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exit(1);
    }
    config.REDIS_URL = redis.url;
    stops.unshift(() => redis.stop());
    logger.warn(
      `REDIS_URL is not set: started a private redis-server at ${redis.url} (stopped at exit, keeps nothing).`,
    );
  }

  const app = await createApiApplication(config, { withWorker: true });
  closeOnSignals(app, async () => {
    for (const stop of stops) await stop();
  });
  await app.listen(config.API_PORT, config.API_HOST);
  logger.log(`Rerun service (API + worker) listening at ${config.API_PROTOCOL}://localhost:${config.API_PORT}`);
}

main().catch(exitOnStartupError);

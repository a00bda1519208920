import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { apiListenTarget, createApiApplication, listen } from './bootstrap/applications';
import { startPrivateRedis } from './bootstrap/private-redis';
import { run } from './bootstrap/run';
import { checkMongoDB } from './bootstrap/mongodb-check';
import { checkCanListen } from './bootstrap/startup-errors';
import { apiDocsLine } from './common/swagger';

/**
 * All-in-one: the API and a worker in one process. MongoDB and Redis default to embedded ones
 * (in memory, gone at exit) when MONGODB_URI / REDIS_URL are unset.
 */
run('all', async ({ config, started, application }) => {
  const logger = new Logger('Bootstrap');
  const target = apiListenTarget(config);
  // Before starting anything: a port in use fails at once, with nothing to clean up.
  await checkCanListen(target);

  if (config.MONGODB_URI) {
    await checkMongoDB(config.MONGODB_URI, config.MONGODB_CONNECT_TIMEOUT_MS);
  } else {
    // Loaded only here: with MONGODB_URI set the embedded server is never part of the process.
    const { MongoWireServer } = await import('@openhim-rerun/mongo-wire');
    const mongo = new MongoWireServer({ host: '127.0.0.1', port: 0 });
    await mongo.start();
    started('embedded MongoDB-compatible server', () => mongo.stop());
    config.MONGODB_URI = mongo.uri('openhim');
    logger.warn(
      `MONGODB_URI is not set: using the embedded in-memory MongoDB-compatible server at ${config.MONGODB_URI}. ` +
        "ALL DATA IS LOST WHEN THE PROCESS EXITS. Set MONGODB_URI=mongodb://host:27017/openhim to use a real MongoDB (e.g. OpenHIM's).",
    );
  }
  if (!config.REDIS_URL) {
    // Its own process group: Ctrl-C reaches only this process, which stops Redis last.
    const redis = await startPrivateRedis({ ownProcessGroup: true });
    started('private redis-server', () => redis.stop());
    config.REDIS_URL = redis.url;
    logger.warn(
      `REDIS_URL is not set: started a private redis-server at ${redis.url} (stopped at exit, keeps nothing).`,
    );
  }

  const app = await createApiApplication(config, { withWorker: true });
  application(app);
  await listen(app, target);
  const url = `${config.API_PROTOCOL}://localhost:${config.API_PORT}`;
  logger.log(`Rerun service (API + worker) listening at ${url}; ${apiDocsLine(url)}`);
});

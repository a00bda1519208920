import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createWorkerApplication } from './bootstrap/applications';
import { checkMongoDB } from './bootstrap/mongodb-check';
import { requireSetting, run } from './bootstrap/run';

/** The worker role: consumes the rerun queue; no public routes. */
run('worker', async ({ config, application }) => {
  requireSetting(config, 'MONGODB_URI', 'worker');
  requireSetting(config, 'REDIS_URL', 'worker');
  await checkMongoDB(config.MONGODB_URI!, config.MONGODB_CONNECT_TIMEOUT_MS);
  await createWorkerApplication(config, application);
  new Logger('Bootstrap').log(`Rerun worker started (concurrency ${config.WORKER_CONCURRENCY})`);
});

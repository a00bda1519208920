import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { apiListenTarget, createApiApplication, listen } from './bootstrap/applications';
import { requireSetting, run } from './bootstrap/run';
import { checkMongoDB } from './bootstrap/mongodb-check';
import { checkCanListen } from './bootstrap/startup-errors';
import { apiDocsLine } from './common/swagger';

/** The API role: HTTP only; reruns are run by worker processes. */
run('api', async ({ config, application }) => {
  requireSetting(config, 'MONGODB_URI', 'api');
  requireSetting(config, 'REDIS_URL', 'api');
  const target = apiListenTarget(config);
  await checkCanListen(target);
  await checkMongoDB(config.MONGODB_URI!, config.MONGODB_CONNECT_TIMEOUT_MS);
  const app = await createApiApplication(config, { withWorker: false });
  application(app);
  await listen(app, target);
  const url = `${config.API_PROTOCOL}://localhost:${config.API_PORT}`;
  new Logger('Bootstrap').log(`Rerun API listening at ${url}; ${apiDocsLine(url)}`);
});

import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { closeOnSignals, createApiApplication } from './bootstrap/applications';
import { exitOnStartupError, loadConfigOrExit, requireSetting } from './bootstrap/run';

/** The API role: HTTP only; reruns are run by worker processes. */
async function main() {
  const config = loadConfigOrExit();
  requireSetting(config, 'MONGODB_URI', 'api');
  requireSetting(config, 'REDIS_URL', 'api');
  const app = await createApiApplication(config, { withWorker: false });
  closeOnSignals(app);
  await app.listen(config.API_PORT, config.API_HOST);
  new Logger('Bootstrap').log(`Rerun API listening at ${config.API_PROTOCOL}://localhost:${config.API_PORT}`);
}

main().catch(exitOnStartupError);

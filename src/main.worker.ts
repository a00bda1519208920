import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { closeOnSignals, createWorkerApplication } from './bootstrap/applications';
import { exitOnStartupError, loadConfigOrExit, requireSetting } from './bootstrap/run';

/** The worker role: consumes the rerun queue; no public routes. */
async function main() {
  const config = loadConfigOrExit();
  requireSetting(config, 'MONGODB_URI', 'worker');
  requireSetting(config, 'REDIS_URL', 'worker');
  const app = await createWorkerApplication(config);
  closeOnSignals(app);
  new Logger('Bootstrap').log(`Rerun worker started (concurrency ${config.WORKER_CONCURRENCY})`);
}

main().catch(exitOnStartupError);

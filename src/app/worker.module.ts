import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { RerunWorkerModule } from '../rerun/rerun-worker.module';
import { CoreModule } from './core.module';

/** The worker role: Bull processors only, no HTTP routes. */
@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return { module: WorkerModule, imports: [CoreModule.forRoot(config), RerunWorkerModule] };
  }
}

import { Module } from '@nestjs/common';
import { RerunQueueModule } from './rerun-queue.module';

// Placeholder: the engine's processors are registered here (issue 5).
@Module({ imports: [RerunQueueModule] })
export class RerunWorkerModule {}

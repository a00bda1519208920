import { Module } from '@nestjs/common';
import { RerunQueueModule } from '../rerun/rerun-queue.module';
import { HealthController } from './health.controller';

@Module({ imports: [RerunQueueModule], controllers: [HealthController] })
export class HealthModule {}

import { BullModule } from '@nestjs/bull';
import { Module } from '@nestjs/common';
import { RERUN_QUEUE } from './rerun.constants';
import { RerunScheduler } from './rerun-scheduler.service';

/** The queue without processors: what the API imports to hand work to the workers. */
@Module({
  imports: [BullModule.registerQueue({ name: RERUN_QUEUE })],
  providers: [RerunScheduler],
  exports: [RerunScheduler, BullModule],
})
export class RerunQueueModule {}

import { BullModule } from '@nestjs/bull';
import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { RERUN_QUEUE } from './rerun.constants';
import { RerunScheduler } from './rerun-scheduler.service';
import { ChannelLoad } from './guards/channel-load.service';
import { leasedQueueSettings } from '../common/queue/bull-repairs';

/**
 * The queue without processors: what the API imports to hand work to the workers.
 * Lock and stall settings matter only where processors run (RerunWorkerModule): a SIGKILLed
 * worker's jobs return to the queue within about 2 x WORKER_LEASE_MS, and a lane that stalled any
 * number of times is never failed for it (leases in MongoDB, not Bull locks, keep reruns single).
 */
@Module({
  imports: [
    BullModule.registerQueueAsync({
      name: RERUN_QUEUE,
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        settings: leasedQueueSettings(config.WORKER_LEASE_MS),
      }),
    }),
  ],
  providers: [RerunScheduler, ChannelLoad],
  exports: [RerunScheduler, ChannelLoad, BullModule],
})
export class RerunQueueModule {}

import { Module } from '@nestjs/common';
import { AsyncPoller } from './engine/async-poller.service';
import { ItemRunner } from './engine/item-runner.service';
import { LaneRunner } from './engine/lane-runner.service';
import { TaskAdopter } from './engine/task-adopter.service';
import { ProgressWriter } from './persistence/progress-writer.service';
import { RerunQueueModule } from './rerun-queue.module';
import { RerunSender } from './sending/rerun-sender.service';
import { RerunProcessor } from './worker/rerun.processor';
import { Sweeper } from './worker/sweeper.service';
import { WorkerLifecycle } from './engine/worker-lifecycle';
import { BreakerProber } from './engine/breaker-prober.service';
import { ChannelBreaker } from './guards/channel-breaker.service';
import { ChannelGuards } from './guards/channel-guards.service';
import { TaskEvents } from './task-events';

/** The rerun engine: processors, sweeper, sender (worker role only; the repositories are DatabaseModule's). */
@Module({
  imports: [RerunQueueModule],
  providers: [
    WorkerLifecycle,
    TaskEvents,
    ChannelGuards,
    ChannelBreaker,
    ProgressWriter,
    RerunSender,
    ItemRunner,
    TaskAdopter,
    LaneRunner,
    AsyncPoller,
    Sweeper,
    BreakerProber,
    RerunProcessor,
  ],
})
export class RerunWorkerModule {}

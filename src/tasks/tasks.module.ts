import { Module } from '@nestjs/common';
import { RerunQueueModule } from '../rerun/rerun-queue.module';
import { BulkRerunController } from './bulk-rerun.controller';
import { BulkRerunService } from './bulk-rerun.service';
import { EmergencyStopController } from './emergency-stop/emergency-stop.controller';
import { EmergencyStopService } from './emergency-stop/emergency-stop.service';
import { RerunGuardsController } from './rerun-guards/rerun-guards.controller';
import { RerunGuardsService } from './rerun-guards/rerun-guards.service';
import { TaskCreator } from './task-creator.service';
import { TasksController } from './tasks.controller';
import { TasksService } from './tasks.service';
import { TransformPreviewer } from './transform-preview.service';

/**
 * OpenHIM's tasks API (create, list, read, pause/resume/cancel, delete), bulk rerun, the emergency
 * stop (its controller first: /tasks/pause-all and /tasks/resume-all before /tasks/:id), and the
 * channels' downstream guards (/rerun-guards).
 */
@Module({
  imports: [RerunQueueModule],
  controllers: [EmergencyStopController, TasksController, BulkRerunController, RerunGuardsController],
  providers: [
    TaskCreator,
    TasksService,
    BulkRerunService,
    EmergencyStopService,
    RerunGuardsService,
    TransformPreviewer,
  ],
})
export class TasksModule {}

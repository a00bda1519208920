import { Module } from '@nestjs/common';
import { RerunQueueModule } from '../rerun/rerun-queue.module';
import { BulkRerunController } from './bulk-rerun.controller';
import { BulkRerunService } from './bulk-rerun.service';
import { TaskCreator } from './task-creator.service';
import { TasksController } from './tasks.controller';
import { TasksService } from './tasks.service';

/** OpenHIM's tasks API (create, list, read, pause/resume/cancel, delete) and bulk rerun. */
@Module({
  imports: [RerunQueueModule],
  controllers: [TasksController, BulkRerunController],
  providers: [TaskCreator, TasksService, BulkRerunService],
})
export class TasksModule {}

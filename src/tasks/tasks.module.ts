import { Module } from '@nestjs/common';

// Placeholder: replaced by the tasks API (issue 4).
@Module({})
export class TasksModule {}

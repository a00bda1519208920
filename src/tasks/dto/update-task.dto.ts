import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Allow, IsOptional } from 'class-validator';
import { isTaskStatus, TASK_STATUSES, TaskStatus } from '../../domain/task-status';
import { Check, describeValue, HEX_ID } from '../validation/checks';

/**
 * The console sends `{_id, status}`; a client that echoes the whole task back is accepted too,
 * but only `status` changes (the other task fields are ignored).
 */
export class UpdateTaskDto {
  @ApiProperty({
    description: 'Paused (pause), Queued (resume) or Cancelled (cancel). Setting the current status again is a no-op.',
    enum: ['Paused', 'Queued', 'Cancelled'],
    example: 'Paused',
  })
  @Check('isTaskStatus', isTaskStatus, (value, property) =>
    value === undefined
      ? `${property} is required`
      : `${property} must be one of ${TASK_STATUSES.join(', ')} (got ${describeValue(value)})`,
  )
  status: TaskStatus;

  @ApiPropertyOptional({
    description: 'The task id (when given, it must be the one in the path).',
    example: '5f1d7a3c9b1e8a0012345678',
  })
  @IsOptional()
  @Check(
    'isHexId',
    (value) => typeof value === 'string' && HEX_ID.test(value),
    (value, property) => `${property} must be a 24-character hex id (got ${describeValue(value)})`,
  )
  _id?: string;

  // The task's own fields, as a client that read the task may echo them back: accepted, ignored.
  @Allow() transactions?: unknown;
  @Allow() created?: unknown;
  @Allow() completedDate?: unknown;
  @Allow() user?: unknown;
  @Allow() remainingTransactions?: unknown;
  @Allow() totalTransactions?: unknown;
  @Allow() totalFilteredTransactions?: unknown;
  @Allow() batchSize?: unknown;
  @Allow() ratePerSecond?: unknown;
  @Allow() pauseAfterFailures?: unknown;
  @Allow() autoResume?: unknown;
  @Allow() notify?: unknown;
  @Allow() startAt?: unknown;
  @Allow() rerunOf?: unknown;
  @Allow() transform?: unknown;
  @Allow() history?: unknown;
  @Allow() __v?: unknown;
}

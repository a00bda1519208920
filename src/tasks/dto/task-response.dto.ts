import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { HISTORY_ACTIONS, HISTORY_LIMIT } from '../../domain/task-history';
import { ITEM_STATUSES, TASK_STATUSES } from '../../domain/task-status';

/** Documentation of the response shapes (OpenHIM's task document). */
export class TaskTransactionView {
  @ApiProperty({ example: '65f0c0ffee0000000000a001' }) _id: string;
  @ApiProperty({ description: 'The transaction rerun', example: '5bb777777bbb66cc5d4444ee' }) tid: string;
  @ApiProperty({ enum: ITEM_STATUSES, example: 'Completed' }) tstatus: string;
  @ApiPropertyOptional({ example: 'Transaction 5bb777777bbb66cc5d4444ee could not be found' }) error?: string;
  @ApiPropertyOptional({
    description: 'Id of the child transaction the rerun created',
    example: '65f0c0ffee0000000000b001',
  })
  rerunID?: string;
  @ApiPropertyOptional({ description: "The child transaction's status", example: 'Successful' }) rerunStatus?: string;
}

export class TaskView {
  @ApiProperty({ example: '65f0c0ffee0000000000c001' }) _id: string;
  @ApiProperty({ enum: TASK_STATUSES, example: 'Queued' }) status: string;
  @ApiProperty({ example: '2024-05-01T10:00:00.000Z' }) created: string;
  @ApiPropertyOptional({ example: '2024-05-01T10:05:00.000Z' }) completedDate?: string;
  @ApiProperty({ description: "Creator's email", example: 'root@openhim.org' }) user: string;
  @ApiProperty({ example: 3 }) remainingTransactions: number;
  @ApiProperty({ example: 3 }) totalTransactions: number;
  @ApiProperty({ example: 2 }) batchSize: number;
  @ApiPropertyOptional({ description: 'Beyond OpenHIM: reruns started per second at most', example: 20 })
  ratePerSecond?: number;
  @ApiPropertyOptional({
    description: 'Beyond OpenHIM: the engine pauses the task after this many failed reruns in a row (0: never)',
    example: 20,
  })
  pauseAfterFailures?: number;
  @ApiPropertyOptional({
    description: 'Beyond OpenHIM: auto-pause leaves the task waiting for its channel, resumed by a successful probe',
    example: true,
  })
  autoResume?: boolean;
  @ApiPropertyOptional({
    description: 'Beyond OpenHIM: no rerun starts before this',
    example: '2026-12-03T22:00:00.000Z',
  })
  startAt?: string;
  @ApiPropertyOptional({
    description: 'Beyond OpenHIM: the task whose failed transactions this task reruns',
    example: '65f0c0ffee0000000000c000',
  })
  rerunOf?: string;
  @ApiPropertyOptional({ example: 0 }) __v?: number;
}

export class TaskHistoryEntryView {
  @ApiProperty({ example: '2026-12-03T10:00:00.000Z' }) at: string;
  @ApiProperty({ enum: HISTORY_ACTIONS, example: 'cancelled' }) action: string;
  @ApiPropertyOptional({ description: 'Who did it (absent for what the engine does)', example: 'root@openhim.org' })
  user?: string;
  @ApiPropertyOptional({
    description: 'Why (auto-paused: the count and the last error; created: the source of a rerun of failures)',
    example: '20 reruns in a row failed; the last: OpenHIM answered 500',
  })
  reason?: string;
}

export class TaskDetailView extends TaskView {
  @ApiPropertyOptional({
    type: [TaskHistoryEntryView],
    description: `Beyond OpenHIM: who did what, when; newest last, at most ${HISTORY_LIMIT} entries`,
  })
  history?: TaskHistoryEntryView[];
  @ApiProperty({
    type: [TaskTransactionView],
    description: "The filtered page of the task's transactions, in task order",
  })
  transactions: TaskTransactionView[];
  @ApiProperty({ description: 'How many transactions match the filters (all pages)', example: 3 })
  totalFilteredTransactions: number;
}

export class BulkRerunResponse {
  @ApiProperty({ example: true }) success: boolean;
  @ApiProperty({ example: 'Tasks created for bulk rerun of transactions' }) message: string;
}

export class BulkRerunDryRunResponse {
  @ApiProperty({ example: true }) dryRun: boolean;
  @ApiProperty({ description: 'Transactions matching the filters', example: 25000 }) count: number;
  @ApiProperty({
    description: 'Sizes of the tasks that would be created, oldest transactions first',
    example: [10000, 10000, 5000],
  })
  tasks: number[];
}

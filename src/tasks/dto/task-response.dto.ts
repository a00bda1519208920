import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { HISTORY_ACTIONS, HISTORY_LIMIT } from '../../domain/task-history';
import { ITEM_STATUSES, TASK_STATUSES } from '../../domain/task-status';
import { SAMPLE_FHIR_TRANSFORM, TRANSFORM_SCHEMA } from './transform-docs';

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
  @ApiPropertyOptional({
    description: 'Beyond OpenHIM, for a task that transforms its requests: the SHA-256 (hex) of the body sent',
    example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
  })
  bodySha256?: string;
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
    description: "Beyond OpenHIM: contact groups e-mailed about the task's events",
    example: ['lab-operators'],
  })
  notify?: string[];
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
  @ApiPropertyOptional({
    ...TRANSFORM_SCHEMA,
    description:
      "Beyond OpenHIM: the task's transform, as given (normalised: flags filled in), applied to each rerun request " +
      'before it is sent',
    example: SAMPLE_FHIR_TRANSFORM,
  })
  transform?: Record<string, unknown>;
  @ApiPropertyOptional({ example: 0 }) __v?: number;
}

export class TaskHistoryEntryView {
  @ApiProperty({ example: '2026-12-03T10:00:00.000Z' }) at: string;
  @ApiProperty({ enum: HISTORY_ACTIONS, example: 'cancelled' }) action: string;
  @ApiPropertyOptional({ description: 'Who did it (absent for what the engine does)', example: 'root@openhim.org' })
  user?: string;
  @ApiPropertyOptional({
    description:
      'Why (auto-paused: the count and the last error; created: the source of a rerun of failures, and whether ' +
      'and how the task transforms its requests)',
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

/** One request of a preview, as the rerun sends it. */
export class PreviewRequestView {
  @ApiProperty({ description: 'TCP for a transaction of a tcp/tls channel (only its body is sent)', example: 'POST' })
  method: string;
  @ApiProperty({
    description: "Path and query string (a tcp/tls channel: the channel's host:port)",
    example: '/fhir/Patient',
  })
  path: string;
  @ApiProperty({
    description:
      'The headers sent (with clientID and parentID), except taskID (the id of a task not created) and ' +
      'content-length (computed from the body sent)',
    example: { 'content-type': 'application/fhir+json', clientID: '5bb777777bbb66cc5d4444aa' },
    type: 'object',
    additionalProperties: { oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
  })
  headers: Record<string, string | string[]>;
  @ApiPropertyOptional({
    description: 'The body (methods without one: absent)',
    example: '{"resourceType":"Patient","identifier":[{"system":"http://old.example.org/id","value":"123"}]}',
  })
  body?: string;
}

export class PreviewSampleView {
  @ApiProperty({ example: '5bb777777bbb66cc5d4444ee' }) tid: string;
  @ApiProperty({
    type: PreviewRequestView,
    nullable: true,
    description: 'The request without the transform (null: the transaction does not exist)',
  })
  before: PreviewRequestView | null;
  @ApiProperty({
    type: PreviewRequestView,
    nullable: true,
    description: 'The request with the transform and the edit (null: it would not be sent, see error)',
  })
  after: PreviewRequestView | null;
  @ApiPropertyOptional({
    description: 'Why it would end failed, unsent: the error its item would record',
    example: 'The transform could not be applied: transform.body[0] (test /resourceType) failed: Test operation failed',
  })
  error?: string;
}

/** What `dryRun` answers with a preview (POST /tasks; POST /bulkrerun adds it to its plan). */
export class TransformPreviewFields {
  @ApiProperty({ description: 'Transactions previewed: all of the task (or that the filters match)', example: 120 })
  matched: number;
  @ApiProperty({ description: 'Those whose request the transform (or an edit) changes', example: 110 })
  applies: number;
  @ApiProperty({ description: 'Those sent as they are (the transform changes nothing in them)', example: 4 })
  unchanged: number;
  @ApiProperty({
    description: 'Those that would end failed, unsent: the transform cannot be applied, or the transaction is missing',
    example: 6,
  })
  fails: number;
  @ApiProperty({ type: [PreviewSampleView], description: 'The first previewLimit transactions, in task order' })
  samples: PreviewSampleView[];
}

export class TransformPreviewResponse extends TransformPreviewFields {
  @ApiProperty({ example: true }) dryRun: boolean;
}

export class BulkRerunDryRunResponse {
  @ApiProperty({ example: true }) dryRun: boolean;
  @ApiProperty({ description: 'Transactions matching the filters', example: 25000 }) count: number;
  @ApiProperty({
    description: 'Sizes of the tasks that would be created, oldest transactions first',
    example: [10000, 10000, 5000],
    type: [Number],
  })
  tasks: number[];
  @ApiPropertyOptional({
    description: 'With transform, edits or previewLimit (the preview, as POST /tasks with dryRun): transactions read',
    example: 25000,
  })
  matched?: number;
  @ApiPropertyOptional({ description: 'The preview: requests the transform changes', example: 24000 })
  applies?: number;
  @ApiPropertyOptional({ description: 'The preview: requests sent as they are', example: 990 })
  unchanged?: number;
  @ApiPropertyOptional({ description: 'The preview: items that would end failed, unsent', example: 10 })
  fails?: number;
  @ApiPropertyOptional({
    type: [PreviewSampleView],
    description: 'The preview: the first previewLimit transactions, oldest first',
  })
  samples?: PreviewSampleView[];
}

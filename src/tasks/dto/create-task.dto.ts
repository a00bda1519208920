import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';
import { AppConfig } from '../../config/app-config';
import { HasLimitChecks } from '../validation/body-validation.pipe';
import {
  IsPreviewLimit,
  PREVIEW_LIMIT_DEFAULT,
  PREVIEW_LIMIT_DESCRIPTION,
  PREVIEW_LIMIT_MAX,
  previewLimitProblems,
  RerunOptionsDto,
} from './rerun-options.dto';
import {
  batchSizeProblems,
  IsBatchSize,
  IsPositiveNumber,
  IsStrictBoolean,
  IsTidList,
  toNumberIfNumeric,
} from '../validation/checks';

/** The sample of OpenHIM's "Create Task" documentation. */
export const SAMPLE_TASK = {
  tids: ['5bb777777bbb66cc5d4444ee', '5ceec0bb3ca344f9a30df633', '5af732d1cbf94ba88b8f0bc0'],
  batchSize: 2,
  paused: true,
};

export class CreateTaskDto extends RerunOptionsDto implements HasLimitChecks {
  @ApiProperty({
    description:
      "Ids of the transactions to rerun (24-character hex), at most MAX_TASK_TIDS (maxItems is this service's " +
      'setting). A repeated id is rerun once, at its first position. Ids of transactions that do not exist are ' +
      'accepted and fail when the task runs (as in OpenHIM).',
    example: SAMPLE_TASK.tids,
    type: 'array',
    items: { type: 'string', pattern: '^[0-9a-fA-F]{24}$' },
    minItems: 1,
  })
  @IsTidList()
  tids: string[];

  @ApiPropertyOptional({
    description:
      "How many transactions of this task are rerun at once (default 1, at most MAX_BATCH_SIZE: maximum is this service's setting).",
    example: SAMPLE_TASK.batchSize,
    type: 'integer',
    minimum: 1,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @IsBatchSize()
  batchSize?: number;

  @ApiPropertyOptional({
    description: 'Create the task Paused: it does not run until resumed with PUT /tasks/{id} {"status":"Queued"}.',
    example: SAMPLE_TASK.paused,
  })
  @IsOptional()
  @IsStrictBoolean()
  paused?: boolean;

  @ApiPropertyOptional({
    description:
      'Beyond OpenHIM: at most this many reruns of this task start per second, a number above 0 (default: no limit).',
    example: 20,
    type: 'number',
    minimum: 0,
    exclusiveMinimum: true,
  })
  @IsOptional()
  @IsPositiveNumber()
  ratePerSecond?: number;

  @ApiPropertyOptional({
    description:
      'Beyond OpenHIM: create nothing; answer 200 with a preview of the requests as the task would send them ' +
      '(with its transform and edits): how many of the transactions the transform applies to, fails on (they ' +
      'would end failed, unsent; a transaction that does not exist counts here too) or leaves unchanged, and ' +
      'the first previewLimit requests before and after. The checks of a creation apply (400, 403); only users ' +
      'in a group of TRANSFORM_GROUPS may preview (the preview shows request bodies).',
    example: false,
  })
  @IsOptional()
  @IsStrictBoolean()
  dryRun?: boolean;

  @ApiPropertyOptional({
    description: PREVIEW_LIMIT_DESCRIPTION,
    example: PREVIEW_LIMIT_DEFAULT,
    type: 'integer',
    minimum: 0,
    maximum: PREVIEW_LIMIT_MAX,
    default: PREVIEW_LIMIT_DEFAULT,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @IsPreviewLimit()
  previewLimit?: number;

  limitProblems(config: AppConfig): string[] {
    const problems: string[] = [...previewLimitProblems(this)];
    if (this.tids.length > config.MAX_TASK_TIDS) {
      problems.push(`tids may contain at most ${config.MAX_TASK_TIDS} transaction ids (got ${this.tids.length})`);
    }
    return [...problems, ...batchSizeProblems(this.batchSize, config)];
  }
}

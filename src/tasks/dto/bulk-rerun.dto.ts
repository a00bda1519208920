import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';
import { AppConfig } from '../../config/app-config';
import { isPlainObject } from '../filters/query-params';
import { HasLimitChecks } from '../validation/body-validation.pipe';
import {
  Check,
  describeValue,
  IsBatchSize,
  IsPositiveNumber,
  IsStrictBoolean,
  toNumberIfNumeric,
} from '../validation/checks';

export const SAMPLE_BULK_RERUN = {
  filters: {
    channelID: '5bb777777bbb66cc5d4444aa',
    status: 'Failed',
    'request.timestamp': '{"$gte":"2024-05-01T00:00:00.000Z","$lte":"2024-05-02T00:00:00.000Z"}',
  },
  batchSize: 2,
  pauseQueue: false,
};

export class BulkRerunDto implements HasLimitChecks {
  @ApiProperty({
    description:
      'Transaction filters (all optional, combined with AND): channelID, clientID (24-hex ids); status ' +
      '(a transaction status, or {"$in":[...]}); request.timestamp (a date range {"$gte","$gt","$lte","$lt"} ' +
      'as an object or a JSON string, as the console sends it); request.method; request.path (literal text, ' +
      'case-insensitive, matched anywhere in the path); response.status (404, "404" or a class like "5xx"). ' +
      'Use {} to select every transaction.',
    example: SAMPLE_BULK_RERUN.filters,
    type: 'object',
    additionalProperties: true,
  })
  @Check('isFilterObject', isPlainObject, (value, property) =>
    value === undefined
      ? `${property} is required (use {} to select every transaction)`
      : `${property} must be a JSON object (got ${describeValue(value)})`,
  )
  filters: Record<string, unknown>;

  @ApiPropertyOptional({
    description: 'batchSize of every task created (default 1).',
    example: SAMPLE_BULK_RERUN.batchSize,
    minimum: 1,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @IsBatchSize()
  batchSize?: number;

  @ApiPropertyOptional({ description: 'Create the tasks Paused.', example: SAMPLE_BULK_RERUN.pauseQueue })
  @IsOptional()
  @IsStrictBoolean()
  pauseQueue?: boolean;

  @ApiPropertyOptional({
    description:
      'Beyond OpenHIM: answer how many transactions match and the tasks that would be created; create nothing.',
    example: false,
  })
  @IsOptional()
  @IsStrictBoolean()
  dryRun?: boolean;

  @ApiPropertyOptional({ description: 'Beyond OpenHIM: ratePerSecond of every task created.', example: 20 })
  @IsOptional()
  @IsPositiveNumber()
  ratePerSecond?: number;

  limitProblems(config: AppConfig): string[] {
    return this.batchSize !== undefined && this.batchSize > config.MAX_BATCH_SIZE
      ? [`batchSize must be at most ${config.MAX_BATCH_SIZE} (got ${this.batchSize})`]
      : [];
  }
}

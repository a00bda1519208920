import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';
import { AppConfig } from '../../config/app-config';
import { isPlainObject } from '../validation/checks';
import { MAX_REGEX_LENGTH } from '../filters/transaction-filters';
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

/** What OpenHIM's console sends: the transaction list's filters as a JSON string, and its paging (ignored). */
export const CONSOLE_BULK_RERUN = {
  filters: JSON.stringify({
    status: 'Failed',
    'request.timestamp': JSON.stringify({ $gte: '2024-05-01T00:00:00.000Z', $lte: '2024-05-02T00:00:00.000Z' }),
    childIDs: JSON.stringify({ $eq: [] }),
    'request.path': '^/fhir/Patient',
  }),
  filterLimit: 1000,
  filterPage: 0,
  batchSize: 2,
  pauseQueue: true,
};

const isFilters = (value: unknown) => isPlainObject(value) || typeof value === 'string';
const isPagingNumber = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const pagingMessage = (value: unknown, property: string) =>
  `${property} must be a whole number, 0 or more (got ${describeValue(value)}); it is accepted and ignored, as in OpenHIM`;

export class BulkRerunDto extends RerunOptionsDto implements HasLimitChecks {
  @ApiProperty({
    description:
      "The transaction list's filters, as an object or, as OpenHIM's console sends them, as a JSON string of " +
      'one. All optional, combined with AND: channelID, clientID (24-hex ids); status (a transaction status, or ' +
      '{"$in":[...]}); request.timestamp (a date range {"$gte","$gt","$lte","$lt"}, an object or a JSON string); ' +
      `request.path, request.querystring (case-insensitive regular expressions, at most ${MAX_REGEX_LENGTH} ` +
      'characters); request.host, request.port, request.method; response.status (404, "404" or a class like ' +
      '"5xx"); childIDs ({"$exists":true,"$ne":[]} for reruns only, {"$eq":[]} for the others; also $size and ' +
      '$not:{$size}; an object or a JSON string); properties ({"key":"value"}, or {"key":null}: the property ' +
      'exists); routes.<f> and orchestrations.<f> (any route / orchestration matching) with <f> one of name, ' +
      'request.host, request.port, request.path, request.querystring (regular expressions), request.method, ' +
      'response.status. Other keys and operators are refused. Use {} to select every transaction.',
    oneOf: [{ type: 'object', additionalProperties: true }, { type: 'string' }],
    example: SAMPLE_BULK_RERUN.filters,
  })
  @Check('isFilters', isFilters, (value, property) =>
    value === undefined
      ? `${property} is required (use {} to select every transaction)`
      : `${property} must be a JSON object, or a JSON string of one (got ${describeValue(value)})`,
  )
  filters: Record<string, unknown> | string;

  @ApiPropertyOptional({
    description:
      'Sent by the console (1000); accepted and ignored, as in OpenHIM: every matching transaction is rerun.',
    example: 1000,
    type: 'integer',
    minimum: 0,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @Check('isPagingNumber', isPagingNumber, pagingMessage)
  filterLimit?: number;

  @ApiPropertyOptional({
    description: 'Sent by the console (0); accepted and ignored, as in OpenHIM.',
    example: 0,
    type: 'integer',
    minimum: 0,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @Check('isPagingNumber', isPagingNumber, pagingMessage)
  filterPage?: number;

  @ApiPropertyOptional({
    description:
      "batchSize of every task created (default 1, at most MAX_BATCH_SIZE: maximum is this service's setting).",
    example: SAMPLE_BULK_RERUN.batchSize,
    type: 'integer',
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
      'Beyond OpenHIM: answer how many transactions match and the tasks that would be created; create nothing. ' +
      'With transform, edits or previewLimit, the answer adds the preview of POST /tasks with dryRun (every ' +
      'matching transaction is read and counted; the samples are the oldest first, as the tasks would rerun ' +
      'them); only users in a group of TRANSFORM_GROUPS may ask for it (403).',
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

  @ApiPropertyOptional({
    description: 'Beyond OpenHIM: ratePerSecond of every task created, a number above 0 (default: no limit).',
    example: 20,
    type: 'number',
    minimum: 0,
    exclusiveMinimum: true,
  })
  @IsOptional()
  @IsPositiveNumber()
  ratePerSecond?: number;

  limitProblems(config: AppConfig): string[] {
    return [...batchSizeProblems(this.batchSize, config), ...previewLimitProblems(this)];
  }
}

import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsOptional, IsString, Length } from 'class-validator';
import { Check, describeValue, IsIsoDateTime, IsNonNegativeInteger, toNumberIfNumeric } from '../validation/checks';
import type { ItemEdit, TransformSpec } from '../../rerun/transform/request-transform';
import {
  InvalidTransformError,
  MAX_EDITS,
  validateEdits,
  validateTransform,
} from '../../rerun/transform/request-transform';
import { EDITS_SCHEMA, SAMPLE_EDITS, SAMPLE_FHIR_TRANSFORM, TRANSFORM_SCHEMA } from './transform-docs';

/** Options of the tasks `POST /tasks` and `POST /bulkrerun` create (beyond OpenHIM). */
export class RerunOptionsDto {
  @ApiPropertyOptional({
    description:
      'Beyond OpenHIM: the task is paused by the engine when this many of its reruns end failed in a row ' +
      '(rerunStatus Failed or an error: the downstream is still down). Default AUTO_PAUSE_AFTER_FAILURES; 0: never.',
    example: 20,
    type: 'integer',
    minimum: 0,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @IsNonNegativeInteger()
  pauseAfterFailures?: number;

  @ApiPropertyOptional({
    description:
      'Beyond OpenHIM: no rerun of the task starts before this time (ISO 8601 with a time zone). The task is ' +
      'Queued meanwhile and can be paused, resumed or cancelled; a time in the past starts at once.',
    example: '2026-12-03T22:00:00Z',
    type: 'string',
    format: 'date-time',
  })
  @IsOptional()
  @IsIsoDateTime()
  startAt?: string;

  @ApiPropertyOptional({
    description:
      'Beyond OpenHIM: when the engine pauses the task for pauseAfterFailures, the task waits for the channel of ' +
      'its last failure like the tasks its circuit breaker pauses, and resumes by itself once a probe of that ' +
      'channel succeeds (history entry auto-resumed). Default false.',
    example: true,
    type: 'boolean',
  })
  @IsOptional()
  @IsBoolean({ message: 'autoResume must be true or false' })
  autoResume?: boolean;

  @ApiPropertyOptional({
    description:
      "Beyond OpenHIM (notifications): OpenHIM contact groups e-mailed about this task's events instead of " +
      'NOTIFY_GROUPS (`[]`: none). A group that does not exist is a 400.',
    example: ['lab-operators'],
    type: [String],
  })
  @IsOptional()
  @IsArray({ message: 'notify must be an array of at most 20 contact group names' })
  @ArrayMaxSize(20, { message: 'notify must be an array of at most 20 contact group names' })
  @IsString({ each: true, message: 'notify must be an array of at most 20 contact group names' })
  @Length(1, 200, { each: true, message: 'notify must hold names of 1 to 200 characters' })
  notify?: string[];

  @ApiPropertyOptional({
    ...TRANSFORM_SCHEMA,
    description:
      'Beyond OpenHIM ("Fix, then rerun"): applied by the worker to each rerun request just before it is sent; ' +
      'the original transaction is never changed. One or more of: `body`, a JSON Patch (RFC 6902) for JSON ' +
      'bodies (application/json, application/fhir+json, any +json); `bodyReplace`, a regular expression ' +
      'replacement for text bodies (HL7 v2, XML, CSV; not with `body`); `headers`, `{set, remove}`; `path`, a ' +
      'regular expression replacement on the path and query string. A request the transform cannot be applied to ' +
      "(a patch's `test` fails, a path is missing, the body is not JSON) is not sent: its item ends failed with " +
      "an error naming the operation. Only users in a group of TRANSFORM_GROUPS may send it (403). The task's " +
      'GET shows it, its history says that it transforms its requests. See the examples of the request body.',
    example: SAMPLE_FHIR_TRANSFORM,
  })
  @IsOptional()
  @Check(
    'isTransform',
    (value) => !problemOf(() => validateTransform(value)),
    (value) => problemOf(() => validateTransform(value))!,
  )
  transform?: TransformSpec;

  @ApiPropertyOptional({
    ...EDITS_SCHEMA,
    description:
      'Beyond OpenHIM: explicit replacements for single transactions, at most ' +
      `${MAX_EDITS}: \`{tid, body?, headers?}\`, \`body\` the whole new body (a string; no body transform ` +
      "applies to it), `headers` header values to set (after the transform's). Each `tid` must be one of the " +
      "task's (POST /tasks: of `tids`; POST /bulkrerun: of the transactions the filters match), else 400. Only " +
      'users in a group of TRANSFORM_GROUPS may send them (403).',
    example: SAMPLE_EDITS,
  })
  @IsOptional()
  @Check(
    'isEdits',
    (value) => !problemOf(() => validateEdits(value, MAX_EDITS)),
    (value) => problemOf(() => validateEdits(value, MAX_EDITS))!,
  )
  edits?: ItemEdit[];
}

/** The message of the InvalidTransformError `validate` throws (it names the field), or undefined. */
function problemOf(validate: () => unknown): string | undefined {
  try {
    validate();
    return undefined;
  } catch (error) {
    if (error instanceof InvalidTransformError) return error.message;
    throw error;
  }
}

/** The options as a task stores them: the configured default filled in, the time parsed. */
export function resolveRerunOptions(
  options: RerunOptionsDto,
  defaults: { AUTO_PAUSE_AFTER_FAILURES: number },
): { pauseAfterFailures: number; startAt?: Date; autoResume?: boolean; notify?: string[] } {
  return {
    pauseAfterFailures: options.pauseAfterFailures ?? defaults.AUTO_PAUSE_AFTER_FAILURES,
    ...(options.notify !== undefined ? { notify: [...new Set(options.notify)] } : {}),
    ...(options.autoResume === true ? { autoResume: true } : {}),
    ...(options.startAt !== undefined ? { startAt: new Date(options.startAt) } : {}),
  };
}

/** `previewLimit` of a dry run: samples shown by default, at most. */
export const PREVIEW_LIMIT_DEFAULT = 5;
export const PREVIEW_LIMIT_MAX = 50;

/** `previewLimit`: a whole number from 0 to PREVIEW_LIMIT_MAX. */
export function IsPreviewLimit(): PropertyDecorator {
  return Check(
    'isPreviewLimit',
    (value) => Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= PREVIEW_LIMIT_MAX,
    (value, property) =>
      `${property} must be a whole number from 0 to ${PREVIEW_LIMIT_MAX} (got ${describeValue(value)})`,
  );
}

/** The swagger description of `previewLimit`. */
export const PREVIEW_LIMIT_DESCRIPTION =
  `Beyond OpenHIM: with dryRun, how many of the first transactions the preview shows before and after ` +
  `(default ${PREVIEW_LIMIT_DEFAULT}, at most ${PREVIEW_LIMIT_MAX}); only with dryRun: true.`;

/** A cross-field problem of a body: `previewLimit` without `dryRun: true`. */
export function previewLimitProblems(dto: { dryRun?: boolean; previewLimit?: number }): string[] {
  return dto.previewLimit !== undefined && dto.dryRun !== true
    ? ['previewLimit is only used with dryRun: true (a preview creates nothing)']
    : [];
}

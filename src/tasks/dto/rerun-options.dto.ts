import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional } from 'class-validator';
import { IsIsoDateTime, IsNonNegativeInteger, toNumberIfNumeric } from '../validation/checks';

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
}

/** The options as a task stores them: the configured default filled in, the time parsed. */
export function resolveRerunOptions(
  options: RerunOptionsDto,
  defaults: { AUTO_PAUSE_AFTER_FAILURES: number },
): { pauseAfterFailures: number; startAt?: Date; autoResume?: boolean } {
  return {
    pauseAfterFailures: options.pauseAfterFailures ?? defaults.AUTO_PAUSE_AFTER_FAILURES,
    ...(options.autoResume === true ? { autoResume: true } : {}),
    ...(options.startAt !== undefined ? { startAt: new Date(options.startAt) } : {}),
  };
}

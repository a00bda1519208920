import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { HasLimitChecks } from '../validation/body-validation.pipe';
import { Check, describeValue } from '../validation/checks';

/** A limit of the body: absent (the default applies) or a whole number, 0 (no limit) or more. */
const IsLimit = () =>
  Check(
    'isLimit',
    (value) => value === undefined || (Number.isSafeInteger(value) && (value as number) >= 0),
    (value, property) => `${property} must be a non-negative integer (got ${describeValue(value)})`,
  );

export const NO_LIMIT_GIVEN =
  'The body must set maxInFlight, maxPerSecond or both (DELETE /rerun-guards/:channelId removes them)';

/** The body of PUT /rerun-guards/:channelId: the channel's limits, both replaced. */
export class SetGuardLimitsDto implements HasLimitChecks {
  @ApiPropertyOptional({
    description:
      'Reruns in flight to the channel at most, across every task and worker (0: no limit). Left out: ' +
      'GUARD_MAX_IN_FLIGHT applies.',
    example: 5,
    type: 'integer',
    minimum: 0,
  })
  @IsLimit()
  maxInFlight?: number;

  @ApiPropertyOptional({
    description:
      'Reruns started per second to the channel at most, across every task and worker (0: no limit). Left out: ' +
      'GUARD_MAX_PER_SECOND applies.',
    example: 20,
    type: 'integer',
    minimum: 0,
  })
  @IsLimit()
  maxPerSecond?: number;

  /** Not a configured limit: a body that sets neither field (the pipe asks once the fields are valid). */
  limitProblems(): string[] {
    return this.maxInFlight === undefined && this.maxPerSecond === undefined ? [NO_LIMIT_GIVEN] : [];
  }
}

export class OwnLimitsView {
  @ApiPropertyOptional({ description: 'Set for the channel (absent: the default applies)', example: 5 })
  maxInFlight?: number;
  @ApiPropertyOptional({ description: 'Set for the channel (absent: the default applies)', example: 20 })
  maxPerSecond?: number;
}

export class BreakerView {
  @ApiProperty({
    enum: ['closed', 'open'],
    description: 'open: reruns to the channel wait (its tasks are paused) until a probe succeeds',
    example: 'open',
  })
  state: 'closed' | 'open';
  @ApiProperty({ description: 'Reruns to the channel that ended failed in a row, across every task', example: 20 })
  failures: number;
  @ApiPropertyOptional({ description: 'The last failure', example: 'OpenHIM answered 502' }) lastError?: string;
  @ApiPropertyOptional({ description: 'When it opened', example: '2026-12-03T09:41:00.000Z' }) openedAt?: string;
  @ApiPropertyOptional({ description: 'When the next probe is due', example: '2026-12-03T09:41:30.000Z' })
  nextProbeAt?: string;
  @ApiPropertyOptional({
    description: 'The wait before the next probe (doubles after each failed one)',
    example: 30000,
  })
  backoffMs?: number;
  @ApiProperty({ description: 'A worker is sending a probe now', example: false }) probing: boolean;
}

/** A channel's downstream guard, as GET /rerun-guards lists them. */
export class RerunGuardView {
  @ApiProperty({ example: '5bb777777bbb66cc5d4444aa' }) channelID: string;
  @ApiPropertyOptional({ description: "The channel's name (absent when the channel is gone)", example: 'Lab results' })
  name?: string;
  @ApiProperty({
    description: 'Reruns in flight at most, in force (its own, else the default; 0: no limit)',
    example: 5,
  })
  maxInFlight: number;
  @ApiProperty({ description: 'Reruns started per second at most, in force (0: no limit)', example: 20 })
  maxPerSecond: number;
  @ApiProperty({ type: OwnLimitsView, description: "The channel's own limits, as set with PUT" })
  own: OwnLimitsView;
  @ApiProperty({ description: 'Reruns in flight to the channel now (0 when no limit is in force)', example: 3 })
  inFlight: number;
  @ApiProperty({ type: BreakerView }) breaker: BreakerView;
  @ApiProperty({
    description:
      'Tasks waiting for the channel: Paused by its breaker (or auto-paused with autoResume), or whose reruns wait ' +
      'for a permit now',
    example: ['65f0c0ffee0000000000c001'],
  })
  waitingTasks: string[];
  @ApiPropertyOptional({ description: 'Who set the limits last', example: 'root@openhim.org' }) updatedBy?: string;
  @ApiPropertyOptional({ description: 'When', example: '2026-12-03T09:45:00.000Z' }) updatedAt?: string;
}

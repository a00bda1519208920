import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { Check, describeValue, HEX_ID } from '../validation/checks';

/** The longest reason a stop may give (it is copied into the history of every task it pauses). */
export const MAX_REASON_LENGTH = 500;

const IsChannelId = () =>
  Check(
    'isChannelId',
    (value) => typeof value === 'string' && HEX_ID.test(value),
    (value, property) => `${property} must be a 24-character hex channel id (got ${describeValue(value)})`,
  );

/** The body of POST /tasks/pause-all. */
export class PauseAllDto {
  @ApiProperty({
    description: `Why (1 to ${MAX_REASON_LENGTH} characters, not only spaces): copied into the history of every task the stop pauses.`,
    example: 'Downstream EMR down since 09:40, incident 4711',
    minLength: 1,
    maxLength: MAX_REASON_LENGTH,
  })
  @Check(
    'isReason',
    (value) => typeof value === 'string' && value.trim().length > 0 && value.length <= MAX_REASON_LENGTH,
    (value, property) => {
      if (value === undefined) return `${property} is required`;
      if (typeof value !== 'string') return `${property} must be a string (got ${describeValue(value)})`;
      if (!value.trim()) return `${property} must not be empty`;
      return `${property} must be at most ${MAX_REASON_LENGTH} characters (got ${value.length})`;
    },
  )
  reason: string;

  @ApiPropertyOptional({
    description:
      'Only the tasks with transactions still to rerun on this channel (and later tasks on it); default: every task.',
    example: '5bb777777bbb66cc5d4444aa',
  })
  @IsOptional()
  @IsChannelId()
  channelID?: string;
}

/** The optional body of POST /tasks/resume-all. */
export class ResumeAllDto {
  @ApiPropertyOptional({
    description:
      'Lift the hold on this channel (the one pause-all with this channelID put); default: the hold on every task.',
    example: '5bb777777bbb66cc5d4444aa',
  })
  @IsOptional()
  @IsChannelId()
  channelID?: string;
}

export class HoldView {
  @ApiProperty({ description: 'The hold', example: '65f0c0ffee0000000000e001' }) _id: string;
  @ApiProperty({ enum: ['all', 'channel'], description: 'Every task, or the tasks of one channel', example: 'all' })
  scope: 'all' | 'channel';
  @ApiPropertyOptional({ description: 'With scope channel', example: '5bb777777bbb66cc5d4444aa' }) channelID?: string;
  @ApiProperty({ example: 'Downstream EMR down since 09:40, incident 4711' }) reason: string;
  @ApiProperty({ description: 'Who stopped', example: 'root@openhim.org' }) user: string;
  @ApiProperty({ description: 'When the stop was (last) requested', example: '2026-12-03T09:41:00.000Z' }) at: string;
}

export class PauseAllResponse {
  @ApiProperty({
    description: 'Ids of the tasks this request paused (those already Paused, or finished, are not listed)',
    example: ['65f0c0ffee0000000000c001', '65f0c0ffee0000000000c002'],
  })
  paused: string[];
  @ApiProperty({
    type: HoldView,
    description: 'The hold now in force: tasks created or adopted later that it covers start Paused',
  })
  hold: HoldView;
}

export class ResumeAllResponse {
  @ApiProperty({
    description:
      'Ids of the tasks resumed: those the stop paused that were still Paused (not those a person paused, resumed or cancelled)',
    example: ['65f0c0ffee0000000000c001'],
  })
  resumed: string[];
}

import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsOptional } from 'class-validator';
import { AppConfig } from '../../config/app-config';
import { HasLimitChecks } from '../validation/body-validation.pipe';
import { batchSizeProblems, IsBatchSize, IsStrictBoolean, toNumberIfNumeric } from '../validation/checks';

/** The optional body of POST /tasks/:id/rerun-failed. */
export class RerunFailedDto implements HasLimitChecks {
  @ApiPropertyOptional({
    description: "batchSize of the new task (default: the source task's).",
    example: 2,
    type: 'integer',
    minimum: 1,
  })
  @IsOptional()
  @Transform(toNumberIfNumeric)
  @IsBatchSize()
  batchSize?: number;

  @ApiPropertyOptional({ description: 'Create the new task Paused (default false).', example: false })
  @IsOptional()
  @IsStrictBoolean()
  paused?: boolean;

  limitProblems(config: AppConfig): string[] {
    return batchSizeProblems(this.batchSize, config);
  }
}

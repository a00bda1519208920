import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { ApiSessionOriginRefusal, Auth, CurrentUser } from '../auth/auth.decorators';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import { BULK_RERUN_STARTED, BulkRerunService } from './bulk-rerun.service';
import { BulkRerunDto, CONSOLE_BULK_RERUN, SAMPLE_BULK_RERUN } from './dto/bulk-rerun.dto';
import { BulkRerunDryRunResponse, BulkRerunResponse } from './dto/task-response.dto';
import { ApiTextErrors } from './swagger-responses';
import { SAMPLE_FHIR_TRANSFORM, SAMPLE_HEADERS_AND_PATH_TRANSFORM, SAMPLE_HL7_TRANSFORM } from './dto/transform-docs';
import { TRANSFORM_FORBIDDEN } from './task-transforms';
import { DISABLED_CHANNELS } from './task-creator.service';
import { QUEUE_UNAVAILABLE } from './queue-unavailable';
import { BodyValidationPipe } from './validation/body-validation.pipe';
import { JSON_REQUIRED, JsonBodyGuard } from './validation/json-body.guard';

@ApiTags('tasks')
@Controller('bulkrerun')
export class BulkRerunController {
  constructor(private readonly bulkRerun: BulkRerunService) {}

  @Post()
  @Auth()
  @UseGuards(JsonBodyGuard)
  @HttpCode(200)
  @ApiOperation({
    summary: 'Rerun every transaction matching filters (OpenHIM ≥ 7.1)',
    description:
      'Selects the matching transactions that exist now, oldest request first, and creates tasks of ' +
      "BULK_RERUN_TASK_SIZE transactions each, in the background. `filters` are the transaction list's, as an " +
      "object or as the JSON string OpenHIM's console sends; its `filterLimit`/`filterPage` are accepted and " +
      'ignored, as in OpenHIM. Non-admins are limited to the channels whose txRerunAcl lists one of their ' +
      'groups (naming another channelID is a 403). With dryRun, answers the count and the planned task sizes ' +
      'and creates nothing. Beyond OpenHIM ("Fix, then rerun"): `transform` and `edits` as in POST /tasks (users ' +
      'of TRANSFORM_GROUPS only): every task created gets the transform, and the edits of its own transactions; an ' +
      'edit of a transaction the filters do not match is a 400. With dryRun and transform, edits or previewLimit, ' +
      'the answer adds the preview of POST /tasks (all the matching transactions counted).',
  })
  @ApiConsumes('application/json')
  @ApiBody({
    type: BulkRerunDto,
    examples: {
      sample: { value: SAMPLE_BULK_RERUN },
      console: { summary: "OpenHIM's console (filters as a JSON string)", value: CONSOLE_BULK_RERUN },
      dryRun: { value: { filters: { status: 'Failed', 'response.status': '5xx' }, dryRun: true } },
      fhirJsonPatch: {
        summary: 'Fix every failed FHIR Patient of a channel with a JSON Patch',
        value: {
          filters: { channelID: '5bb777777bbb66cc5d4444aa', status: 'Failed', 'request.path': '^/fhir/Patient' },
          transform: SAMPLE_FHIR_TRANSFORM,
        },
      },
      hl7Replacement: {
        summary: 'Fix an HL7 v2 batch with a text replacement',
        value: {
          filters: { channelID: '5bb777777bbb66cc5d4444aa', status: 'Failed' },
          transform: SAMPLE_HL7_TRANSFORM,
        },
      },
      headersAndPath: {
        summary: 'Set and remove headers, rewrite the path',
        value: { filters: { status: 'Failed' }, transform: SAMPLE_HEADERS_AND_PATH_TRANSFORM },
      },
      preview: {
        summary: 'Preview a transform (plan, counts and the oldest 3 requests before and after)',
        value: { filters: { status: 'Failed' }, transform: SAMPLE_FHIR_TRANSFORM, dryRun: true, previewLimit: 3 },
      },
    },
  })
  @ApiExtraModels(BulkRerunResponse, BulkRerunDryRunResponse)
  @ApiOkResponse({
    description: 'Started (or, with dryRun, the plan; with a transform, edits or previewLimit, and the preview)',
    schema: { oneOf: [{ $ref: getSchemaPath(BulkRerunResponse) }, { $ref: getSchemaPath(BulkRerunDryRunResponse) }] },
    example: BULK_RERUN_STARTED,
  })
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      'Invalid body (a malformed JSON body, batchSize above MAX_BATCH_SIZE) or filters (unknown keys or operators, a regular expression that does not compile or is too ' +
        'long), matching transactions on a disabled or deleted channel, an invalid transform or edit (named, as ' +
        'in POST /tasks), an edit of a transaction the filters do not match, or previewLimit above 50 or without ' +
        'dryRun',
      DISABLED_CHANNELS,
    ],
    [
      403,
      'A non-admin named a channel they may not rerun; or sent transform or edits, or asked for a preview, ' +
        `without being in a group of TRANSFORM_GROUPS (\`${TRANSFORM_FORBIDDEN}\`)`,
      'Forbidden: Unauthorized channel 5bb777777bbb66cc5d4444aa',
    ],
    [413, 'The body is larger than BODY_LIMIT', 'Request body too large'],
    [415, 'The body is not application/json', JSON_REQUIRED],
    [503, 'The queue (Redis) is unavailable; nothing was created', QUEUE_UNAVAILABLE],
  )
  start(@CurrentUser() user: AuthenticatedUser, @Body(BodyValidationPipe) dto: BulkRerunDto) {
    return this.bulkRerun.start(user, dto);
  }
}

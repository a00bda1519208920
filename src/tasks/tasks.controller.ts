import {
  applyDecorators,
  Body,
  Controller,
  DefaultValuePipe,
  Delete,
  Get,
  Header,
  HttpCode,
  Logger,
  Param,
  Post,
  Put,
  Query,
  Res,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiExtraModels,
  ApiOkResponse,
  ApiResponse,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { Types } from 'mongoose';
import { ApiSessionOriginRefusal, Auth, CurrentUser } from '../auth/auth.decorators';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import { INSUFFICIENT_RERUN_PERMISSIONS } from '../auth/rerun-permissions';
import { CreateTaskDto, SAMPLE_TASK } from './dto/create-task.dto';
import { RerunFailedDto } from './dto/rerun-failed.dto';
import { TaskDetailView, TaskView, TransformPreviewResponse } from './dto/task-response.dto';
import { TRANSFORM_TASK_EXAMPLES } from './dto/transform-docs';
import { TRANSFORM_FORBIDDEN } from './task-transforms';
import type { TransformPreview } from './transform-preview.service';
import { UpdateTaskDto } from './dto/update-task.dto';
import { TASK_ITEM_PAGING, TASK_LIST_PAGING } from './filters/task-filters';
import { ApiTextErrors, ApiTextResponse } from './swagger-responses';
import { sendJson } from './json-stream';
import { DISABLED_CHANNELS } from './task-creator.service';
import { QUEUE_UNAVAILABLE } from './queue-unavailable';
import { ALLOWED_CHANGES_TEXT } from '../domain/status-changes';
import { TASK_DELETED, TASK_UPDATED, taskNotFound, TasksService } from './tasks.service';
import { BodyValidationPipe } from './validation/body-validation.pipe';
import { JSON_REQUIRED, JsonBodyGuard, OptionalJsonBodyGuard } from './validation/json-body.guard';
import { TaskIdPipe } from './validation/task-id.pipe';

const TEXT = 'text/plain; charset=utf-8';
const EXAMPLE_ID = '65f0c0ffee0000000000c001';
const notAdmin = (op: string) => `User jane@example.org is not an admin, API access to ${op} denied.`;
const BAD_ID: [number, string, string] = [
  400,
  'Malformed task id',
  'Invalid task id "abc": expected a 24-character hex id',
];
const NOT_FOUND: [number, string, string] = [404, 'No such task', taskNotFound(EXAMPLE_ID)];
const WRONG_TYPE: [number, string, string] = [415, 'The body is not application/json', JSON_REQUIRED];
const TOO_LARGE: [number, string, string] = [413, 'The body is larger than BODY_LIMIT', 'Request body too large'];
const MALFORMED_JSON = 'a malformed JSON body';

const PagingQueries = (limits: { defaultLimit: number }, what: string, zero: string) =>
  applyDecorators(
    ApiQuery({ name: 'filterPage', required: false, description: 'Page number, from 0 (default 0).', example: 0 }),
    ApiQuery({
      name: 'filterLimit',
      required: false,
      description:
        `${what} per page (default ${limits.defaultLimit}, no maximum, as in OpenHIM; 0: ${zero}). ` +
        'Large pages are streamed as they are read.',
      example: 10,
    }),
  );

@ApiTags('tasks')
@Controller('tasks')
export class TasksController {
  private readonly logger = new Logger(TasksController.name);

  constructor(private readonly tasks: TasksService) {}

  @Post()
  @Auth()
  @UseGuards(JsonBodyGuard)
  @HttpCode(201)
  @Header('Content-Type', TEXT)
  @ApiOperation({
    summary: 'Create a rerun task',
    description:
      'Reruns the given transactions (OpenHIM). Admins may rerun any transaction; other users only transactions ' +
      "of channels whose txRerunAcl lists one of their groups. The transactions leave OpenHIM's automatic retries. " +
      'The response carries `Location: /tasks/{id}`. Beyond OpenHIM ("Fix, then rerun"): `transform` and ' +
      '`edits` change the rerun requests before they are sent (users of TRANSFORM_GROUPS only), and `dryRun` ' +
      'previews them (200, nothing created).',
  })
  @ApiConsumes('application/json')
  @ApiBody({
    type: CreateTaskDto,
    examples: { sample: { summary: "OpenHIM's documentation sample", value: SAMPLE_TASK }, ...TRANSFORM_TASK_EXAMPLES },
  })
  @ApiProduces('text/plain')
  @ApiTextResponse(201, 'Created', `User root@openhim.org created task with id ${EXAMPLE_ID}`)
  @ApiExtraModels(TransformPreviewResponse)
  @ApiResponse({
    status: 200,
    description: 'dryRun: the preview of the requests; nothing was created',
    content: { 'application/json': { schema: { $ref: getSchemaPath(TransformPreviewResponse) } } },
  })
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      `Invalid body (each bad field is named; ${MALFORMED_JSON}), batch size <= 0 or above MAX_BATCH_SIZE, more ` +
        'than MAX_TASK_TIDS transactions, a transaction on a disabled or deleted channel, an invalid transform or ' +
        'edit (named: `transform.body[1].op`, an unsafe regular expression, body with bodyReplace, a header the ' +
        'rerun sets itself such as content-length, more than 1000 edits), an edit of a tid not in tids, or ' +
        'previewLimit above 50 or without dryRun',
      DISABLED_CHANNELS,
    ],
    [
      403,
      'The user may not rerun a channel of these transactions; or sent transform, edits or dryRun without being in ' +
        `a group of TRANSFORM_GROUPS (\`${TRANSFORM_FORBIDDEN}\`); nothing was created`,
      INSUFFICIENT_RERUN_PERMISSIONS,
    ],
    TOO_LARGE,
    WRONG_TYPE,
    [503, 'The queue (Redis) is unavailable; nothing was created', QUEUE_UNAVAILABLE],
  )
  async create(
    @CurrentUser() user: AuthenticatedUser,
    @Body(BodyValidationPipe) dto: CreateTaskDto,
    @Res({ passthrough: true }) response: Response,
  ): Promise<string | ({ dryRun: true } & TransformPreview)> {
    if (dto.dryRun) {
      const preview = await this.tasks.preview(user, dto);
      response.status(200).type('application/json');
      return preview;
    }
    const id = await this.tasks.create(user, dto);
    response.location(`/tasks/${id}`);
    return `User ${user.email} created task with id ${id}`;
  }

  @Post(':id/rerun-failed')
  @Auth()
  @UseGuards(OptionalJsonBodyGuard)
  @HttpCode(201)
  @Header('Content-Type', TEXT)
  @ApiOperation({
    summary: 'Rerun the failed transactions of a task (beyond OpenHIM)',
    description:
      "A new task of the items of this task that ended with rerunStatus Failed or an error, in the task's order, " +
      "with the same permission checks as POST /tasks. The body is optional (defaults: the source task's " +
      "batchSize, not paused). The new task's history names its source. The response carries `Location`. The " +
      "source's transform, and the edits of the failed items, are carried over.",
  })
  @ApiParam({ name: 'id', example: EXAMPLE_ID })
  @ApiConsumes('application/json')
  @ApiBody({
    type: RerunFailedDto,
    required: false,
    examples: { defaults: { value: {} }, paused: { value: { paused: true } } },
  })
  @ApiProduces('text/plain')
  @ApiTextResponse(201, 'Created', `User root@openhim.org created task with id ${EXAMPLE_ID}`)
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      'Malformed id, invalid body, or nothing failed in the task',
      `Task ${EXAMPLE_ID} has no failed transactions to rerun`,
    ],
    [
      403,
      'The user may not rerun a channel of these transactions; or the source task transforms its requests (its ' +
        'transform, edits of the failed items: carried over) and the user is not in a group of TRANSFORM_GROUPS',
      INSUFFICIENT_RERUN_PERMISSIONS,
    ],
    NOT_FOUND,
    [
      409,
      'The task is still running (Queued, Processing or Pending Async)',
      `Task ${EXAMPLE_ID} is still running (Processing): rerun its failed transactions once it has finished, or pause or cancel it first`,
    ],
    TOO_LARGE,
    WRONG_TYPE,
    [503, 'The queue (Redis) is unavailable; nothing was created', QUEUE_UNAVAILABLE],
  )
  async rerunFailed(
    @CurrentUser() user: AuthenticatedUser,
    @Param('id', TaskIdPipe) id: Types.ObjectId,
    @Body(new DefaultValuePipe({}), BodyValidationPipe) dto: RerunFailedDto,
    @Res({ passthrough: true }) response: Response,
  ): Promise<string> {
    const created = await this.tasks.rerunFailed(user, id, dto);
    response.location(`/tasks/${created}`);
    return `User ${user.email} created task with id ${created}`;
  }

  @Get()
  @Auth({ adminOnly: 'getTasks' })
  @ApiOperation({
    summary: 'List tasks (admin)',
    description:
      'Newest first, without their transactions. Unknown parameters, filter keys or operators are refused (400).',
  })
  @ApiQuery({
    name: 'filters',
    required: false,
    description:
      'JSON object (default {}): status (a task status, or {"$in":[...]}), user (creator email), created (a date ' +
      'range {"$gte","$gt","$lte","$lt"} with ISO 8601 dates, as an object or as a JSON string as the console sends it).',
    example:
      '{"status":"Paused","created":"{\\"$gte\\":\\"2024-05-01T00:00:00+00:00\\",\\"$lte\\":\\"2024-05-01T23:59:59+00:00\\"}"}',
  })
  @PagingQueries(TASK_LIST_PAGING, 'Tasks', 'every task')
  @ApiOkResponse({ type: [TaskView] })
  @ApiTextErrors(
    [400, 'Invalid filters or paging', 'Unknown filter "foo" (allowed: status, user, created)'],
    [403, 'Not an admin', notAdmin('getTasks')],
  )
  async list(@Query() query: Record<string, unknown>, @Res() response: Response): Promise<void> {
    await sendJson(response, await this.tasks.list(query), this.logger, 'GET /tasks');
  }

  @Get(':id')
  @Auth()
  @ApiOperation({
    summary: 'Read a task',
    description:
      'The task with one page of its transactions (in task order) after filtering, and totalFilteredTransactions. ' +
      'filterLimit=0 gives the task without transactions (the console polls progress this way).',
  })
  @ApiParam({ name: 'id', example: EXAMPLE_ID })
  @ApiQuery({
    name: 'filters',
    required: false,
    description:
      'JSON object (default {}): tstatus (Queued, Processing, Completed, Failed), rerunStatus, hasErrors ("yes" or "no").',
    example: '{"tstatus":"Completed","rerunStatus":"Successful"}',
  })
  @PagingQueries(TASK_ITEM_PAGING, 'Transactions', 'none, the task alone')
  @ApiOkResponse({ type: TaskDetailView })
  @ApiTextErrors([400, 'Malformed id, invalid filters or paging', BAD_ID[2]], NOT_FOUND)
  async read(
    @Param('id', TaskIdPipe) id: Types.ObjectId,
    @Query() query: Record<string, unknown>,
    @Res() response: Response,
  ): Promise<void> {
    // Checks, the task and the count come first (a 4xx is still possible); then the body streams.
    const body = await this.tasks.read(id, query);
    await sendJson(response, body, this.logger, `GET /tasks/${id.toHexString()}`);
  }

  @Put(':id')
  @Auth({ adminOnly: 'updateTask' })
  @UseGuards(JsonBodyGuard)
  @HttpCode(200)
  @Header('Content-Type', TEXT)
  @ApiOperation({
    summary: 'Pause, resume or cancel a task (admin)',
    description: `Only the status changes; other fields of the task a client echoes back are ignored. ${ALLOWED_CHANGES_TEXT}. Resuming hands the remaining work back to the queue.`,
  })
  @ApiParam({ name: 'id', example: EXAMPLE_ID })
  @ApiConsumes('application/json')
  @ApiBody({
    type: UpdateTaskDto,
    examples: {
      pause: { value: { _id: EXAMPLE_ID, status: 'Paused' } },
      resume: { value: { _id: EXAMPLE_ID, status: 'Queued' } },
      cancel: { value: { _id: EXAMPLE_ID, status: 'Cancelled' } },
    },
  })
  @ApiProduces('text/plain')
  @ApiTextResponse(200, 'Updated (or already in that status)', TASK_UPDATED)
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      `Malformed id, invalid body (${MALFORMED_JSON}, an _id that is not the one in the path), or a change that is not allowed`,
      `Cannot change a task from Completed to Paused. ${ALLOWED_CHANGES_TEXT}`,
    ],
    [403, 'Not an admin', notAdmin('updateTask')],
    NOT_FOUND,
    [
      409,
      'The workers kept changing the status of the task each time it was about to be changed; nothing was changed, try again',
      `The status of task ${EXAMPLE_ID} keeps changing; try again`,
    ],
    TOO_LARGE,
    WRONG_TYPE,
    [503, 'Resume: the queue (Redis) is unavailable; the task stays Paused', QUEUE_UNAVAILABLE],
  )
  async update(
    @CurrentUser() user: AuthenticatedUser,
    @Param('id', TaskIdPipe) id: Types.ObjectId,
    @Body(BodyValidationPipe) dto: UpdateTaskDto,
  ): Promise<string> {
    await this.tasks.update(id, dto, user);
    return TASK_UPDATED;
  }

  @Delete(':id')
  @Auth({ adminOnly: 'removeTask' })
  @HttpCode(200)
  @Header('Content-Type', TEXT)
  @ApiOperation({
    summary: 'Delete a task (admin)',
    description: 'Stops its outstanding work, then removes the task and its items.',
  })
  @ApiParam({ name: 'id', example: EXAMPLE_ID })
  @ApiProduces('text/plain')
  @ApiTextResponse(200, 'Deleted', TASK_DELETED)
  @ApiSessionOriginRefusal()
  @ApiTextErrors(BAD_ID, [403, 'Not an admin', notAdmin('removeTask')], NOT_FOUND)
  async remove(@Param('id', TaskIdPipe) id: Types.ObjectId): Promise<string> {
    await this.tasks.remove(id);
    return TASK_DELETED;
  }
}

import { Body, Controller, DefaultValuePipe, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiSessionOriginRefusal, Auth, CurrentUser } from '../../auth/auth.decorators';
import type { AuthenticatedUser } from '../../auth/authenticated-user';
import { ApiTextErrors } from '../swagger-responses';
import { BodyValidationPipe } from '../validation/body-validation.pipe';
import { JSON_REQUIRED, JsonBodyGuard, OptionalJsonBodyGuard } from '../validation/json-body.guard';
import {
  MAX_REASON_LENGTH,
  PauseAllDto,
  PauseAllResponse,
  ResumeAllDto,
  ResumeAllResponse,
} from './emergency-stop.dto';
import { EmergencyStopService, noHold, unknownChannel } from './emergency-stop.service';

const EXAMPLE_CHANNEL = '5bb777777bbb66cc5d4444aa';
const notAdmin = (op: string) => `User jane@example.org is not an admin, API access to ${op} denied.`;
const TOO_LARGE: [number, string, string] = [413, 'The body is larger than BODY_LIMIT', 'Request body too large'];
const WRONG_TYPE: [number, string, string] = [415, 'The body is not application/json', JSON_REQUIRED];

/**
 * The emergency stop (beyond OpenHIM): `POST /tasks/pause-all` and `POST /tasks/resume-all`. Its
 * controller is registered before TasksController, so these paths are never taken for a task id.
 */
@ApiTags('tasks')
@Controller('tasks')
export class EmergencyStopController {
  constructor(private readonly emergencyStop: EmergencyStopService) {}

  @Post('pause-all')
  @Auth({ adminOnly: 'pauseAllTasks' })
  @UseGuards(JsonBodyGuard)
  @HttpCode(200)
  @ApiOperation({
    summary: 'Emergency stop: pause every unfinished task, and hold (admin; beyond OpenHIM)',
    description:
      'Pauses every Queued, Processing or Pending Async task (as PUT {status: "Paused"} does: running reruns ' +
      'finish, no new one starts) or, with channelID, those with transactions still to rerun on that channel, and ' +
      'puts a hold on every task (or that channel): while it is in force, tasks created through POST /tasks, ' +
      'POST /bulkrerun and rerun-failed, and tasks OpenHIM core creates (its auto-retry tasks included) when the ' +
      'engine adopts them, start Paused if it covers them. Each task it pauses gets the history entry ' +
      '`emergency-paused` with the user and the reason. Calling it again restates the hold (new user and reason) ' +
      'and pauses what runs again. POST /tasks/resume-all lifts it.',
  })
  @ApiConsumes('application/json')
  @ApiBody({
    type: PauseAllDto,
    examples: {
      everything: { value: { reason: 'Downstream EMR down since 09:40, incident 4711' } },
      channel: { value: { reason: 'Lab system down', channelID: EXAMPLE_CHANNEL } },
    },
  })
  @ApiOkResponse({ type: PauseAllResponse, description: 'The tasks paused by this request, and the hold' })
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      `Invalid body, naming the field: reason missing, empty or over ${MAX_REASON_LENGTH} characters, channelID ` +
        'not a 24-character hex id, an unknown field, a malformed JSON body. Nothing is written.',
      'reason is required',
    ],
    [403, 'Not an admin', notAdmin('pauseAllTasks')],
    [404, 'No channel has this channelID; nothing is written', unknownChannel(EXAMPLE_CHANNEL)],
    TOO_LARGE,
    WRONG_TYPE,
  )
  pauseAll(@CurrentUser() user: AuthenticatedUser, @Body(BodyValidationPipe) dto: PauseAllDto) {
    return this.emergencyStop.pauseAll(user, dto);
  }

  @Post('resume-all')
  @Auth({ adminOnly: 'resumeAllTasks' })
  @UseGuards(OptionalJsonBodyGuard)
  @HttpCode(200)
  @ApiOperation({
    summary: 'Lift an emergency stop and resume the tasks it paused (admin; beyond OpenHIM)',
    description:
      'Lifts the hold that POST /tasks/pause-all put on every task (no body, or no channelID) or on one channel, ' +
      'and resumes exactly the tasks it paused that are still Paused (history entry `emergency-resumed` with the ' +
      'user and the reason of the stop): not the tasks a person paused, nor those a person resumed, paused again ' +
      'or cancelled meanwhile. A task another hold still covers stays Paused, held by that one. Resumed tasks go ' +
      'back to the queue (when Redis does not answer, the sweeper schedules them once it does).',
  })
  @ApiConsumes('application/json')
  @ApiBody({
    type: ResumeAllDto,
    required: false,
    examples: { everything: { value: {} }, channel: { value: { channelID: EXAMPLE_CHANNEL } } },
  })
  @ApiOkResponse({ type: ResumeAllResponse, description: 'The hold is lifted; the tasks resumed' })
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      'Invalid body, naming the field (channelID not a 24-character hex id, an unknown field, a malformed JSON body)',
      'channelID must be a 24-character hex channel id (got "abc")',
    ],
    [403, 'Not an admin', notAdmin('resumeAllTasks')],
    [404, 'No such hold (no stop of every task, or of that channel, is in force); nothing changes', noHold()],
    TOO_LARGE,
    WRONG_TYPE,
  )
  resumeAll(
    @CurrentUser() user: AuthenticatedUser,
    @Body(new DefaultValuePipe({}), BodyValidationPipe) dto: ResumeAllDto,
  ) {
    return this.emergencyStop.resumeAll(user, dto);
  }
}

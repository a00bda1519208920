import { Body, Controller, Delete, Get, HttpCode, Param, Put, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { Types } from 'mongoose';
import { AdminOperation, ApiSessionOriginRefusal, Auth, CurrentUser } from '../../auth/auth.decorators';
import type { AuthenticatedUser } from '../../auth/authenticated-user';
import { unknownChannel } from '../emergency-stop/emergency-stop.service';
import { QUEUE_UNAVAILABLE } from '../queue-unavailable';
import { ApiTextErrors } from '../swagger-responses';
import { BodyValidationPipe } from '../validation/body-validation.pipe';
import { JSON_REQUIRED, JsonBodyGuard } from '../validation/json-body.guard';
import { badChannelId, ChannelIdPipe } from './channel-id.pipe';
import { NO_LIMIT_GIVEN, RerunGuardView, SetGuardLimitsDto } from './rerun-guards.dto';
import { RerunGuardsService } from './rerun-guards.service';

const EXAMPLE_CHANNEL = '5bb777777bbb66cc5d4444aa';
const notAdmin = (op: AdminOperation) => `User jane@example.org is not an admin, API access to ${op} denied.`;
const BAD_ID: [number, string, string] = [400, 'The channel id is not a 24-character hex id', badChannelId('abc')];
const NOT_FOUND: [number, string, string] = [404, 'No channel has this id', unknownChannel(EXAMPLE_CHANNEL)];
const REDIS_DOWN: [number, string, string] = [
  503,
  'Redis did not answer in time; nothing is written',
  QUEUE_UNAVAILABLE,
];
const TOO_LARGE: [number, string, string] = [413, 'The body is larger than BODY_LIMIT', 'Request body too large'];
const WRONG_TYPE: [number, string, string] = [415, 'The body is not application/json', JSON_REQUIRED];
/**
 * The downstream guards (beyond OpenHIM; docs/design.md, "Outage recovery"): per channel, the
 * limits on reruns in flight and started per second across every task and worker, and its circuit
 * breaker. `GET /rerun-guards`, `PUT` and `DELETE /rerun-guards/:channelId`, admins only.
 */
@ApiTags('rerun-guards')
@Controller('rerun-guards')
export class RerunGuardsController {
  constructor(private readonly guards: RerunGuardsService) {}

  @Get()
  @Auth({ adminOnly: 'getRerunGuards' })
  @ApiOperation({
    summary: "List the channels' downstream guards and circuit breakers (admin; beyond OpenHIM)",
    description:
      'One entry per channel with a guard (limits of its own, or a breaker that counted failures) and, while ' +
      'GUARD_MAX_IN_FLIGHT or GUARD_MAX_PER_SECOND is set, per channel of OpenHIM; by channel id. Each gives the ' +
      'limits in force (its own, else the defaults; 0: no limit) and its own, the reruns in flight to it now, its ' +
      'breaker, and the tasks waiting for it: Paused by its breaker (or auto-paused with autoResume), or whose ' +
      'reruns wait for a permit.',
  })
  @ApiOkResponse({ type: [RerunGuardView] })
  @ApiTextErrors(
    [403, 'Not an admin', notAdmin('getRerunGuards')],
    [
      503,
      'A channel has a limit in force, and the queue (Redis), which counts its reruns in flight and those waiting, ' +
        'did not answer within QUEUE_TIMEOUT_MS',
      QUEUE_UNAVAILABLE,
    ],
  )
  list(): Promise<RerunGuardView[]> {
    return this.guards.list();
  }

  @Put(':channelId')
  @Auth({ adminOnly: 'updateRerunGuard' })
  @UseGuards(JsonBodyGuard)
  @HttpCode(200)
  @ApiOperation({
    summary: "Set a channel's downstream limits (admin; beyond OpenHIM)",
    description:
      'Replaces both limits of the channel: reruns in flight to it at most and reruns started per second at most, ' +
      'across every task and worker (0: no limit). A field left out falls back to its default (GUARD_MAX_IN_FLIGHT, ' +
      'GUARD_MAX_PER_SECOND). Workers apply it within a second, to reruns not yet started. Answers the entry as ' +
      'GET /rerun-guards lists it.',
  })
  @ApiParam({ name: 'channelId', example: EXAMPLE_CHANNEL })
  @ApiConsumes('application/json')
  @ApiBody({
    type: SetGuardLimitsDto,
    examples: {
      both: { value: { maxInFlight: 5, maxPerSecond: 20 } },
      inFlightOnly: { summary: 'maxPerSecond: the default', value: { maxInFlight: 2 } },
      unlimited: { summary: 'No limit, whatever the defaults', value: { maxInFlight: 0, maxPerSecond: 0 } },
    },
  })
  @ApiOkResponse({ type: RerunGuardView, description: 'The limits are set; the channel as GET lists it' })
  @ApiSessionOriginRefusal()
  @ApiTextErrors(
    [
      400,
      'Malformed channel id, or invalid body, naming the field: a limit that is not a whole number 0 or more, an ' +
        `unknown field, neither limit given, a malformed JSON body. Nothing is written. (${NO_LIMIT_GIVEN})`,
      'maxInFlight must be a non-negative integer (got -1)',
    ],
    [403, 'Not an admin', notAdmin('updateRerunGuard')],
    [404, 'No channel has this id; nothing is written', unknownChannel(EXAMPLE_CHANNEL)],
    TOO_LARGE,
    WRONG_TYPE,
    REDIS_DOWN,
  )
  setLimits(
    @CurrentUser() user: AuthenticatedUser,
    @Param('channelId', ChannelIdPipe) channelId: Types.ObjectId,
    @Body(BodyValidationPipe) dto: SetGuardLimitsDto,
  ): Promise<RerunGuardView> {
    return this.guards.setLimits(user, channelId, dto);
  }

  @Delete(':channelId')
  @Auth({ adminOnly: 'removeRerunGuard' })
  @ApiOperation({
    summary: "Remove a channel's own downstream limits (admin; beyond OpenHIM)",
    description:
      'The defaults (GUARD_MAX_IN_FLIGHT, GUARD_MAX_PER_SECOND) apply to the channel again; its breaker is left as ' +
      'it is. Answers the entry as GET /rerun-guards would show it now.',
  })
  @ApiParam({ name: 'channelId', example: EXAMPLE_CHANNEL })
  @ApiOkResponse({ type: RerunGuardView, description: 'The limits are removed; the channel as GET would show it' })
  @ApiSessionOriginRefusal()
  @ApiTextErrors(BAD_ID, [403, 'Not an admin', notAdmin('removeRerunGuard')], NOT_FOUND, REDIS_DOWN)
  removeLimits(
    @CurrentUser() user: AuthenticatedUser,
    @Param('channelId', ChannelIdPipe) channelId: Types.ObjectId,
  ): Promise<RerunGuardView> {
    return this.guards.removeLimits(user, channelId);
  }
}

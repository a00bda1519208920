import { InjectQueue } from '@nestjs/bull';
import { applyDecorators, Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { InjectConnection } from '@nestjs/mongoose';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Queue } from 'bull';
import type { Connection } from 'mongoose';
import { Public } from '../common/decorators/public.decorator';
import { withDeadline } from '../common/deadline';
import { RERUN_QUEUE } from '../rerun/rerun.constants';

const CHECK_TIMEOUT_MS = 2000;

/** The two answers of readiness (GET /health and GET /health/ready). */
const ReadinessResponses = () =>
  applyDecorators(
    ApiOkResponse({ description: '`{"status":"ok","mongo":"up","redis":"up"}`' }),
    ApiServiceUnavailableResponse({
      description: '`{"status":"down","redis":"<why>"}` (and/or `mongo`): MongoDB or Redis does not answer',
    }),
  );

export interface Readiness {
  status: 'ok';
  mongo: 'up';
  redis: 'up';
}

/** Health of either role (the API's port, and the worker's when WORKER_HTTP_PORT is set). */
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    @InjectConnection() private readonly connection: Connection,
    @InjectQueue(RERUN_QUEUE) private readonly queue: Queue,
  ) {}

  @Get()
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Readiness: 200 when MongoDB and Redis answer, 503 naming what is down' })
  @ReadinessResponses()
  check(): Promise<Readiness> {
    return this.readiness();
  }

  @Get('ready')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Readiness (same as GET /health): 200 when MongoDB and Redis answer, 503 naming what is down',
  })
  @ReadinessResponses()
  ready(): Promise<Readiness> {
    return this.readiness();
  }

  @Get('live')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Liveness: 200 while the process serves requests, whatever MongoDB and Redis do',
    description:
      'For restart decisions (a dependency outage must not restart every replica); use readiness for traffic.',
  })
  @ApiOkResponse({ description: '`{"status":"ok","uptimeSeconds":12}`' })
  live(): { status: 'ok'; uptimeSeconds: number } {
    return { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  }

  private async readiness(): Promise<Readiness> {
    const [mongo, redis] = await Promise.allSettled([
      withDeadline(this.pingMongo(), CHECK_TIMEOUT_MS, 'MongoDB'),
      withDeadline(this.queue.client.ping(), CHECK_TIMEOUT_MS, 'Redis'),
    ]);
    const down: Record<string, string> = {};
    if (mongo.status === 'rejected') down.mongo = (mongo.reason as Error).message;
    if (redis.status === 'rejected') down.redis = (redis.reason as Error).message;
    if (Object.keys(down).length) {
      throw new ServiceUnavailableException({ status: 'down', ...down });
    }
    return { status: 'ok', mongo: 'up', redis: 'up' };
  }

  private async pingMongo(): Promise<unknown> {
    const db = this.connection.db;
    if (!db || this.connection.readyState !== 1) throw new Error('MongoDB is not connected');
    return db.command({ ping: 1 });
  }
}

import { InjectQueue } from '@nestjs/bull';
import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { InjectConnection } from '@nestjs/mongoose';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Queue } from 'bull';
import type { Connection } from 'mongoose';
import { Public } from '../common/decorators/public.decorator';
import { RERUN_QUEUE } from '../rerun/rerun.constants';

const CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error instanceof Error ? error : new Error(String(error)))),
    );
  });
}

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
  async check(): Promise<{ status: 'ok'; mongo: 'up'; redis: 'up' }> {
    const [mongo, redis] = await Promise.allSettled([
      withTimeout(this.pingMongo(), 'MongoDB'),
      withTimeout(this.queue.client.ping(), 'Redis'),
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

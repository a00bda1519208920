import { Controller, Get, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '../../common/decorators/public.decorator';
import { AppConfig } from '../../config/app-config';
import { AdminAccess } from '../access/admin-access';
import { MetricsRegistry } from './metrics.registry';

@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly registry: MetricsRegistry,
    private readonly access: AdminAccess,
    private readonly config: AppConfig,
  ) {}

  @Get()
  // Public to the global guard; with METRICS_PUBLIC=false the handler asks for admin credentials.
  @Public()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'Tasks by status, queue jobs by state, reruns by outcome and their latency, reruns in flight, HTTP request ' +
      'durations by route, and process metrics. Public unless METRICS_PUBLIC=false (then admins only, Basic or token).',
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text exposition format' })
  async metrics(@Req() request: Request, @Res() response: Response): Promise<void> {
    if (!this.config.METRICS_PUBLIC) {
      const decision = await this.access.check(request, 'metrics');
      if (!decision.ok) return AdminAccess.refuse(response, decision);
    }
    const text = await this.registry.metrics();
    // Exactly prom-client's content type (Express would reorder its parameters).
    response.status(200).setHeader('Content-Type', this.registry.contentType);
    response.setHeader('Cache-Control', 'no-store');
    response.end(text);
  }
}

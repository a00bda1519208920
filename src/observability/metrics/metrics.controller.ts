import { Controller, Get, Req, Res } from '@nestjs/common';
import {
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiSecurity,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '../../common/decorators/public.decorator';
import { BASIC_AUTH_SCHEME, TOKEN_AUTH_HEADERS } from '../../common/swagger';
import { AppConfig } from '../../config/app-config';
import { AdminAccess } from '../../auth/admin-access';
import { MetricsRegistry } from '../../common/metrics/metrics.registry';

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
  // Anonymous ({}) unless METRICS_PUBLIC=false; then Basic or the token headers of an admin.
  @ApiSecurity({})
  @ApiSecurity(Object.fromEntries(TOKEN_AUTH_HEADERS.map((header) => [header, []])))
  @ApiSecurity(BASIC_AUTH_SCHEME)
  @ApiOkResponse({ description: 'Prometheus text exposition format' })
  @ApiUnauthorizedResponse({
    description:
      'Only with METRICS_PUBLIC=false: text/plain `Unauthorized`, with `WWW-Authenticate: Basic` (no or wrong credentials)',
  })
  @ApiForbiddenResponse({
    description: 'Only with METRICS_PUBLIC=false: text/plain `User <email> is not an admin, access to metrics denied.`',
  })
  @ApiTooManyRequestsResponse({
    description:
      'Only with METRICS_PUBLIC=false: text/plain `Too Many Requests`, with Retry-After (too many failed ' +
      'authentications from this IP)',
  })
  @ApiServiceUnavailableResponse({
    description:
      'Only with METRICS_PUBLIC=false: text/plain `Authentication is temporarily unavailable` (MongoDB unavailable)',
  })
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

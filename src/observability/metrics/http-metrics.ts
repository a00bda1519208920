import { Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Histogram } from 'prom-client';
import { METRIC_PREFIX, MetricsRegistry } from '../../common/metrics/metrics.registry';

/** Label of requests no route answered (bounded: raw URLs would make one series per id). */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The route pattern that served the request (`/tasks/:id`, not `/tasks/65f0...`): Express sets
 * `req.route` when a route handles it. Wildcard routes are Nest's middleware mounts (request
 * logging, the dashboard), not what answered; static files (Swagger UI, the dashboard's assets)
 * are labelled by where they are mounted.
 */
export function routeLabel(req: Request, res: Response): string {
  const route = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof route === 'string' && !/[{*]/.test(route)) return `${req.baseUrl ?? ''}${route}` || '/';
  if (res.statusCode !== 404 && req.baseUrl) return `${req.baseUrl}/*`;
  return UNMATCHED_ROUTE;
}

/** HTTP request duration by method, route pattern and status code. */
@Injectable()
export class HttpMetrics {
  private readonly duration: Histogram<'method' | 'route' | 'status_code'>;

  constructor(registry: MetricsRegistry) {
    this.duration = new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'HTTP requests by method, route pattern and status code, and how long they took',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  }

  /** Express middleware: mounted first, it sees every request, including those guards refuse. */
  readonly middleware = (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      this.duration.observe(
        { method: req.method, route: routeLabel(req, res), status_code: String(res.statusCode) },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}

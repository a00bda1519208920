import { collectDefaultMetrics, Registry } from 'prom-client';

/** Prefix of this service's own metrics (the default process and Node.js metrics keep their names). */
export const METRIC_PREFIX = 'openhim_rerun_';

/**
 * The Prometheus registry of one application (not prom-client's global one, so several
 * applications in one process, as in the tests, do not collide). Also holds the default process
 * and Node.js metrics.
 */
export class MetricsRegistry extends Registry {
  static create(): MetricsRegistry {
    const registry = new MetricsRegistry();
    collectDefaultMetrics({ register: registry });
    return registry;
  }
}

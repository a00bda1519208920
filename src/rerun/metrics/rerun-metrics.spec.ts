import { MetricsRegistry } from '../../common/metrics/metrics.registry';
import { RerunMetrics } from './rerun-metrics';

describe('RerunMetrics', () => {
  let registry: MetricsRegistry;
  let metrics: RerunMetrics;
  beforeEach(() => {
    registry = new MetricsRegistry();
    metrics = new RerunMetrics(registry);
  });
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name)!;
    return metric.values
      .filter((entry) => !('le' in labels) || (entry as { metricName?: string }).metricName === `${name}_bucket`)
      .find((entry) => Object.entries(labels).every(([key, v]) => String(entry.labels[key]) === v))?.value;
  };

  it('times a rerun: in flight while running, then counted and observed once', async () => {
    let clock = 0n;
    const timer = metrics.start(() => clock);
    expect(await value('openhim_rerun_reruns_in_flight')).toBe(1);
    clock = 1_500_000_000n;
    timer.end('successful');
    timer.end('failed');
    expect(await value('openhim_rerun_reruns_in_flight')).toBe(0);
    expect(await value('openhim_rerun_reruns_total', { outcome: 'successful' })).toBe(1);
    expect(await value('openhim_rerun_reruns_total', { outcome: 'failed' })).toBe(0);
    expect(await value('openhim_rerun_rerun_duration_seconds', { outcome: 'successful', le: '2.5' })).toBe(1);
    expect(await value('openhim_rerun_rerun_duration_seconds', { outcome: 'successful', le: '1' })).toBe(0);
  });

  it('files an unknown outcome under other instead of creating a new series', async () => {
    metrics.recordRerun('made-up' as never, 0.1);
    expect(await value('openhim_rerun_reruns_total', { outcome: 'other' })).toBe(1);
  });
});

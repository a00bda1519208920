import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { METRIC_PREFIX, MetricsRegistry } from '../../common/metrics/metrics.registry';
import { knownRerunOutcome, RERUN_OUTCOMES, RerunOutcome } from '../../domain/rerun-outcome';

/** A rerun being timed: `end` once with its outcome (later calls are ignored). */
export interface RerunTimer {
  end(outcome: RerunOutcome): void;
}

/**
 * The engine's metrics: reruns by outcome, rerun latency and reruns in flight (per process).
 * Inject it in the engine (the module providing it is global in both roles).
 */
@Injectable()
export class RerunMetrics {
  private readonly reruns: Counter<'outcome'>;
  private readonly duration: Histogram<'outcome'>;
  private readonly running: Gauge;
  private readonly asyncResults: Counter<'outcome'>;
  private readonly autoPauses: Counter;
  private readonly breakerOpenings: Counter;
  private readonly probes: Counter<'result'>;

  constructor(registry: MetricsRegistry) {
    const registers = [registry];
    this.reruns = new Counter({
      name: `${METRIC_PREFIX}reruns_total`,
      help: 'Reruns finished by this process, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: `${METRIC_PREFIX}rerun_duration_seconds`,
      help: 'Time from sending a rerun to OpenHIM core to its answer, by outcome',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.running = new Gauge({
      name: `${METRIC_PREFIX}reruns_in_flight`,
      help: 'Reruns this process has sent and not yet seen answered',
      registers,
    });
    this.asyncResults = new Counter({
      name: `${METRIC_PREFIX}async_reruns_finished_total`,
      help: 'Reruns answered 202 whose child transaction has since reached a final status, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.autoPauses = new Counter({
      name: `${METRIC_PREFIX}tasks_auto_paused_total`,
      help: 'Tasks this process paused because their reruns kept failing (pauseAfterFailures in a row)',
      registers,
    });
    this.breakerOpenings = new Counter({
      name: `${METRIC_PREFIX}breaker_opened_total`,
      help: "Channels' circuit breakers this process opened (BREAKER_FAILURES reruns to the channel failed in a row)",
      registers,
    });
    this.probes = new Counter({
      name: `${METRIC_PREFIX}breaker_probes_total`,
      help: 'Probes this process sent to a channel whose breaker is open (or whose tasks wait to auto-resume), by result',
      labelNames: ['result'],
      registers,
    });
    for (const result of ['succeeded', 'failed']) this.probes.inc({ result }, 0);
    for (const outcome of RERUN_OUTCOMES) {
      this.reruns.inc({ outcome }, 0);
    }
  }

  recordAutoPause(): void {
    this.autoPauses.inc();
  }

  recordBreakerOpened(): void {
    this.breakerOpenings.inc();
  }

  recordProbe(succeeded: boolean): void {
    this.probes.inc({ result: succeeded ? 'succeeded' : 'failed' });
  }

  /** Counts a finished rerun and observes how long it took. */
  recordRerun(outcome: RerunOutcome, seconds: number): void {
    const label = { outcome: knownRerunOutcome(outcome) };
    this.reruns.inc(label);
    if (Number.isFinite(seconds) && seconds >= 0) this.duration.observe(label, seconds);
  }

  /** Reruns in flight go up by `delta` (+1 when sending, -1 when answered or given up). */
  inFlight(delta: number): void {
    this.running.inc(delta);
  }

  /** `inFlight(+1)` now; `end(outcome)` does `inFlight(-1)` and `recordRerun` with the elapsed time. */
  start(now: () => bigint = process.hrtime.bigint): RerunTimer {
    const started = now();
    this.inFlight(1);
    let ended = false;
    return {
      end: (outcome) => {
        if (ended) return;
        ended = true;
        this.inFlight(-1);
        this.recordRerun(outcome, Number(now() - started) / 1e9);
      },
    };
  }

  /** A `pending_async` rerun's child transaction reached `outcome`. */
  recordAsyncResult(outcome: RerunOutcome): void {
    this.asyncResults.inc({ outcome: knownRerunOutcome(outcome) });
  }
}

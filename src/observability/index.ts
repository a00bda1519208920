export { withLogContext, type LogBindings } from './logging/log-context';
export { RerunMetrics, RERUN_OUTCOMES, type RerunOutcome, type RerunTimer } from './metrics/rerun-metrics';

import { PinoLogger } from 'nestjs-pino';

/** Fields bound to every log line written inside `withLogContext` (engine: the task being worked on). */
export interface LogBindings {
  taskId?: string;
  [field: string]: unknown;
}

let contexts: PinoLogger | undefined;

/**
 * Runs `fn` so that every line it logs, through any Nest `Logger` and across every `await`, carries
 * `bindings` (e.g. `{ taskId }`). Nested calls add to the outer bindings (a request's id stays).
 * Without pino set up (unit tests on Nest's console logger) it just runs `fn`.
 */
export function withLogContext<T>(bindings: LogBindings, fn: () => T): T {
  if (!PinoLogger.root) return fn();
  // Any PinoLogger shares the one root logger of the process; this one only opens contexts.
  contexts ??= new PinoLogger({});
  return contexts.runInContext(fn, { bindings, inherit: true });
}

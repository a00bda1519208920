import { storage, Store } from 'nestjs-pino/storage';
import type { Logger as Pino } from 'pino';

/**
 * The one pino logger of the process, once observability's `useProcessLogger` has created it
 * (src/observability/logging/process-logger.ts). Held here so that code of any layer (the engine)
 * can log in a context without depending on how logging is set up.
 */
let root: Pino | undefined;

/** Set by `useProcessLogger` only. */
export function setProcessLogger(logger: Pino): void {
  root = logger;
}

/** The process logger, once `useProcessLogger` has run. */
export function processLogger(): Pino | undefined {
  return root;
}

/** The logger of the current context (an HTTP request, a task: see withLogContext), else the process's. */
export function contextLogger(): Pino | undefined {
  return storage.getStore()?.logger ?? root;
}

/** Fields bound to every log line written inside `withLogContext` (engine: the task being worked on). */
export interface LogBindings {
  taskId?: string;
  [field: string]: unknown;
}

/**
 * Runs `fn` so that every line it logs, through any Nest `Logger` and across every `await`, carries
 * `bindings` (e.g. `{ taskId }`). Nested calls add to the outer bindings (a request's id stays).
 * Without the process logger set up (unit tests on Nest's console logger) it just runs `fn`.
 */
export function withLogContext<T>(bindings: LogBindings, fn: () => T): T {
  const outer = contextLogger();
  if (!outer) return fn();
  // The same store nestjs-pino's request middleware opens, so every logger reads it.
  return storage.run(new Store(outer.child(bindings)), fn);
}

import { storage, Store } from 'nestjs-pino/storage';
import { contextLogger } from './process-logger';

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

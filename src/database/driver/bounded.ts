/**
 * Bounds on what the engine waits for, so that no single answer that never comes can hold a lane
 * (and, through the lease its slot keeps renewing, a whole task) forever.
 *
 * Every MongoDB operation of the engine carries an abort signal that fires after its bound and
 * settles by then in any case, as after a network error. The driver has no bound of its own by
 * default (`socketTimeoutMS` 0; the experimental `timeoutMS` is not used): a server that stops
 * answering without closing its connections (frozen, a network cut) would otherwise hold the
 * operation for good. An aborted signal ends the driver's wait and closes that connection (it also
 * ends the endless wait driver-write-guard.ts is about); racing the timer as well keeps the bound
 * should some step of the driver not listen to the signal.
 */
import type { OperationOptions } from 'mongodb';

/** An operation that did not settle within its bound: its outcome is unknown, as after a network error. */
export class BoundExceededError extends Error {
  override readonly name = 'BoundExceededError';
}

/**
 * The options every bounded driver operation carries. The driver's typings declare `signal` on its
 * reads only (its experimental `Abortable`); drivers 6.20 and 7 pass it on for every operation.
 */
export type Bounded = OperationOptions & { signal: AbortSignal };

/**
 * The bound of one MongoDB operation of the engine: a lease. No operation should come near it, and a
 * lane that waited that long has lost its lease anyway (its slot counts as valid only while a third
 * of the lease is left).
 */
export function operationBoundMs(leaseMs: number): number {
  return leaseMs;
}

/**
 * The bound of a lane's gate and of its claim (a few operations each): a third of the lease,
 * the interval at which its slot's lease is renewed.
 */
export function startBoundMs(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}

/** `promise`, or a BoundExceededError after `ms`. What `promise` does later is ignored. */
export function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  return bounded(ms, what, () => promise);
}

/**
 * Runs `operation` with an abort signal that fires after `ms`; settles by then either way (with a
 * BoundExceededError, the signal's reason, when the operation did not).
 */
export async function bounded<T>(ms: number, what: string, operation: (options: Bounded) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const exceeded = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new BoundExceededError(`${what}: no answer within ${ms} ms`);
      controller.abort(error);
      reject(error);
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([operation({ signal: controller.signal }), exceeded]);
  } finally {
    clearTimeout(timer);
  }
}

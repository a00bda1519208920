import type { Collection } from 'mongodb';
import type { Model } from 'mongoose';
import type { AppConfig } from '../../config/app-config';
import { bounded, Bounded, operationBoundMs } from '../driver/bounded';
import { collectionOf } from '../driver/collection';
import { retryWhileUnavailable } from '../../common/database-availability';

/**
 * How long a multi-document write that is safe to repeat is repeated through a step-down or a short
 * outage: the driver retries single-document writes itself (retryable writes), never these.
 */
export const REPEATABLE_WRITE_WINDOW_MS = 30000;

/** Runs an idempotent multi-document write, repeating it while the database is unavailable. */
export function repeatable<T>(write: () => Promise<T>): Promise<T> {
  return retryWhileUnavailable(write, { withinMs: REPEATABLE_WRITE_WINDOW_MS });
}

/**
 * What every repository of a collection has: its model (mongoose, for what its casting serves), the
 * driver's collection behind it (taken on first use, once connected), and `op`, which bounds an
 * engine operation to a lease (driver/bounded.ts) and names it `<collection>.<what>` in errors.
 */
export abstract class CollectionRepository<M> {
  private driverCollection?: Collection;
  private readonly boundMs: number;

  protected constructor(
    protected readonly model: Model<M>,
    config: AppConfig,
  ) {
    this.boundMs = operationBoundMs(config.WORKER_LEASE_MS);
  }

  protected get collection(): Collection {
    return (this.driverCollection ??= collectionOf(this.model));
  }

  protected op<T>(what: string, operation: (options: Bounded) => Promise<T>): Promise<T> {
    return bounded(this.boundMs, `${this.model.collection.name}.${what}`, operation);
  }
}

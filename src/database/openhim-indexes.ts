import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectConnection } from '@nestjs/mongoose';
import type { Connection } from 'mongoose';

/** How long a stop waits for index requests still on the wire. */
const SHUTDOWN_WAIT_MS = 3000;

export interface OpenhimIndex {
  collection: string;
  key: Record<string, 1 | -1>;
  /** The name OpenHIM core's mongoose models give the same index, where they declare it. */
  name: string;
  why: string;
}

/**
 * Indexes this service needs on OpenHIM's collections (listed in the README). Our own collections'
 * indexes (`taskitems`, `tasks`) are declared in their schemas.
 */
export const OPENHIM_INDEXES: readonly OpenhimIndex[] = [
  {
    collection: 'transactions',
    key: { parentID: 1 },
    name: 'parentID_1',
    why: "the engine's lookups of the child transaction core stored for a rerun (core 4-8 declare it too)",
  },
  {
    collection: 'autoretries',
    key: { transactionID: 1 },
    name: 'transactionID_1',
    why: 'POST /tasks removes its transactions from the auto-retry queue',
  },
];

/**
 * Creates OPENHIM_INDEXES at start, as OpenHIM's own models do theirs, on the embedded server and on
 * a real mongod alike. An index with the same key that already exists (whatever its name, e.g.
 * core's own) is left as it is. In the background: building an index on a large `transactions`
 * collection must not hold the start; a failure (e.g. a user without the right) is logged, and the
 * queries still work, only slower.
 */
@Injectable()
export class OpenhimIndexes implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(OpenhimIndexes.name);
  /** Settles once every index exists or failed (tests wait for it). */
  ready: Promise<void> = Promise.resolve();

  constructor(@InjectConnection() private readonly connection: Connection) {}

  onApplicationBootstrap(): void {
    this.ready = Promise.all(OPENHIM_INDEXES.map((index) => this.ensure(index))).then(() => undefined);
  }

  /**
   * A stop right after the start waits a little for the requests (the connection closes after this):
   * a build the server already runs goes on without us.
   */
  async onModuleDestroy(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.ready, new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private async ensure(index: OpenhimIndex): Promise<void> {
    try {
      const collection = this.connection.db!.collection(index.collection);
      const existing = await collection.indexes().catch((error: { code?: number }) => {
        if (error.code === 26) return []; // NamespaceNotFound: the collection does not exist yet
        throw error;
      });
      if (existing.some((found) => sameKey(found.key, index.key))) return;
      await collection.createIndex(index.key, { name: index.name });
      this.logger.log(`Created index ${index.name} on ${index.collection}: ${index.why}`);
    } catch (error) {
      // Created meanwhile by another process (core, another replica) under another name: fine.
      if ([85, 86].includes((error as { code?: number }).code ?? 0)) return;
      this.logger.warn(
        `Could not create index ${JSON.stringify(index.key)} on ${index.collection} (${index.why}): ${(error as Error).message}`,
      );
    }
  }
}

function sameKey(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const left = Object.entries(a);
  const right = Object.entries(b);
  return (
    left.length === right.length &&
    left.every(([field, dir], i) => right[i][0] === field && Number(right[i][1]) === Number(dir))
  );
}

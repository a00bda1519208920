import type { FindCursor } from 'mongodb';

/** Documents per driver batch when streaming tasks or items (a batch is the most held at once). */
export const ITEM_BATCH_SIZE = 1000;
/** No client has 2^31 documents: a larger skip is past the end, a larger limit is no limit. */
export const MAX_INT32 = 0x7fffffff;

/** Which documents of a listing: after skipping `skip`, at most `limit` (0: no limit). */
export interface Page {
  skip: number;
  limit: number;
}

export const projection = (fields: readonly string[]) => Object.fromEntries(fields.map((field) => [field, 1]));

/** A first batch no larger than the page (one round trip for small pages). */
export const firstBatch = (limit: number) => (limit > 0 && limit < ITEM_BATCH_SIZE ? limit : ITEM_BATCH_SIZE);

/** The cursor's documents one driver batch at a time; the cursor is closed however iteration ends. */
export async function* batchesOf<T>(cursor: FindCursor<T>): AsyncGenerator<T[]> {
  try {
    while (await cursor.hasNext()) yield cursor.readBufferedDocuments();
  } finally {
    await cursor.close().catch(() => undefined);
  }
}

export async function* noBatches<T>(): AsyncGenerator<T[]> {}

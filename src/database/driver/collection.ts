import { MongoNotConnectedError, type Collection, type Document } from 'mongodb';
import type { Model } from 'mongoose';

/**
 * The driver's collection behind a model. Repositories go to the driver for what mongoose would only
 * slow down or change: cursors (mongoose's proxy answers a promise instead of a cursor while it
 * buffers commands), fields the schemas do not declare (strict schemas would drop them), filters
 * built complete (mongoose's casting against a loose schema could change what they match), and the
 * driver's own retry-until-server-selection rather than mongoose's command buffering.
 * Not connected yet: MongoNotConnectedError (the API answers it with a 503).
 */
export function collectionOf<T extends Document = Document, M = unknown>(model: Model<M>): Collection<T> {
  const db = model.db.db;
  if (!db) throw new MongoNotConnectedError(`MongoDB is not connected (collection ${model.collection.name})`);
  return db.collection<T>(model.collection.name);
}

import type { Collection, Document } from 'mongodb';
import type { Model } from 'mongoose';
import { guardDriverWrites } from './driver-write-guard';

/**
 * The driver's collection behind a model. The engine writes fields the schemas do not declare
 * (strict schemas would drop them) and wants the driver's own retry-until-server-selection
 * behaviour rather than mongoose's command buffering. Makes sure the driver's write guard is in
 * place first (driver-write-guard.ts).
 */
export function nativeCollection<T extends Document = Document, M = unknown>(model: Model<M>): Collection<T> {
  guardDriverWrites();
  const db = model.db.db;
  if (!db) throw new Error(`MongoDB is not connected (collection ${model.collection.name})`);
  return db.collection<T>(model.collection.name);
}

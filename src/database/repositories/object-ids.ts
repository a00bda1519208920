import { Types } from 'mongoose';

/** `value` as an ObjectId (an ObjectId of any bson copy, or 24 hex digits), else null. */
export function toObjectId(value: unknown): Types.ObjectId | null {
  if (value instanceof Types.ObjectId) return value;
  if (value && typeof value === 'object' && (value as { _bsontype?: string })._bsontype === 'ObjectId') {
    return new Types.ObjectId(String(value));
  }
  return typeof value === 'string' && /^[0-9a-fA-F]{24}$/.test(value) ? new Types.ObjectId(value) : null;
}

/** Operators MongoDB has and this server refuses (no implementation in mingo): see surface.ts. */

/** MongoDB's query operators this server refuses (mingo has no implementation). */
export const REFUSED_QUERY_OPERATORS = new Set([
  '$text',
  '$near',
  '$nearSphere',
  '$geoWithin',
  '$geoIntersects',
  '$within',
  '$box',
  '$center',
  '$centerSphere',
  '$polygon',
  '$geometry',
  '$maxDistance',
  '$minDistance',
  '$search',
]);

/**
 * MongoDB's aggregation expression operators this server refuses: mingo has no implementation,
 * or (`$toHashedIndexKey`) mingo's differs from MongoDB's (its own hash, not MongoDB's hashed-index
 * key). Refused by surface.ts's operator check, and through mingo's errors (errors.ts).
 */
export const REFUSED_EXPRESSIONS = new Set([
  '$meta',
  '$bsonSize',
  '$binarySize',
  '$toObjectId',
  '$tsIncrement',
  '$tsSecond',
  '$toUUID',
  '$toHashedIndexKey',
  '$function',
  '$accumulator',
  '$where',
]);

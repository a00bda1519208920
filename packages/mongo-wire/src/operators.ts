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

/** MongoDB's aggregation expression operators this server refuses (mingo has no implementation). */
export const REFUSED_EXPRESSIONS = new Set([
  '$meta',
  '$bsonSize',
  '$binarySize',
  '$toObjectId',
  '$tsIncrement',
  '$tsSecond',
  '$toUUID',
  '$function',
  '$accumulator',
  '$where',
]);

/**
 * The command surface: which fields each command (and each statement of `update` / `delete`, each
 * index specification) accepts, which stages and operators exist. Anything this server does not
 * implement is refused with MongoDB's error where MongoDB has one (unknown fields: 40415, unknown
 * stages: 40324, unknown expressions: 168, unknown query operators: 2), otherwise with 238
 * NotImplemented "not supported by the embedded server: <what>". Nothing is silently ignored unless
 * ignoring it cannot change an answer (listed as `ignored`).
 */
import { fail } from './errors';
import { REFUSED_EXPRESSIONS } from './operators';
export { REFUSED_EXPRESSIONS, REFUSED_QUERY_OPERATORS } from './operators';
import { Doc, isPlainObject, showValue } from './values';
import { ServerVersion } from './versions';

/** `ok`: implemented; `ignored`: accepted, without effect on any answer; otherwise why it is refused. */
export type FieldRule = 'ok' | 'ignored' | { refused: string };

const REFUSED = (why = ''): FieldRule => ({ refused: why });

/** MongoDB's generic command arguments: accepted by every command. */
export const GENERIC_ARGUMENTS = new Set([
  '$db',
  'lsid',
  'txnNumber',
  'autocommit',
  'startTransaction',
  'writeConcern',
  'readConcern',
  '$readPreference',
  '$clusterTime',
  'comment',
  'maxTimeMS',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
  '$client',
  '$audit',
  'clientOperationKey',
  'mayBypassWriteBlocking',
  '$queryOptions',
  'stmtId',
  'stmtIds',
]);

export function notSupported(what: string): never {
  fail(238, `not supported by the embedded server: ${what}`);
}

/**
 * Fields of one command body (after its first key) or one sub-document, checked against a table
 * and, with `v`, against the announced release (a field it does not have yet is unknown to it).
 */
export function checkFields(
  where: string,
  doc: Doc,
  rules: Record<string, FieldRule>,
  skipFirst: boolean,
  v?: ServerVersion,
): void {
  const keys = Object.keys(doc);
  for (let i = skipFirst ? 1 : 0; i < keys.length; i++) {
    const k = keys[i];
    const rule = Object.prototype.hasOwnProperty.call(rules, k) ? rules[k] : undefined;
    if (rule === undefined || (v && !v.has(`field:${where}.${k}`))) {
      if (rule === undefined && skipFirst && GENERIC_ARGUMENTS.has(k)) continue;
      unknownField(where, k, doc, v);
    }
    if (typeof rule === 'object') notSupported(`${where}.${k}${rule.refused ? ` (${rule.refused})` : ''}`);
  }
}

/**
 * An unknown field, as the parser of the command in the announced release reports it: IDL
 * (40415) for the write commands in every release and for find / aggregate / findAndModify from
 * 5.0; before 5.0 find's QueryRequest (9 FailedToParse "Failed to parse: <command>. Unrecognized
 * field 'x'."), aggregate's AggregationRequest (9 "unrecognized field 'x'") and findAndModify's
 * FindAndModifyRequest (51177 "BSON field 'x' is an unknown field."), as in MongoDB 4.2 / 4.4's
 * sources (query_request.cpp, aggregation_request.cpp, find_and_modify_request.cpp).
 */
export function unknownField(where: string, field: string, doc: Doc, v?: ServerVersion): never {
  if (v && !v.has('behaviour:idlParsedReadCommands')) {
    if (where === 'find') fail(9, `Failed to parse: ${showValue(doc)}. Unrecognized field '${field}'.`);
    if (where === 'aggregate') fail(9, `unrecognized field '${field}'`);
    if (where === 'findAndModify') fail(51177, `BSON field '${field}' is an unknown field.`);
  }
  fail(40415, `BSON field '${where}.${field}' is an unknown field.`);
}

/** Per command (canonical name): its fields besides the command's own first key. */
export const COMMAND_FIELDS: Record<string, Record<string, FieldRule>> = {
  find: {
    filter: 'ok',
    sort: 'ok',
    projection: 'ok',
    hint: 'ok',
    skip: 'ok',
    limit: 'ok',
    batchSize: 'ok',
    singleBatch: 'ok',
    let: 'ok',
    collation: 'ok',
    noCursorTimeout: 'ignored',
    allowPartialResults: 'ignored',
    allowDiskUse: 'ignored',
    max: REFUSED(),
    min: REFUSED(),
    returnKey: REFUSED(),
    showRecordId: REFUSED(),
    tailable: REFUSED('tailable cursors'),
    awaitData: REFUSED('tailable cursors'),
    oplogReplay: REFUSED(),
    readOnce: REFUSED(),
  },
  aggregate: {
    pipeline: 'ok',
    cursor: 'ok',
    explain: 'ok',
    let: 'ok',
    collation: 'ok',
    hint: 'ok',
    bypassDocumentValidation: 'ok',
    allowDiskUse: 'ignored',
  },
  count: { query: 'ok', limit: 'ok', skip: 'ok', hint: 'ok', collation: 'ok', fields: 'ignored' },
  distinct: { key: 'ok', query: 'ok', collation: 'ok' },
  insert: { documents: 'ok', ordered: 'ok', bypassDocumentValidation: 'ok' },
  update: { updates: 'ok', ordered: 'ok', let: 'ok', bypassDocumentValidation: 'ok' },
  delete: { deletes: 'ok', ordered: 'ok', let: 'ok' },
  findAndModify: {
    query: 'ok',
    sort: 'ok',
    remove: 'ok',
    update: 'ok',
    new: 'ok',
    fields: 'ok',
    upsert: 'ok',
    arrayFilters: 'ok',
    hint: 'ok',
    let: 'ok',
    collation: 'ok',
    bypassDocumentValidation: 'ok',
  },
  create: {
    capped: 'ok',
    size: 'ok',
    max: 'ok',
    validator: 'ok',
    validationLevel: 'ok',
    validationAction: 'ok',
    collation: 'ok',
    idIndex: 'ignored',
    storageEngine: 'ignored',
    indexOptionDefaults: 'ignored',
    flags: 'ignored',
    autoIndexId: REFUSED(),
    viewOn: REFUSED('views'),
    pipeline: REFUSED('views'),
    timeseries: REFUSED('time series collections'),
    clusteredIndex: REFUSED('clustered collections'),
    expireAfterSeconds: REFUSED('clustered and time series collections'),
    changeStreamPreAndPostImages: REFUSED('change streams'),
    encryptedFields: REFUSED('queryable encryption'),
  },
  collMod: {
    index: 'ok',
    validator: 'ok',
    validationLevel: 'ok',
    validationAction: 'ok',
    viewOn: REFUSED('views'),
    pipeline: REFUSED('views'),
    expireAfterSeconds: REFUSED('clustered and time series collections'),
    changeStreamPreAndPostImages: REFUSED('change streams'),
    timeseries: REFUSED('time series collections'),
    cappedSize: REFUSED(),
    cappedMax: REFUSED(),
    recordPreImages: REFUSED(),
  },
  createIndexes: { indexes: 'ok', commitQuorum: 'ignored' },
  dropIndexes: { index: 'ok' },
  listIndexes: { cursor: 'ok' },
  listCollections: { filter: 'ok', nameOnly: 'ok', cursor: 'ok', authorizedCollections: 'ignored' },
  listDatabases: { filter: 'ok', nameOnly: 'ok', authorizedDatabases: 'ignored' },
  drop: {},
  dropDatabase: {},
  renameCollection: { to: 'ok', dropTarget: 'ok', stayTemp: 'ignored' },
  getMore: { collection: 'ok', batchSize: 'ok', term: 'ignored', lastKnownCommittedOpTime: 'ignored' },
  killCursors: { cursors: 'ok' },
  explain: { verbosity: 'ok' },
};

/** Fields of the statements of `update` / `delete` (`sort` in update statements: 8.0, see versions.ts). */
export const UPDATE_STATEMENT_FIELDS: Record<string, FieldRule> = {
  q: 'ok',
  u: 'ok',
  c: 'ok',
  upsert: 'ok',
  multi: 'ok',
  arrayFilters: 'ok',
  hint: 'ok',
  collation: 'ok',
  sort: 'ok',
};
export const DELETE_STATEMENT_FIELDS: Record<string, FieldRule> = { q: 'ok', limit: 'ok', hint: 'ok', collation: 'ok' };

/** Index specification fields (createIndexes.indexes[i]). */
export const INDEX_SPEC_FIELDS: Record<string, FieldRule> = {
  key: 'ok',
  name: 'ok',
  unique: 'ok',
  sparse: 'ok',
  partialFilterExpression: 'ok',
  expireAfterSeconds: 'ok',
  hidden: 'ok',
  collation: 'ok',
  background: 'ignored',
  v: 'ignored',
  ns: 'ignored',
  dropDups: 'ignored',
  weights: REFUSED('text indexes'),
  default_language: REFUSED('text indexes'),
  language_override: REFUSED('text indexes'),
  textIndexVersion: REFUSED('text indexes'),
  '2dsphereIndexVersion': REFUSED('geospatial indexes'),
  bits: REFUSED('geospatial indexes'),
  min: REFUSED('geospatial indexes'),
  max: REFUSED('geospatial indexes'),
  bucketSize: REFUSED('geospatial indexes'),
  wildcardProjection: REFUSED('wildcard indexes'),
  storageEngine: REFUSED(),
  prepareUnique: REFUSED(),
  clustered: REFUSED('clustered collections'),
};

/** Check one index specification: its fields (as the announced release knows them) and its key (1 / -1 fields only). */
export function checkIndexSpec(spec: Doc, v: ServerVersion): void {
  for (const k of Object.keys(spec)) {
    const rule = INDEX_SPEC_FIELDS[k];
    if (rule === undefined || !v.has(`indexOption:${k}`))
      fail(197, `The field '${k}' is not valid for an index specification. Specification: ${showValue(spec)}`);
    if (typeof rule === 'object') notSupported(`index option '${k}'${rule.refused ? ` (${rule.refused})` : ''}`);
  }
  checkCollation(spec.collation, 'index collation');
  if (!isPlainObject(spec.key)) return;
  for (const [field, v] of Object.entries(spec.key)) {
    if (field.includes('$**')) notSupported(`wildcard index key ${showValue(spec.key)}`);
    if (typeof v === 'string') {
      if (['text', '2d', '2dsphere', 'hashed', 'geoHaystack'].includes(v))
        notSupported(`'${v}' index key ${showValue(spec.key)}`);
      fail(67, `Unknown index plugin '${v}'`);
    }
  }
}

/** Collation: only the simple (binary) one; anything else would match and sort differently. */
export function checkCollation(collation: unknown, where = 'collation'): void {
  if (collation === undefined || collation === null) return;
  if (!isPlainObject(collation))
    fail(14, `BSON field 'collation' is the wrong type '${typeof collation}', expected type 'object'`);
  if (Object.keys(collation).length === 0) fail(40414, "BSON field 'locale' is missing but a required field");
  if (collation.locale === 'simple' && Object.keys(collation).length === 1) return;
  notSupported(`${where} ${showValue(collation)} (only { locale: "simple" }: binary comparison)`);
}

/** Pipeline stages: implemented (mingo or this server) and MongoDB's others, refused. */
export const SUPPORTED_STAGES = new Set([
  '$addFields',
  '$bucket',
  '$bucketAuto',
  '$count',
  '$densify',
  '$documents',
  '$facet',
  '$fill',
  '$graphLookup',
  '$group',
  '$limit',
  '$lookup',
  '$match',
  '$merge',
  '$out',
  '$project',
  '$redact',
  '$replaceRoot',
  '$replaceWith',
  '$sample',
  '$set',
  '$setWindowFields',
  '$skip',
  '$sort',
  '$sortByCount',
  '$unionWith',
  '$unset',
  '$unwind',
]);
export const REFUSED_STAGES = new Set([
  '$changeStream',
  '$changeStreamSplitLargeEvent',
  '$collStats',
  '$currentOp',
  '$geoNear',
  '$indexStats',
  '$listLocalSessions',
  '$listSessions',
  '$listSampledQueries',
  '$listSearchIndexes',
  '$planCacheStats',
  '$queryStats',
  '$search',
  '$searchMeta',
  '$vectorSearch',
  '$shardedDataDistribution',
  '$listClusterCatalog',
]);

/** Stages allowed in a pipeline-style update (MongoDB's list). */
export const UPDATE_PIPELINE_STAGES = new Set([
  '$addFields',
  '$set',
  '$project',
  '$unset',
  '$replaceRoot',
  '$replaceWith',
]);

/**
 * Check a pipeline's stages (and the pipelines nested in $facet, $lookup, $unionWith): one field
 * each, known to the announced release (else 40324), implemented (else 238); $out / $merge only
 * last; then the operators inside each stage (`checkStageOperators`).
 */
export function checkPipeline(pipeline: unknown[], nested: boolean, v: ServerVersion): void {
  pipeline.forEach((stage, i) => {
    if (!isPlainObject(stage) || Object.keys(stage).length !== 1)
      fail(40323, 'A pipeline stage specification object must contain exactly one field.');
    const name = Object.keys(stage)[0];
    if (!v.has(`stage:${name}`)) fail(40324, `Unrecognized pipeline stage name: '${name}'`);
    if (REFUSED_STAGES.has(name)) notSupported(`pipeline stage ${name}`);
    if (!SUPPORTED_STAGES.has(name)) fail(40324, `Unrecognized pipeline stage name: '${name}'`);
    if ((name === '$out' || name === '$merge') && (nested || i !== pipeline.length - 1))
      fail(40601, `${name} can only be the final stage in the pipeline`);
    const spec = stage[name];
    if (name === '$facet' && isPlainObject(spec))
      for (const sub of Object.values(spec)) if (Array.isArray(sub)) checkPipeline(sub, true, v);
    if ((name === '$lookup' || name === '$unionWith') && isPlainObject(spec) && Array.isArray(spec.pipeline))
      checkPipeline(spec.pipeline, true, v);
    checkStageOperators(name, spec, v);
  });
}

/**
 * The operators inside one stage: expressions, accumulators, window functions, `$expr` in
 * filters, each checked against the announced release (`expression:`, `accumulator:`, `window:`
 * of versions.ts) and against the refused expressions. Nested pipelines are checked by
 * checkPipeline itself.
 */
function checkStageOperators(name: string, spec: unknown, v: ServerVersion): void {
  switch (name) {
    case '$match':
      return checkFilterOperators(spec, v);
    case '$facet':
    case '$unionWith':
      return;
    case '$group':
      if (isPlainObject(spec))
        for (const k of Object.keys(spec))
          if (k === '_id') checkExpression(spec[k], v);
          else checkAccumulator(spec[k], v);
      return;
    case '$bucket':
    case '$bucketAuto':
      if (!isPlainObject(spec)) return;
      for (const k of Object.keys(spec))
        if (k === 'output' && isPlainObject(spec.output))
          for (const acc of Object.values(spec.output)) checkAccumulator(acc, v);
        else checkExpression(spec[k], v);
      return;
    case '$setWindowFields':
      if (!isPlainObject(spec)) return;
      checkExpression(spec.partitionBy, v);
      if (isPlainObject(spec.output)) for (const fn of Object.values(spec.output)) checkWindowFunction(fn, v);
      return;
    case '$lookup':
      if (!isPlainObject(spec)) return;
      if (
        !v.has('behaviour:lookupConciseSyntax') &&
        spec.pipeline !== undefined &&
        (spec.localField !== undefined || spec.foreignField !== undefined)
      )
        fail(9, "$lookup with 'pipeline' may not specify 'localField' or 'foreignField'");
      return checkExpression(spec.let, v);
    case '$graphLookup':
      if (!isPlainObject(spec)) return;
      checkExpression(spec.startWith, v);
      return checkFilterOperators(spec.restrictSearchWithMatch, v);
    case '$merge':
      if (!isPlainObject(spec)) return;
      checkExpression(spec.let, v);
      if (Array.isArray(spec.whenMatched)) checkPipeline(spec.whenMatched, true, v);
      return;
    default:
      return checkExpression(spec, v);
  }
}

/** An aggregation expression (any value): its operators, except inside `$literal`. */
export function checkExpression(x: unknown, v: ServerVersion): void {
  if (Array.isArray(x)) {
    for (const e of x) checkExpression(e, v);
    return;
  }
  if (!isPlainObject(x)) return;
  const keys = Object.keys(x);
  if (keys.length === 1 && keys[0].startsWith('$')) {
    const op = keys[0];
    if (op === '$literal') return;
    if (!v.has(`expression:${op}`)) fail(168, `Unrecognized expression '${op}'`);
    if (REFUSED_EXPRESSIONS.has(op)) notSupported(`expression operator ${op}`);
  }
  for (const k of keys) checkExpression(x[k], v);
}

/** `{name: {$acc: <expression>}}` of $group / $bucket output: 15952 for an accumulator the release lacks. */
function checkAccumulator(x: unknown, v: ServerVersion): void {
  if (!isPlainObject(x)) return;
  for (const op of Object.keys(x)) {
    if (!op.startsWith('$')) continue;
    if (!v.has(`accumulator:${op}`)) fail(15952, `unknown group operator '${op}'`);
    if (REFUSED_EXPRESSIONS.has(op)) notSupported(`expression operator ${op}`);
    checkExpression(x[op], v);
  }
}

/** `{$fn: <args>, window: {...}}` of $setWindowFields output: 9 "Unrecognized window function, $fn". */
function checkWindowFunction(x: unknown, v: ServerVersion): void {
  if (!isPlainObject(x)) return;
  for (const op of Object.keys(x)) {
    if (!op.startsWith('$')) continue;
    if (!v.has(`window:${op}`) || !v.has(`accumulator:${op}`)) fail(9, `Unrecognized window function, ${op}`);
    if (REFUSED_EXPRESSIONS.has(op)) notSupported(`expression operator ${op}`);
    checkExpression(x[op], v);
  }
}

/**
 * A query filter's aggregation expressions (`$expr`, at the top level or under `$and` / `$or` /
 * `$nor`, where MongoDB allows it): cheap, the rest of a filter holds no expression.
 */
export function checkFilterOperators(filter: unknown, v: ServerVersion): void {
  if (!isPlainObject(filter)) return;
  for (const k in filter) {
    if (k.charCodeAt(0) !== 36 /* $ */) continue;
    const x = filter[k];
    if (k === '$expr') checkExpression(x, v);
    else if ((k === '$and' || k === '$or' || k === '$nor') && Array.isArray(x))
      for (const sub of x) checkFilterOperators(sub, v);
  }
}

/** MongoDB commands that exist but are not implemented here: 115 CommandNotSupported. */
export const REFUSED_COMMANDS = [
  'mapReduce',
  'geoSearch',
  'convertToCapped',
  'cloneCollectionAsCapped',
  'compact',
  'reIndex',
  'createUser',
  'updateUser',
  'dropUser',
  'dropAllUsersFromDatabase',
  'usersInfo',
  'createRole',
  'updateRole',
  'dropRole',
  'rolesInfo',
  'grantRolesToUser',
  'revokeRolesFromUser',
  'saslStart',
  'saslContinue',
  'authenticate',
  'createSearchIndexes',
  'updateSearchIndex',
  'dropSearchIndex',
  'listSearchIndexes',
  'analyze',
  'planCacheClear',
  'planCacheClearFilters',
  'planCacheListFilters',
  'planCacheSetFilter',
  'profile',
  'dataSize',
  'filemd5',
  'shutdown',
  'top',
  'lockInfo',
  'replSetInitiate',
  'replSetReconfig',
  'replSetStepDown',
  'shardCollection',
  'applyOps',
  'cloneCollection',
  'setIndexCommitQuorum',
  'configureQueryAnalyzer',
  'checkMetadataConsistency',
  'cleanupStructuredEncryptionData',
  'compactStructuredEncryptionData',
];

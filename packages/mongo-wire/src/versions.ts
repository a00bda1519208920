/**
 * The MongoDB version the server announces, and everything that depends on it: one table.
 *
 * `RELEASES` holds what the handshake and the diagnostics report per release (hello /
 * isMaster `maxWireVersion`, buildInfo `version` / `versionArray`, getParameter
 * `featureCompatibilityVersion`, serverStatus `version`). `FEATURES` says, for every command,
 * command field, index option, pipeline stage, expression, accumulator, window function, server
 * parameter and behaviour of this server that did not exist in every release, the release that
 * introduced it (and the one that removed it, for parameters). The checks are derived from it
 * (`ServerVersion.has`): the refusals use the error the announced release gives for something it
 * does not know (surface.ts, commands.ts, update.ts).
 *
 * '3.6' and '4.0' exist so that a client's refusal of them can be tested (driver 6.x requires
 * wire version 8, MongoDB 4.2): they announce their version, and otherwise behave as 4.2.
 *
 * Releases between two of the table's (5.1 to 5.3, 6.1 to 6.3, 7.1 to 7.3) are counted as the
 * next one of the table: `$densify` (5.1) is available from '6.0'. Patch releases: the table
 * announces the last patch release of each line we know of, so features that arrived in a patch
 * (`hello`, `$rand`: 4.4.2) count as available in that line.
 */

/** The releases the server can announce, oldest first. */
export const MONGODB_VERSIONS = ['3.6', '4.0', '4.2', '4.4', '5.0', '6.0', '7.0', '8.0'] as const;
export type MongoDBVersion = (typeof MONGODB_VERSIONS)[number];
export const DEFAULT_MONGODB_VERSION: MongoDBVersion = '8.0';

interface Release {
  /** buildInfo.version, serverStatus.version. */
  version: string;
  maxWireVersion: number;
  featureCompatibilityVersion: string;
  /** The release whose behaviour is served (itself, except 3.6 / 4.0: 4.2). */
  behaves: MongoDBVersion;
}

const RELEASES: Record<MongoDBVersion, Release> = {
  '3.6': { version: '3.6.23', maxWireVersion: 6, featureCompatibilityVersion: '3.6', behaves: '4.2' },
  '4.0': { version: '4.0.28', maxWireVersion: 7, featureCompatibilityVersion: '4.0', behaves: '4.2' },
  '4.2': { version: '4.2.25', maxWireVersion: 8, featureCompatibilityVersion: '4.2', behaves: '4.2' },
  '4.4': { version: '4.4.29', maxWireVersion: 9, featureCompatibilityVersion: '4.4', behaves: '4.4' },
  '5.0': { version: '5.0.26', maxWireVersion: 13, featureCompatibilityVersion: '5.0', behaves: '5.0' },
  '6.0': { version: '6.0.19', maxWireVersion: 17, featureCompatibilityVersion: '6.0', behaves: '6.0' },
  '7.0': { version: '7.0.16', maxWireVersion: 21, featureCompatibilityVersion: '7.0', behaves: '7.0' },
  '8.0': { version: '8.0.4', maxWireVersion: 25, featureCompatibilityVersion: '8.0', behaves: '8.0' },
};

/** A release of the table, or 'later': introduced after 8.0, so known to none of the announced releases. */
export type Since = MongoDBVersion | 'later';

export interface Feature {
  since: Since;
  /** The release that removed it (server parameters renamed). */
  removed?: MongoDBVersion;
}

/**
 * What arrived after 4.2 (the oldest behaviour served), keyed `kind:name`. Anything of a kind that
 * is not listed existed in 4.2 already. Kinds and the error a release that lacks it gives:
 *
 * - `command:` 59 CommandNotFound `no such command: 'x'`.
 * - `field:command.x` / `field:command.statements.x`: the unknown-field error of that command's
 *   parser in the release (`unknownFieldError`).
 * - `indexOption:` 197 `The field 'x' is not valid for an index specification.`
 * - `stage:` 40324 `Unrecognized pipeline stage name: '$x'`.
 * - `expression:` 168 `Unrecognized expression '$x'` (in `$project`, `$expr`...).
 * - `accumulator:` 15952 `unknown group operator '$x'` (`$group`, `$bucket`, `$bucketAuto`); in
 *   `$setWindowFields`: 9 `Unrecognized window function, $x`.
 * - `window:` (window-only functions) 9 `Unrecognized window function, $x`.
 * - `parameter:` the server parameters of getParameter / setParameter.
 * - `behaviour:` a rule of the release (see each).
 */
export const FEATURES: Record<string, Feature> = {
  // Commands. `hello` arrived in 4.4.2 (and 5.0); before, `isMaster` only and no `helloOk`.
  'command:hello': { since: '4.4' },
  'command:getDefaultRWConcern': { since: '4.4' },
  'command:setIndexCommitQuorum': { since: '4.4' },
  'command:compactStructuredEncryptionData': { since: '6.0' },
  'command:cleanupStructuredEncryptionData': { since: '7.0' },
  'command:createSearchIndexes': { since: '7.0' },
  'command:updateSearchIndex': { since: '7.0' },
  'command:dropSearchIndex': { since: '7.0' },
  'command:listSearchIndexes': { since: '7.0' },
  'command:analyze': { since: '7.0' },
  'command:configureQueryAnalyzer': { since: '7.0' },
  'command:checkMetadataConsistency': { since: '7.0' },

  // Command and statement fields this server accepts.
  'field:find.allowDiskUse': { since: '4.4' },
  'field:find.let': { since: '5.0' },
  'field:aggregate.let': { since: '5.0' },
  'field:update.let': { since: '5.0' },
  'field:delete.let': { since: '5.0' },
  'field:findAndModify.let': { since: '5.0' },
  'field:findAndModify.hint': { since: '4.4' },
  'field:update.updates.c': { since: '5.0' },
  'field:update.updates.sort': { since: '8.0' },
  'field:delete.deletes.hint': { since: '4.4' },
  'indexOption:hidden': { since: '4.4' },

  // Pipeline stages ($merge, $set, $unset, $replaceWith: 4.2).
  'stage:$unionWith': { since: '4.4' },
  'stage:$setWindowFields': { since: '5.0' },
  'stage:$densify': { since: '6.0' }, // 5.1
  'stage:$documents': { since: '6.0' }, // 5.1
  'stage:$fill': { since: '6.0' }, // 5.3

  // Expression operators (4.2 brought $regexFind/All/Match, the trigonometric ones, $round).
  'expression:$isNumber': { since: '4.4' },
  'expression:$replaceOne': { since: '4.4' },
  'expression:$replaceAll': { since: '4.4' },
  'expression:$first': { since: '4.4' }, // the array expression; the accumulator is older
  'expression:$last': { since: '4.4' },
  'expression:$rand': { since: '4.4' }, // 4.4.2
  'expression:$sampleRate': { since: '4.4' }, // 4.4.2
  'expression:$binarySize': { since: '4.4' },
  'expression:$bsonSize': { since: '4.4' },
  'expression:$function': { since: '4.4' },
  'expression:$dateAdd': { since: '5.0' },
  'expression:$dateDiff': { since: '5.0' },
  'expression:$dateSubtract': { since: '5.0' },
  'expression:$dateTrunc': { since: '5.0' },
  'expression:$getField': { since: '5.0' },
  'expression:$setField': { since: '5.0' },
  'expression:$unsetField': { since: '5.0' },
  'expression:$tsIncrement': { since: '6.0' }, // 5.1
  'expression:$tsSecond': { since: '6.0' }, // 5.1
  'expression:$firstN': { since: '6.0' }, // 5.2, array expressions
  'expression:$lastN': { since: '6.0' },
  'expression:$maxN': { since: '6.0' },
  'expression:$minN': { since: '6.0' },
  'expression:$sortArray': { since: '6.0' }, // 5.2
  'expression:$bitAnd': { since: '7.0' }, // 6.3
  'expression:$bitOr': { since: '7.0' },
  'expression:$bitXor': { since: '7.0' },
  'expression:$bitNot': { since: '7.0' },
  'expression:$median': { since: '7.0' },
  'expression:$percentile': { since: '7.0' },
  'expression:$toHashedIndexKey': { since: '7.0' },
  'expression:$toUUID': { since: '8.0' },
  'expression:$sigmoid': { since: 'later' }, // 8.2

  // Accumulators ($group, $bucket, $bucketAuto, and as window functions).
  'accumulator:$accumulator': { since: '4.4' },
  'accumulator:$count': { since: '5.0' },
  'accumulator:$top': { since: '6.0' }, // 5.2
  'accumulator:$bottom': { since: '6.0' },
  'accumulator:$topN': { since: '6.0' },
  'accumulator:$bottomN': { since: '6.0' },
  'accumulator:$firstN': { since: '6.0' },
  'accumulator:$lastN': { since: '6.0' },
  'accumulator:$maxN': { since: '6.0' },
  'accumulator:$minN': { since: '6.0' },
  'accumulator:$median': { since: '7.0' },
  'accumulator:$percentile': { since: '7.0' },

  // Window-only functions ($setWindowFields itself is 5.0, with $derivative, $integral, $rank...).
  'window:$locf': { since: '6.0' }, // 5.2
  'window:$linearFill': { since: '6.0' }, // 5.3
  'window:$minMaxScaler': { since: 'later' }, // 8.2

  // Server parameters (getParameter / setParameter).
  'parameter:internalQueryExecMaxBlockingSortBytes': { since: '4.2', removed: '4.4' },
  'parameter:internalDocumentSourceSortMaxBlockingSortBytes': { since: '4.2', removed: '4.4' },
  'parameter:internalQueryMaxBlockingSortMemoryUsageBytes': { since: '4.4' },
  'parameter:allowDiskUseByDefault': { since: '6.0' },

  // Behaviours.
  /** An update operator with an empty operand (`{$set: {}}`) is a no-op; before: 9 FailedToParse. */
  'behaviour:emptyUpdateOperand': { since: '5.0' },
  /** `$lookup` with `pipeline` and `localField` / `foreignField` together; before: 9 FailedToParse. */
  'behaviour:lookupConciseSyntax': { since: '5.0' },
  /** find / aggregate / findAndModify parsed by IDL: unknown fields 40415 (before: their own parsers). */
  'behaviour:idlParsedReadCommands': { since: '5.0' },
  /** A sort over the memory limit: 292 QueryExceededMemoryLimitNoDiskUseAllowed (before: 96 / 16819). */
  'behaviour:sortMemoryLimitCode292': { since: '4.4' },
};

/** Server parameters: their defaults, and what they govern here. */
export const SORT_PARAMETERS = {
  /** ≤ 4.2: the find / findAndModify blocking SORT stage. */
  internalQueryExecMaxBlockingSortBytes: { default: 32 * 1024 * 1024, governs: ['find'] },
  /** ≤ 4.2: the aggregation `$sort` stage. */
  internalDocumentSourceSortMaxBlockingSortBytes: { default: 100 * 1024 * 1024, governs: ['aggregate'] },
  /** ≥ 4.4: both. */
  internalQueryMaxBlockingSortMemoryUsageBytes: { default: 100 * 1024 * 1024, governs: ['find', 'aggregate'] },
} as const;
export type SortParameter = keyof typeof SORT_PARAMETERS;

const RANK = new Map<string, number>(MONGODB_VERSIONS.map((v, i) => [v, i]));

export function isMongoDBVersion(v: unknown): v is MongoDBVersion {
  return typeof v === 'string' && RANK.has(v);
}

/** The announced release: what it reports, and what it has (`has`). */
export class ServerVersion {
  readonly release: MongoDBVersion;
  /** Full version string, e.g. '4.2.25'. */
  readonly version: string;
  readonly versionArray: [number, number, number, number];
  readonly maxWireVersion: number;
  readonly featureCompatibilityVersion: string;
  /** The release whose behaviour is served. */
  readonly behaves: MongoDBVersion;
  private readonly rank: number;

  constructor(release: MongoDBVersion) {
    const r = RELEASES[release];
    this.release = release;
    this.version = r.version;
    const [major, minor, patch] = r.version.split('.').map(Number);
    this.versionArray = [major, minor, patch, 0];
    this.maxWireVersion = r.maxWireVersion;
    this.featureCompatibilityVersion = r.featureCompatibilityVersion;
    this.behaves = r.behaves;
    this.rank = RANK.get(r.behaves) as number;
  }

  /** Whether the served behaviour has `key` (`kind:name`); unlisted names of a listed kind are old, so present. */
  has(key: string): boolean {
    const f = Object.prototype.hasOwnProperty.call(FEATURES, key) ? FEATURES[key] : undefined;
    if (!f) return true;
    if (f.since === 'later' || (RANK.get(f.since) as number) > this.rank) return false;
    return f.removed === undefined || (RANK.get(f.removed) as number) > this.rank;
  }

  /** The sort-limit parameters of this release, with the one governing find and the one governing aggregation. */
  sortParameters(): { find: SortParameter; aggregate: SortParameter } {
    const names = (Object.keys(SORT_PARAMETERS) as SortParameter[]).filter((p) => this.has(`parameter:${p}`));
    const pick = (what: 'find' | 'aggregate'): SortParameter =>
      names.find((p) => (SORT_PARAMETERS[p].governs as readonly string[]).includes(what)) as SortParameter;
    return { find: pick('find'), aggregate: pick('aggregate') };
  }
}

/** The ServerVersion of a release name; anything but the table's names is an Error saying which exist. */
export function serverVersion(release: unknown = DEFAULT_MONGODB_VERSION): ServerVersion {
  if (!isMongoDBVersion(release))
    throw new Error(
      `unsupported MongoDB version ${JSON.stringify(release)}: the embedded server can announce ${MONGODB_VERSIONS.join(', ')}`,
    );
  return new ServerVersion(release);
}

/**
 * Command dispatcher: every command (OP_MSG or legacy OP_QUERY on <db>.$cmd) goes through
 * `Dispatcher.run`, synchronously.
 */
import * as os from 'node:os';
import { BSON, Long, UUID } from 'bson';
import { ProcessingMode } from 'mingo';
import { errorReply, fail, MongoWireError, toWireError } from './errors';
import { Collection, EngineStats, Plan, Rec, SelectOptions, Storage, validateCollName } from './engine';
import { compileSchema } from './jsonschema';
import { Admission, checkStandaloneSession, replicaSetCommand, ReplicaSetMember } from './replica-set';
import { makeProjector, Projector } from './projection';
import { evaluateLet, newAggregator, newQuery } from './query';
import {
  checkCollation,
  checkFields,
  checkFilterOperators,
  checkIndexSpec,
  checkPipeline,
  COMMAND_FIELDS,
  GENERIC_ARGUMENTS,
  DELETE_STATEMENT_FIELDS,
  notSupported,
  REFUSED_COMMANDS,
  UPDATE_STATEMENT_FIELDS,
} from './surface';
import { applyUpdate, parseUpdate, ParsedUpdate, seedFromFilter, withIdFirst } from './update';
import {
  AnnMap,
  annMapOf,
  annsUnder,
  canon,
  Doc,
  EMPTY_ARRAY,
  isPlainObject,
  pathValues,
  RawAnn,
  showValue,
  typedView,
} from './values';
import { encodeCursorReply, MAX_BSON_SIZE } from './wire';
import { serverVersion, ServerVersion, SORT_PARAMETERS, SortParameter } from './versions';

export interface ConnectionInfo {
  id: number;
  remote: string;
}

export interface CommandContext {
  db: string;
  anns: RawAnn[];
  conn: ConnectionInfo;
  /** OP_QUERY's secondaryOk flag (a read may run on a secondary; OP_MSG uses `$readPreference`). */
  secondaryOk?: boolean;
  /** Set by run(): a retryable write (txnNumber without autocommit, replica-set mode). */
  retryableWrite?: boolean;
}

type Reply = Doc | Uint8Array;

/**
 * Returned by Dispatcher.run instead of a reply when the `failCommand` fail point asks for the
 * connection to be closed (the front end destroys the socket without answering).
 */
export const CLOSE_CONNECTION = new Uint8Array(0);

export interface DispatcherOptions {
  /**
   * Register the test-only commands (`configureFailPoint`, as mongod's enableTestCommands does).
   * Off by default: without it they are "no such command" (59), as on a production mongod.
   */
  enableTestCommands?: boolean;
  /** Replica-set mode: the member's state, checks and retryable-write records (replica-set.ts). */
  replSet?: ReplicaSetMember;
  /** The MongoDB release announced and served (versions.ts; default '8.0'; others: an Error). */
  mongodbVersion?: string;
  /**
   * Memory limit (bytes) of a blocking sort in find / findAndModify / update (default: the
   * release's internalQueryExecMaxBlockingSortBytes, 32 MiB, up to 4.2, or
   * internalQueryMaxBlockingSortMemoryUsageBytes, 100 MiB, from 4.4). setParameter changes it.
   */
  maxBlockingSortBytes?: number;
  /** Memory limit (bytes) of an aggregation `$sort` (default 100 MiB). setParameter changes it. */
  maxAggregationSortBytes?: number;
}

/** The `failCommand` fail point (the only one implemented): see configureFailPoint. */
interface FailCommand {
  remaining: number;
  commands: Set<string>;
  errorCode?: number;
  closeConnection: boolean;
  errorLabels?: string[];
}
const FAIL_COMMAND_DATA = new Set(['failCommands', 'errorCode', 'closeConnection', 'errorLabels']);
type Handler = (body: Doc, ctx: CommandContext, name: string) => Reply;

interface CursorState {
  id: number;
  ns: string;
  items: unknown[];
  pos: number;
  render: (item: unknown) => Uint8Array;
  lastUsed: number;
}

const BATCH_BYTES = MAX_BSON_SIZE - 64 * 1024;
const CURSOR_IDLE_MS = 10 * 60 * 1000;
const SERIALIZE_OPTIONS = { checkKeys: false, ignoreUndefined: false } as const;

/** Stages that never mutate their input documents in mingo. */
const NON_MUTATING_STAGES = new Set([
  '$match',
  '$sort',
  '$skip',
  '$limit',
  '$count',
  '$group',
  '$sortByCount',
  '$sample',
  '$project',
]);

/** Commands that never change stored data; any other command counts as a write (see `writes`). */
const READ_ONLY_COMMANDS = new Set(
  [
    'hello',
    'isMaster',
    'ping',
    'buildInfo',
    'getParameter',
    'setParameter',
    'serverStatus',
    'hostInfo',
    'whatsmyuri',
    'getCmdLineOpts',
    'connectionStatus',
    'getLog',
    'getLastError',
    'getPrevError',
    'endSessions',
    'startSession',
    'refreshSessions',
    'listCommands',
    'listCollections',
    'listDatabases',
    'listIndexes',
    'dbStats',
    'collStats',
    'validate',
    'find',
    'getMore',
    'killCursors',
    'count',
    'distinct',
    'explain',
  ].map((n) => n.toLowerCase()),
);

function num(v: unknown, dflt = 0): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return dflt;
}

function collName(body: Doc, name: string): string {
  const v = body[Object.keys(body)[0]];
  validateCollName(v);
  void name;
  return v;
}

function asDoc(v: unknown, what: string): Doc | null {
  if (v === undefined || v === null) return null;
  if (!isPlainObject(v))
    fail(14, `"${what}" had the wrong type. Expected object, found ${Array.isArray(v) ? 'array' : typeof v}`);
  return v;
}

/** Annotations per element of a body array field (documents / updates / deletes). */
function annsByElement(anns: RawAnn[], field: string): Map<number, RawAnn[]> {
  const m = new Map<number, RawAnn[]>();
  for (const r of anns) {
    if (r.segs[0] !== field || r.segs.length < 3) continue;
    const i = Number(r.segs[1]);
    let l = m.get(i);
    if (!l) m.set(i, (l = []));
    l.push({ segs: r.segs.slice(2), ann: r.ann });
  }
  return m;
}

/** `hint`: an index name or key pattern of the collection, or `{$natural: ±1}` (MongoDB: 2 BadValue otherwise). */
function checkHint(coll: Collection | undefined, hint: unknown): void {
  if (hint === undefined || hint === null || !coll) return;
  if (typeof hint === 'string') {
    if (hint === '_id_' || coll.findIndex(hint)) return;
  } else if (isPlainObject(hint)) {
    const keys = Object.keys(hint);
    if (keys.length === 1 && (keys[0] === '$natural' || keys[0] === '_id')) return;
    if (coll.findIndex(hint)) return;
  } else fail(2, 'hint must be a string or an object');
  fail(2, 'hint provided does not correspond to an existing index');
}

interface MergeSpec {
  db: string;
  coll: string;
  on: string[];
  whenMatched: 'replace' | 'keepExisting' | 'merge' | 'fail' | Doc[];
  whenNotMatched: 'insert' | 'discard' | 'fail';
  let: Doc | null;
}

const MERGE_FIELDS = { into: 'ok', on: 'ok', let: 'ok', whenMatched: 'ok', whenNotMatched: 'ok' } as const;

function parseMerge(spec: unknown, db: string): MergeSpec {
  const s: Doc =
    typeof spec === 'string' ? { into: spec } : isPlainObject(spec) ? spec : fail(2, 'Invalid $merge specification');
  checkFields('$merge', s, MERGE_FIELDS, false);
  const into = s.into;
  let target: { db: string; coll: string };
  if (typeof into === 'string') target = { db, coll: into };
  else if (isPlainObject(into) && typeof into.coll === 'string')
    target = { db: typeof into.db === 'string' ? into.db : db, coll: into.coll };
  else fail(51178, "$merge 'into' field must be either a string or an object");
  validateCollName(target.coll);
  const on = s.on === undefined ? ['_id'] : Array.isArray(s.on) ? s.on : [s.on];
  if (!on.length || !on.every((f) => typeof f === 'string'))
    fail(51186, "$merge 'on' field must be either a string or an array of strings");
  const whenMatched = s.whenMatched ?? 'merge';
  if (!Array.isArray(whenMatched) && !['replace', 'keepExisting', 'merge', 'fail'].includes(whenMatched as string))
    fail(2, `Enumeration value '${String(whenMatched)}' for field 'whenMatched' is not a valid value.`);
  const whenNotMatched = s.whenNotMatched ?? 'insert';
  if (!['insert', 'discard', 'fail'].includes(whenNotMatched as string))
    fail(2, `Enumeration value '${String(whenNotMatched)}' for field 'whenNotMatched' is not a valid value.`);
  if (s.let !== undefined && !Array.isArray(whenMatched))
    fail(51199, "Cannot use 'let' variables with 'whenMatched: " + String(whenMatched) + "' mode");
  return {
    ...target,
    on: on as string[],
    whenMatched: whenMatched as MergeSpec['whenMatched'],
    whenNotMatched: whenNotMatched as MergeSpec['whenNotMatched'],
    let: s.let === undefined ? null : (asDoc(s.let, '$merge.let') ?? {}),
  };
}

function writeError(index: number, err: unknown): Doc {
  const w = toWireError(err);
  return { index, code: w.code, errmsg: w.message, ...w.extra };
}

export class Dispatcher {
  readonly stats: EngineStats = { docsExamined: 0, indexLookups: 0, collectionScans: 0 };
  readonly storage = new Storage(this.stats);
  readonly connections = { current: 0, totalCreated: 0 };
  /** Incremented by every command that may change data (and TTL removals): "unsaved changes" checks. */
  writes = 0;
  private readonly cursors = new Map<number, CursorState>();
  private nextCursorId = 1000 + Math.floor(Math.random() * 1_000_000);
  private readonly startedAt = Date.now();
  private readonly handlers = new Map<string, Handler>();
  /** Lower-case command name → its canonical spelling (error messages, field tables). */
  private readonly canonical = new Map<string, string>();
  /** Compiled collection validators, per collection, recompiled when the validator changes. */
  private readonly validators = new WeakMap<Collection, { key: string; check: (doc: Doc) => Doc | null }>();
  private failCommand: FailCommand | null = null;
  /** Replica-set mode (null: a standalone). */
  readonly replSet: ReplicaSetMember | null;
  /** The announced release: what hello / buildInfo report and which features answer (versions.ts). */
  readonly version: ServerVersion;
  /** Blocking-sort memory limits (bytes): find / findAndModify / update, and aggregation `$sort`. */
  readonly sortLimits: { find: number; aggregate: number };
  /** The allowDiskUseByDefault server parameter (6.0+): a sort may spill unless `allowDiskUse: false`. */
  allowDiskUseByDefault = true;

  constructor(options: DispatcherOptions = {}) {
    this.replSet = options.replSet ?? null;
    this.version = serverVersion(options.mongodbVersion);
    const params = this.version.sortParameters();
    const limit = (name: string, v: number | undefined, dflt: number): number => {
      if (v === undefined) return dflt;
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`invalid ${name}: ${v} (a number of bytes, 0 or more)`);
      return v;
    };
    this.sortLimits = {
      find: limit('maxBlockingSortBytes', options.maxBlockingSortBytes, SORT_PARAMETERS[params.find].default),
      aggregate: limit(
        'maxAggregationSortBytes',
        options.maxAggregationSortBytes,
        SORT_PARAMETERS[params.aggregate].default,
      ),
    };
    const h = (names: string[], fn: Handler): void => {
      for (const n of names) {
        this.handlers.set(n.toLowerCase(), fn);
        this.canonical.set(n.toLowerCase(), n);
      }
    };
    for (const n of REFUSED_COMMANDS) h([n], () => fail(115, `not supported by the embedded server: command '${n}'`));
    h(['hello', 'isMaster'], (b, c, n) => this.hello(b, c, n));
    h(['ping'], () => ({ ok: 1 }));
    h(['buildInfo'], () => this.buildInfo());
    h(['getParameter'], (b) => this.getParameter(b));
    h(['setParameter'], (b, c) => this.setParameter(b, c));
    h(['serverStatus'], () => this.serverStatus());
    h(['hostInfo'], () => ({
      system: {
        currentTime: new Date(),
        hostname: os.hostname(),
        cpuAddrSize: 64,
        memSizeMB: Math.round(os.totalmem() / 1048576),
        numCores: os.cpus().length,
      },
      os: { type: os.type(), name: os.platform(), version: os.release() },
      extra: {},
      ok: 1,
    }));
    h(['whatsmyuri'], (_b, c) => ({ you: c.conn.remote, ok: 1 }));
    h(['getCmdLineOpts'], () => ({ argv: ['mongo-wire'], parsed: {}, ok: 1 }));
    h(['connectionStatus'], () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 }));
    h(['getLog'], () => ({ totalLinesWritten: 0, log: [], ok: 1 }));
    h(['getLastError', 'getPrevError'], () => ({ n: 0, err: null, ok: 1 }));
    h(
      [
        'resetError',
        'killOp',
        'fsync',
        'logout',
        'setFeatureCompatibilityVersion',
        'refreshSessions',
        'killSessions',
        'killAllSessions',
        'killAllSessionsByPattern',
        'endSessions',
        'commitTransaction',
        'abortTransaction',
      ],
      () => ({ ok: 1 }),
    );
    h(['startSession'], () => ({ id: { id: new UUID() }, timeoutMinutes: 30, ok: 1 }));
    h(['currentOp'], () => ({ inprog: [], ok: 1 }));
    h(['replSetStepDown', 'replSetFreeze', 'replSetGetStatus', 'replSetGetConfig'], (b, c, n) =>
      replicaSetCommand(this.replSet, this.canonical.get(n.toLowerCase()) ?? n, b, c.db),
    );
    h(['getDefaultRWConcern'], () => ({
      defaultReadConcern: { level: 'local' },
      defaultWriteConcern: { w: 1, wtimeout: 0 },
      ok: 1,
    }));
    h(['listCommands'], () => this.listCommands());
    h(['create'], (b, c) => this.create(b, c));
    h(['drop'], (b, c) => this.drop(b, c));
    h(['dropDatabase'], (_b, c) => {
      this.storage.dropDb(c.db);
      return { dropped: c.db, ok: 1 };
    });
    h(['renameCollection'], (b) => this.renameCollection(b));
    h(['collMod'], (b, c) => this.collMod(b, c));
    h(['listCollections'], (b, c) => this.listCollections(b, c));
    h(['listDatabases'], (b) => this.listDatabases(b));
    h(['dbStats'], (_b, c) => this.dbStats(c));
    h(['collStats'], (b, c) => this.collStats(b, c));
    h(['validate'], (b, c) => {
      const coll = this.storage.get(c.db, collName(b, 'validate'));
      if (!coll) fail(26, `Collection '${c.db}.${String(b.validate)}' does not exist to validate.`);
      return {
        ns: coll.ns,
        nInvalidDocuments: 0,
        nrecords: coll.count,
        nIndexes: coll.indexes.length + 1,
        valid: true,
        warnings: [],
        errors: [],
        ok: 1,
      };
    });
    h(['createIndexes'], (b, c) => this.createIndexes(b, c));
    h(['listIndexes'], (b, c) => this.listIndexes(b, c));
    h(['dropIndexes', 'deleteIndexes'], (b, c) => this.dropIndexes(b, c));
    h(['insert'], (b, c) => this.insert(b, c));
    h(['update'], (b, c) => this.update(b, c));
    h(['delete'], (b, c) => this.delete(b, c));
    h(['findAndModify'], (b, c) => this.findAndModify(b, c));
    h(['find'], (b, c) => this.find(b, c));
    h(['getMore'], (b) => this.getMore(b));
    h(['killCursors'], (b) => this.killCursors(b));
    h(['aggregate'], (b, c) => this.aggregate(b, c));
    h(['count'], (b, c) => this.count(b, c));
    h(['distinct'], (b, c) => this.distinct(b, c));
    h(['explain'], (b, c) => this.explain(b, c));
    if (options.enableTestCommands) h(['configureFailPoint'], (b, c) => this.configureFailPoint(b, c));
  }

  /** Execute one command; always returns a serialized reply document. */
  run(body: Doc, ctx: CommandContext): Uint8Array {
    try {
      const name = Object.keys(body)[0];
      if (name === undefined) fail(59, 'no such command: ""');
      const lower = name.toLowerCase();
      const handler = this.handlers.get(lower);
      if (!handler) fail(59, `no such command: '${name}'`);
      const canonical = this.canonical.get(lower) ?? name;
      // A command of a later release is unknown to the announced one.
      if (!this.version.has(`command:${canonical}`)) fail(59, `no such command: '${name}'`);
      // Session arguments (lsid / txnNumber) are checked before the fail point, as mongod does.
      if (this.replSet) this.replSet.checkSession(canonical, body);
      else checkStandaloneSession(body);
      const fp = this.failCommand;
      if (fp && fp.commands.has(name) && this.failing()) {
        if (fp.closeConnection) return CLOSE_CONNECTION;
        if (fp.errorCode !== undefined)
          fail(
            fp.errorCode,
            "Failing command via 'failCommand' failpoint",
            fp.errorLabels ? { errorLabels: fp.errorLabels } : {},
          );
      }
      const fields = COMMAND_FIELDS[canonical];
      if (fields) checkFields(canonical, body, fields, true, this.version);
      // Replica-set mode: a secondary's refusals, then the retryable-write record (a retry of an
      // executed write gets the recorded reply).
      let admission: Admission | null = null;
      if (this.replSet) {
        admission = this.replSet.admit(canonical, body, ctx.db, ctx.conn, ctx.secondaryOk === true);
        if (admission?.replay) return admission.replay;
        if (admission?.retryable) ctx = { ...ctx, retryableWrite: true };
      }
      if (!READ_ONLY_COMMANDS.has(lower)) {
        this.writes++;
        this.replSet?.noteWrite();
      }
      const reply = handler(body, ctx, name);
      if (reply instanceof Uint8Array) return reply;
      admission?.record?.(reply);
      return BSON.serialize(reply, SERIALIZE_OPTIONS);
    } catch (e) {
      const reply = errorReply(toWireError(e));
      this.replSet?.labelError(reply, body);
      return BSON.serialize(reply, SERIALIZE_OPTIONS);
    }
  }

  /** Whether the failCommand fail point fires for this command (counts down `times`). */
  private failing(): boolean {
    const fp = this.failCommand;
    if (!fp) return false;
    if (fp.remaining !== Infinity && --fp.remaining <= 0) this.failCommand = null;
    return true;
  }

  /**
   * configureFailPoint (test command): only `failCommand`, modes `alwaysOn` / `off` / `{times: n}`,
   * data `failCommands`, `errorCode`, `closeConnection`, `errorLabels`; anything else is refused.
   */
  private configureFailPoint(body: Doc, ctx: CommandContext): Doc {
    if (ctx.db !== 'admin') fail(13, 'configureFailPoint may only be run against the admin database.');
    const name = body.configureFailPoint;
    if (name !== 'failCommand')
      fail(115, `not supported by the embedded server: fail point '${showValue(name)}' (only failCommand)`);
    for (const k of Object.keys(body))
      if (!['configureFailPoint', 'mode', 'data', ...GENERIC_ARGUMENTS].includes(k))
        fail(40415, `BSON field 'configureFailPoint.${k}' is an unknown field.`);
    const mode = body.mode;
    let remaining: number;
    if (mode === 'off') remaining = 0;
    else if (mode === 'alwaysOn') remaining = Infinity;
    else if (isPlainObject(mode) && Object.keys(mode).length === 1 && 'times' in mode) {
      remaining = Number(mode.times);
      if (!Number.isInteger(remaining) || remaining < 0) fail(2, "'times' option to 'mode' must be a non-negative int");
    } else
      fail(115, `not supported by the embedded server: fail point mode ${showValue(mode)} (alwaysOn, off, {times})`);
    const data = (body.data ?? {}) as Doc;
    if (!isPlainObject(data)) fail(14, "'data' must be an object");
    for (const k of Object.keys(data))
      if (!FAIL_COMMAND_DATA.has(k))
        fail(
          115,
          `not supported by the embedded server: failCommand data '${k}' (${[...FAIL_COMMAND_DATA].join(', ')})`,
        );
    if (remaining > 0) {
      if (!Array.isArray(data.failCommands) || data.failCommands.some((c) => typeof c !== 'string'))
        fail(2, "failCommand requires 'failCommands', an array of command names");
      if (data.errorCode === undefined && data.closeConnection !== true)
        fail(115, 'not supported by the embedded server: failCommand without errorCode or closeConnection');
    }
    this.failCommand =
      remaining > 0
        ? {
            remaining,
            commands: new Set(data.failCommands as string[]),
            errorCode: data.errorCode === undefined ? undefined : Number(data.errorCode),
            closeConnection: data.closeConnection === true,
            errorLabels: Array.isArray(data.errorLabels) ? (data.errorLabels as string[]) : undefined,
          }
        : null;
    return { count: 0, ok: 1 };
  }

  /** Periodic housekeeping: TTL expiry and idle cursors. */
  housekeeping(now = Date.now()): number {
    for (const [id, c] of this.cursors) if (now - c.lastUsed > CURSOR_IDLE_MS) this.cursors.delete(id);
    const removed = this.storage.expire(now);
    if (removed) this.writes++;
    return removed;
  }

  get openCursors(): number {
    return this.cursors.size;
  }

  // ---- handshake and diagnostics ------------------------------------------------------------------

  private hello(body: Doc, ctx: CommandContext, name: string): Doc {
    const legacy = name.toLowerCase() === 'ismaster';
    return {
      // helloOk (and the hello command) arrived in 4.4.2: older releases do not answer it.
      ...(this.version.has('command:hello') ? { helloOk: true } : {}),
      ...(this.replSet
        ? this.replSet.hello(legacy, body, ctx.conn)
        : legacy
          ? { ismaster: true }
          : { isWritablePrimary: true }),
      maxBsonObjectSize: MAX_BSON_SIZE,
      maxMessageSizeBytes: 48000000,
      maxWriteBatchSize: 100000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: ctx.conn.id,
      minWireVersion: 0,
      maxWireVersion: this.version.maxWireVersion,
      readOnly: false,
      ok: 1,
    };
  }

  private buildInfo(): Doc {
    return {
      version: this.version.version,
      gitVersion: 'mongo-wire',
      versionArray: this.version.versionArray,
      bits: 64,
      debug: false,
      maxBsonObjectSize: MAX_BSON_SIZE,
      storageEngines: ['inMemory'],
      javascriptEngine: 'none',
      modules: [],
      openssl: { running: 'disabled', compiled: 'disabled' },
      ok: 1,
    };
  }

  private getParameter(body: Doc): Doc {
    const known: Doc = {
      featureCompatibilityVersion: { version: this.version.featureCompatibilityVersion },
      authenticationMechanisms: [],
      maxBSONDepth: 100,
      ...this.parameters(),
    };
    const out: Doc = {};
    if (body.getParameter === '*') Object.assign(out, known);
    for (const k of Object.keys(body)) if (k in known) out[k] = known[k];
    return { ...out, ok: 1 };
  }

  /** The settable server parameters of the announced release, with their values. */
  private parameters(): Doc {
    const out: Doc = {};
    const names = this.version.sortParameters();
    // From 4.4 one parameter governs both sorts: it reads as find's limit.
    out[names.aggregate] = this.sortLimits.aggregate;
    out[names.find] = this.sortLimits.find;
    if (this.version.has('parameter:allowDiskUseByDefault')) out.allowDiskUseByDefault = this.allowDiskUseByDefault;
    return out;
  }

  /**
   * setParameter (admin database): the release's sort-memory parameters and allowDiskUseByDefault
   * (6.0+); replies `{was: <previous value>}` as mongod. Other parameters: 238 (mongod has many
   * more; this server implements no other).
   */
  private setParameter(body: Doc, ctx: CommandContext): Doc {
    if (ctx.db !== 'admin') fail(13, 'setParameter may only be run against the admin database.');
    const settable = this.parameters();
    const names = Object.keys(body).filter((k, i) => i > 0 && !GENERIC_ARGUMENTS.has(k));
    if (!names.length) fail(2, 'no option found to set, use help:true to see options ');
    const sortNames = this.version.sortParameters();
    let was: unknown;
    for (const name of names) {
      if (!(name in settable))
        notSupported(`setParameter '${name}' (settable here: ${Object.keys(settable).join(', ')})`);
      was = settable[name];
      const value = body[name];
      if (name === 'allowDiskUseByDefault') {
        if (typeof value !== 'boolean') fail(14, `BSON field 'allowDiskUseByDefault' must be a boolean`);
        this.allowDiskUseByDefault = value;
        continue;
      }
      const n = typeof value === 'number' ? value : Long.isLong(value) ? value.toNumber() : NaN;
      if (!Number.isSafeInteger(n)) fail(14, `Parameter ${name} must be a number, not ${showValue(value)}`);
      if (n < 0) fail(2, `Invalid value for parameter ${name}: ${n} is not greater than or equal to 0`);
      const p = name as SortParameter;
      if (p === sortNames.find) this.sortLimits.find = n;
      if (p === sortNames.aggregate) this.sortLimits.aggregate = n;
    }
    return { was, ok: 1 };
  }

  private serverStatus(): Doc {
    const now = Date.now();
    let objects = 0;
    for (const d of this.storage.dbs.values()) for (const c of d.values()) objects += c.count;
    return {
      host: os.hostname(),
      version: this.version.version,
      process: 'mongod',
      pid: Long.fromNumber(process.pid),
      uptime: Math.floor((now - this.startedAt) / 1000),
      uptimeMillis: Long.fromNumber(now - this.startedAt),
      localTime: new Date(now),
      connections: {
        current: this.connections.current,
        available: 100000,
        totalCreated: this.connections.totalCreated,
      },
      metrics: {
        document: { examined: this.stats.docsExamined, objects },
        cursor: { open: { total: this.cursors.size } },
      },
      ok: 1,
    };
  }

  private listCommands(): Doc {
    const commands: Doc = {};
    for (const k of this.handlers.keys()) commands[k] = { help: '' };
    return { commands, ok: 1 };
  }

  // ---- collections ------------------------------------------------------------------------------

  private options(body: Doc): Doc {
    const out: Doc = {};
    const keys = Object.keys(body);
    for (let i = 1; i < keys.length; i++) if (!GENERIC_ARGUMENTS.has(keys[i])) out[keys[i]] = body[keys[i]];
    return out;
  }

  private create(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'create');
    checkCollation(body.collation);
    this.checkValidationOptions(body);
    if (this.storage.get(ctx.db, name)) fail(48, `Collection ${ctx.db}.${name} already exists.`);
    this.storage.ensure(ctx.db, name, this.options(body));
    return { ok: 1 };
  }

  // ---- document validation ----------------------------------------------------------------------

  /** validator / validationLevel / validationAction of create and collMod: checked before anything changes. */
  private checkValidationOptions(body: Doc): void {
    if (body.validator !== undefined) {
      if (!isPlainObject(body.validator)) fail(14, "BSON field 'validator' is the wrong type, expected type 'object'");
      for (const k of ['$near', '$nearSphere', '$text', '$where'])
        if (JSON.stringify(Object.keys(body.validator)).includes(k))
          fail(2, `${k} is not allowed in collection validators`);
      // Compiles (and so checks) the whole validator: unknown operators, $jsonSchema keywords.
      this.compileValidator(body.validator).call(null, {});
    }
    const level = body.validationLevel;
    if (level !== undefined && !['off', 'strict', 'moderate'].includes(level as string))
      fail(2, `Enumeration value '${String(level)}' for field 'validationLevel' is not a valid value.`);
    const action = body.validationAction;
    if (action !== undefined && !['error', 'warn'].includes(action as string))
      fail(2, `Enumeration value '${String(action)}' for field 'validationAction' is not a valid value.`);
  }

  /** A validator as a function: null when the document passes, else MongoDB's `errInfo.details`. */
  private compileValidator(validator: Doc): (doc: Doc) => Doc | null {
    const keys = Object.keys(validator);
    if (!keys.length) return () => null;
    const q = newQuery(validator);
    const schema = keys.length === 1 && keys[0] === '$jsonSchema' ? compileSchema(validator.$jsonSchema) : null;
    return (doc) => {
      if (schema) {
        const failures = schema(doc);
        return failures.length ? { operatorName: '$jsonSchema', schemaRulesNotSatisfied: failures } : null;
      }
      if (q.test(doc)) return null;
      return {
        operatorName: keys.length === 1 ? keys[0] : '$and',
        specifiedAs: validator,
        reason: 'the document does not match the validator',
      };
    };
  }

  /**
   * Enforce the collection's validator on a document about to be written (`old`: the version it
   * replaces, for validationLevel moderate). 121 DocumentValidationFailure with `errInfo`.
   */
  private checkDocument(
    coll: Collection | undefined,
    doc: Doc,
    ann: AnnMap | null,
    old: Rec | null,
    bypass: boolean,
  ): void {
    if (!coll || bypass) return;
    const validator = coll.options.validator;
    if (!isPlainObject(validator) || !Object.keys(validator).length) return;
    const level = coll.options.validationLevel ?? 'strict';
    if (level === 'off') return;
    const key = canon(validator);
    let cached = this.validators.get(coll);
    if (!cached || cached.key !== key)
      this.validators.set(coll, (cached = { key, check: this.compileValidator(validator) }));
    const details = cached.check(typedView(doc, ann));
    if (!details) return;
    if (level === 'moderate' && old && cached.check(typedView(old.doc, old.ann))) return;
    if (coll.options.validationAction === 'warn') return;
    fail(121, 'Document failed validation', { errInfo: { failingDocumentId: doc._id, details } });
  }

  private drop(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'drop');
    const c = this.storage.drop(ctx.db, name);
    return { nIndexesWas: c ? c.indexes.length + 1 : 0, ns: `${ctx.db}.${name}`, ok: 1 };
  }

  private renameCollection(body: Doc): Doc {
    const from = String(body.renameCollection ?? '');
    const to = String(body.to ?? '');
    const split = (ns: string): [string, string] => {
      const i = ns.indexOf('.');
      if (i <= 0 || i === ns.length - 1) fail(73, `Invalid namespace specified '${ns}'`);
      return [ns.slice(0, i), ns.slice(i + 1)];
    };
    const [fdb, fname] = split(from);
    const [tdb, tname] = split(to);
    validateCollName(tname);
    const src = this.storage.get(fdb, fname);
    if (!src) fail(26, 'source namespace does not exist');
    if (this.storage.get(tdb, tname)) {
      if (!body.dropTarget) fail(48, 'target namespace exists');
      this.storage.drop(tdb, tname);
    }
    this.storage.drop(fdb, fname);
    const dst = this.storage.ensure(tdb, tname, src.options);
    for (const spec of src.indexes.map((i) => i.spec())) dst.createIndex(spec);
    for (const rec of src.docs.values()) dst.insert(rec.doc, rec.ann);
    return { ok: 1 };
  }

  private collMod(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'collMod');
    const coll = this.storage.get(ctx.db, name);
    if (!coll) fail(26, `ns does not exist: ${ctx.db}.${name}`);
    const out: Doc = { ok: 1 };
    this.checkValidationOptions(body);
    const opts = this.options(body);
    if (isPlainObject(opts.index)) {
      const spec = opts.index;
      const ix = coll.findIndex(spec.name ?? spec.keyPattern);
      if (!ix) fail(27, `cannot find index ${JSON.stringify(spec.name ?? spec.keyPattern)} for ns ${coll.ns}`);
      if (typeof spec.expireAfterSeconds === 'number') {
        out.expireAfterSeconds_old = ix.options.expireAfterSeconds;
        ix.options.expireAfterSeconds = spec.expireAfterSeconds;
        out.expireAfterSeconds_new = spec.expireAfterSeconds;
      }
      if (typeof spec.hidden === 'boolean') ix.options.hidden = spec.hidden;
      delete opts.index;
    }
    Object.assign(coll.options, opts);
    return out;
  }

  private collectionInfo(c: Collection): Doc {
    return {
      name: c.name,
      type: 'collection',
      options: c.options,
      info: { readOnly: false, uuid: c.uuid },
      idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
    };
  }

  private listCollections(body: Doc, ctx: CommandContext): Uint8Array {
    let infos = this.storage.collections(ctx.db).map((c) => this.collectionInfo(c));
    const filter = asDoc(body.filter, 'filter');
    if (filter && Object.keys(filter).length) {
      const q = newQuery(filter);
      infos = infos.filter((i) => q.test(i));
    }
    if (body.nameOnly) infos = infos.map((i) => ({ name: i.name, type: i.type }));
    const cursor = asDoc(body.cursor, 'cursor') ?? {};
    return this.cursorReply(
      `${ctx.db}.$cmd.listCollections`,
      infos,
      (d) => BSON.serialize(d as Doc, SERIALIZE_OPTIONS),
      cursor.batchSize,
      false,
    );
  }

  private dbSize(db: string): number {
    let size = 0;
    for (const c of this.storage.collections(db)) size += c.count * 256;
    return size;
  }

  private listDatabases(body: Doc): Doc {
    let dbs: Doc[] = [];
    let total = 0;
    for (const name of this.storage.dbs.keys()) {
      const size = this.dbSize(name);
      total += size;
      dbs.push({ name, sizeOnDisk: size, empty: size === 0 });
    }
    const filter = asDoc(body.filter, 'filter');
    if (filter && Object.keys(filter).length) {
      const q = newQuery(filter);
      dbs = dbs.filter((d) => q.test(d));
    }
    if (body.nameOnly) return { databases: dbs.map((d) => ({ name: d.name })), ok: 1 };
    return { databases: dbs, totalSize: total, totalSizeMb: Math.round(total / 1048576), ok: 1 };
  }

  private dbStats(ctx: CommandContext): Doc {
    const colls = this.storage.collections(ctx.db);
    let objects = 0;
    let indexes = 0;
    for (const c of colls) {
      objects += c.count;
      indexes += c.indexes.length + 1;
    }
    const dataSize = this.dbSize(ctx.db);
    return {
      db: ctx.db,
      collections: colls.length,
      views: 0,
      objects,
      avgObjSize: objects ? dataSize / objects : 0,
      dataSize,
      storageSize: dataSize,
      indexes,
      indexSize: 0,
      totalSize: dataSize,
      scaleFactor: 1,
      ok: 1,
    };
  }

  private collStats(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'collStats');
    const c = this.storage.get(ctx.db, name);
    if (!c) fail(26, `Collection [${ctx.db}.${name}] not found.`);
    let size = 0;
    for (const r of c.docs.values()) size += BSON.calculateObjectSize(r.doc);
    return {
      ns: c.ns,
      size,
      count: c.count,
      avgObjSize: c.count ? Math.round(size / c.count) : 0,
      storageSize: size,
      capped: !!c.capped,
      ...(c.capped ? { max: c.capped.max, maxSize: c.capped.size } : {}),
      nindexes: c.indexes.length + 1,
      totalIndexSize: 0,
      indexSizes: Object.fromEntries([['_id_', 0], ...c.indexes.map((i) => [i.name, 0])]),
      ok: 1,
    };
  }

  // ---- indexes ----------------------------------------------------------------------------------

  private createIndexes(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'createIndexes');
    const specs = body.indexes;
    if (!Array.isArray(specs) || specs.length === 0) fail(2, 'Must specify at least one index to create');
    for (const spec of specs) if (isPlainObject(spec)) checkIndexSpec(spec, this.version);
    const existed = !!this.storage.get(ctx.db, name);
    const coll = this.storage.ensure(ctx.db, name);
    const before = coll.indexes.length + 1;
    let created = 0;
    for (const spec of specs) {
      if (!isPlainObject(spec)) fail(2, 'Index spec must be an object');
      if (coll.createIndex(spec)) created++;
    }
    const out: Doc = {
      numIndexesBefore: before,
      numIndexesAfter: coll.indexes.length + 1,
      createdCollectionAutomatically: !existed,
    };
    if (!created) out.note = 'all indexes already exist';
    out.ok = 1;
    return out;
  }

  private listIndexes(body: Doc, ctx: CommandContext): Uint8Array {
    const name = collName(body, 'listIndexes');
    const coll = this.storage.get(ctx.db, name);
    if (!coll) fail(26, `ns does not exist: ${ctx.db}.${name}`);
    const cursor = asDoc(body.cursor, 'cursor') ?? {};
    return this.cursorReply(
      coll.ns,
      coll.indexSpecs(),
      (d) => BSON.serialize(d as Doc, SERIALIZE_OPTIONS),
      cursor.batchSize,
      false,
    );
  }

  private dropIndexes(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'dropIndexes');
    const coll = this.storage.get(ctx.db, name);
    if (!coll) fail(26, `ns not found ${ctx.db}.${name}`);
    const was = coll.indexes.length + 1;
    const target = body.index;
    const dropOne = (t: unknown): void => {
      if (t === '_id_' || (isPlainObject(t) && Object.keys(t).length === 1 && '_id' in t))
        fail(72, 'cannot drop _id index');
      const ix = coll.findIndex(t);
      if (!ix) {
        if (typeof t === 'string') fail(27, `index not found with name [${t}]`);
        fail(27, `can't find index with key: ${JSON.stringify(t)}`);
      }
      coll.dropIndex(ix);
    };
    if (target === '*') coll.indexes.splice(0);
    else if (Array.isArray(target)) {
      for (const t of target) if (!coll.findIndex(t)) fail(27, `index not found with name [${String(t)}]`);
      target.forEach(dropOne);
    } else dropOne(target);
    return { nIndexesWas: was, ok: 1 };
  }

  // ---- writes -----------------------------------------------------------------------------------

  private insert(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'insert');
    const docs = body.documents;
    if (!Array.isArray(docs)) fail(2, 'insert requires a documents array');
    const ordered = body.ordered !== false;
    const bypass = body.bypassDocumentValidation === true;
    const coll = this.storage.ensure(ctx.db, name);
    const anns = ctx.anns.length ? annsByElement(ctx.anns, 'documents') : null;
    let n = 0;
    const writeErrors: Doc[] = [];
    for (let i = 0; i < docs.length; i++) {
      try {
        const d = docs[i];
        if (!isPlainObject(d)) fail(2, 'document to insert must be an object');
        const doc = withIdFirst(d);
        const ann = annMapOf(anns?.get(i) ?? []);
        this.checkDocument(coll, doc, ann, null, bypass);
        coll.insert(doc, ann);
        n++;
      } catch (e) {
        writeErrors.push(writeError(i, e));
        if (ordered) break;
      }
    }
    return writeErrors.length ? { n, writeErrors, ok: 1 } : { n, ok: 1 };
  }

  private upsertDoc(
    db: string,
    name: string,
    filter: Doc | null,
    filterAnns: RawAnn[],
    u: ParsedUpdate,
    arrayFilters: Doc[] | undefined,
    vars: Doc | null,
    bypass: boolean,
  ): Rec {
    const seed = seedFromFilter(filter, filterAnns);
    const base = u.kind === 'replace' ? (seed.doc._id !== undefined ? { _id: seed.doc._id } : {}) : seed.doc;
    const baseAnn = u.kind === 'replace' ? null : seed.ann;
    const res = applyUpdate(base, baseAnn, u, { filter, arrayFilters, insert: true, vars });
    const doc = withIdFirst(res.doc);
    this.checkDocument(this.storage.get(db, name), doc, res.ann, null, bypass);
    const coll = this.storage.ensure(db, name);
    return coll.insert(doc, res.ann);
  }

  private update(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'update');
    const updates = body.updates;
    if (!Array.isArray(updates)) fail(2, 'update requires an updates array');
    const ordered = body.ordered !== false;
    const bypass = body.bypassDocumentValidation === true;
    const vars = evaluateLet(body.let, 'update', this.version);
    const anns = ctx.anns.length ? annsByElement(ctx.anns, 'updates') : null;
    let n = 0;
    let nModified = 0;
    const upserted: Doc[] = [];
    const writeErrors: Doc[] = [];
    for (let i = 0; i < updates.length; i++) {
      const statement = updates[i];
      // 8.0: a command error (not a write error), raised when the statement is reached.
      if (
        isPlainObject(statement) &&
        statement.sort !== undefined &&
        statement.multi === true &&
        this.version.has('field:update.updates.sort')
      )
        fail(9, 'Cannot specify sort with multi=true');
      try {
        const spec = updates[i];
        if (!isPlainObject(spec)) fail(2, 'update statement must be an object');
        checkFields('update.updates', spec, UPDATE_STATEMENT_FIELDS, false, this.version);
        const filter = asDoc(spec.q, 'q') ?? {};
        checkFilterOperators(filter, this.version);
        const sort = asDoc(spec.sort, 'sort');
        const own = anns?.get(i) ?? [];
        const u = parseUpdate(spec.u, annsUnder(own, ['u']), this.version);
        const multi = spec.multi === true;
        if (multi && ctx.retryableWrite) fail(72, 'Cannot use (or request) retryable writes with multi=true');
        if (multi && u.kind === 'replace') fail(9, 'multi update is not supported for replacement-style update');
        checkCollation(spec.collation);
        const constants = asDoc(spec.c, 'c');
        if (constants && u.kind !== 'pipeline')
          fail(51198, 'Constant values may only be specified for pipeline updates');
        const pipelineVars = constants ? { ...(vars ?? {}), ...constants } : vars;
        const arrayFilters = Array.isArray(spec.arrayFilters) ? (spec.arrayFilters as Doc[]) : undefined;
        const coll = this.storage.get(ctx.db, name);
        checkHint(coll, spec.hint);
        const recs = coll
          ? coll.select(
              filter,
              multi
                ? { vars }
                : { limit: 1, vars, sort, sortMemory: sort ? this.sortMemory('update', false, spec.hint) : undefined },
            )
          : [];
        if (recs.length === 0) {
          if (spec.upsert === true) {
            const rec = this.upsertDoc(
              ctx.db,
              name,
              filter,
              annsUnder(own, ['q']),
              u,
              arrayFilters,
              pipelineVars,
              bypass,
            );
            upserted.push({ index: i, _id: rec.doc._id });
            n++;
          }
          continue;
        }
        for (const rec of recs) {
          const res = applyUpdate(rec.doc, rec.ann, u, { filter, arrayFilters, insert: false, vars: pipelineVars });
          n++;
          if (res.modified) {
            this.checkDocument(coll, res.doc, res.ann, rec, bypass);
            (coll as Collection).replace(rec, res.doc, res.ann);
            nModified++;
          }
        }
      } catch (e) {
        writeErrors.push(writeError(i, e));
        if (ordered) break;
      }
    }
    const out: Doc = { n, nModified };
    if (upserted.length) out.upserted = upserted;
    if (writeErrors.length) out.writeErrors = writeErrors;
    out.ok = 1;
    return out;
  }

  private delete(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'delete');
    const deletes = body.deletes;
    if (!Array.isArray(deletes)) fail(2, 'delete requires a deletes array');
    const ordered = body.ordered !== false;
    const vars = evaluateLet(body.let, 'delete', this.version);
    let n = 0;
    const writeErrors: Doc[] = [];
    for (let i = 0; i < deletes.length; i++) {
      try {
        const spec = deletes[i];
        if (!isPlainObject(spec)) fail(2, 'delete statement must be an object');
        checkFields('delete.deletes', spec, DELETE_STATEMENT_FIELDS, false, this.version);
        const filter = asDoc(spec.q, 'q') ?? {};
        checkFilterOperators(filter, this.version);
        const limit = num(spec.limit);
        if (limit !== 0 && limit !== 1) fail(9, `The limit field in delete objects must be 0 or 1. Got ${limit}`);
        if (limit === 0 && ctx.retryableWrite) fail(72, 'Cannot use (or request) retryable writes with limit=0');
        checkCollation(spec.collation);
        const coll = this.storage.get(ctx.db, name);
        if (!coll) continue;
        checkHint(coll, spec.hint);
        if (limit !== 1 && Object.keys(filter).length === 0) {
          n += coll.count;
          coll.clear();
          continue;
        }
        const recs = coll.select(filter, limit === 1 ? { limit: 1, vars } : { vars });
        for (const rec of recs) {
          coll.remove(rec);
          n++;
        }
      } catch (e) {
        writeErrors.push(writeError(i, e));
        if (ordered) break;
      }
    }
    return writeErrors.length ? { n, writeErrors, ok: 1 } : { n, ok: 1 };
  }

  private findAndModify(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'findAndModify');
    const filter = asDoc(body.query, 'query') ?? {};
    const sort = asDoc(body.sort, 'sort');
    const remove = body.remove === true || body.remove === 1;
    const returnNew = body.new === true || body.new === 1;
    const upsert = body.upsert === true || body.upsert === 1;
    const project = makeProjector(body.fields, asDoc(body.query, 'query'));
    const arrayFilters = Array.isArray(body.arrayFilters) ? (body.arrayFilters as Doc[]) : undefined;
    if (!remove && body.update === undefined) fail(9, 'Either an update or remove=true must be specified');
    if (remove && body.update !== undefined) fail(9, 'Cannot specify both an update and remove=true');
    if (remove && (upsert || returnNew)) fail(9, 'Cannot specify both upsert=true and remove=true');
    checkCollation(body.collation);
    const vars = evaluateLet(body.let, 'findAndModify', this.version);
    checkFilterOperators(filter, this.version);
    const bypass = body.bypassDocumentValidation === true;
    const coll = this.storage.get(ctx.db, name);
    checkHint(coll, body.hint);
    // findAndModify has no allowDiskUse: its sort never spills.
    const sortMemory = sort ? this.sortMemory('findAndModify', false, body.hint) : undefined;
    const rec = coll ? coll.select(filter, { limit: 1, sort, vars, sortMemory })[0] : undefined;
    const out = (doc: Doc, ann: Rec['ann']): Doc => project(typedView(doc, ann));
    if (remove) {
      if (!rec || !coll) return { lastErrorObject: { n: 0 }, value: null, ok: 1 };
      coll.remove(rec);
      return { lastErrorObject: { n: 1 }, value: out(rec.doc, rec.ann), ok: 1 };
    }
    const u = parseUpdate(body.update, annsUnder(ctx.anns, ['update']), this.version);
    if (rec && coll) {
      const oldDoc = rec.doc;
      const oldAnn = rec.ann;
      const res = applyUpdate(oldDoc, oldAnn, u, { filter, arrayFilters, insert: false, vars });
      if (res.modified) {
        this.checkDocument(coll, res.doc, res.ann, rec, bypass);
        coll.replace(rec, res.doc, res.ann);
      }
      return {
        lastErrorObject: { n: 1, updatedExisting: true },
        value: returnNew ? out(rec.doc, rec.ann) : out(oldDoc, oldAnn),
        ok: 1,
      };
    }
    if (upsert) {
      const created = this.upsertDoc(
        ctx.db,
        name,
        filter,
        annsUnder(ctx.anns, ['query']),
        u,
        arrayFilters,
        vars,
        bypass,
      );
      return {
        lastErrorObject: { n: 1, updatedExisting: false, upserted: created.doc._id },
        value: returnNew ? out(created.doc, created.ann) : null,
        ok: 1,
      };
    }
    return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
  }

  // ---- reads ------------------------------------------------------------------------------------

  private cursorReply(
    ns: string,
    items: unknown[],
    render: (item: unknown) => Uint8Array,
    batchSize: unknown,
    singleBatch: boolean,
  ): Uint8Array {
    const size = typeof batchSize === 'number' && batchSize >= 0 ? batchSize : 101;
    // batchSize 0: an empty first batch with the cursor established.
    const { batch, next } = size === 0 ? { batch: [], next: 0 } : this.takeBatch(items, 0, size, render);
    let id = 0;
    if (next < items.length && !singleBatch) {
      id = this.nextCursorId++;
      this.cursors.set(id, { id, ns, items, pos: next, render, lastUsed: Date.now() });
    }
    return encodeCursorReply('firstBatch', batch, id, ns);
  }

  private takeBatch(
    items: unknown[],
    from: number,
    size: number,
    render: (item: unknown) => Uint8Array,
  ): { batch: Uint8Array[]; next: number } {
    const batch: Uint8Array[] = [];
    let bytes = 0;
    let i = from;
    const max = size > 0 ? size : Infinity;
    while (i < items.length && batch.length < max) {
      const b = render(items[i]);
      if (batch.length && bytes + b.length > BATCH_BYTES) break;
      batch.push(b);
      bytes += b.length;
      i++;
    }
    return { batch, next: i };
  }

  private renderRecs(projection: unknown, filter: Doc | null = null): (item: unknown) => Uint8Array {
    const project: Projector = makeProjector(projection, filter);
    return (item) => {
      const rec = item as Rec;
      return BSON.serialize(project(typedView(rec.doc, rec.ann)), SERIALIZE_OPTIONS);
    };
  }

  /**
   * The memory limit of a blocking sort (versions.ts: `behaviour:sortMemoryLimitCode292`), or
   * undefined when the sort may spill to disk. Up to 4.2 a find / findAndModify sort over
   * internalQueryExecMaxBlockingSortBytes fails with 96 OperationFailed "Sort operation used more
   * than the maximum N bytes of RAM..." and an aggregation $sort over
   * internalDocumentSourceSortMaxBlockingSortBytes with 16819 (sort.cpp / sorter.cpp of 4.2);
   * from 4.4 both fail with 292 QueryExceededMemoryLimitNoDiskUseAllowed (sort_executor). The
   * command adds its context: "Executor error during find command :: caused by :: ...".
   */
  private sortMemory(
    context: 'find' | 'findAndModify' | 'update' | 'aggregate',
    diskUse: boolean,
    hint: unknown,
  ): SelectOptions['sortMemory'] {
    if (diskUse) return undefined;
    const prefix = {
      find: 'Executor error during find command',
      findAndModify: 'Plan executor error during findAndModify',
      update: 'Plan executor error during update',
      aggregate: 'PlanExecutor error during aggregation',
    }[context];
    const modern = this.version.has('behaviour:sortMemoryLimitCode292');
    return {
      limit: context === 'aggregate' ? this.sortLimits.aggregate : this.sortLimits.find,
      hint,
      fail: (n: number): never => {
        if (modern)
          fail(
            292,
            `${prefix} :: caused by :: Sort exceeded memory limit of ${n} bytes, but did not opt in to external sorting.`,
          );
        if (context === 'aggregate')
          fail(
            16819,
            `Sort exceeded memory limit of ${n} bytes, but did not opt in to external sorting. Aborting operation. Pass allowDiskUse:true to opt in.`,
          );
        fail(
          96,
          `${prefix} :: caused by :: Sort operation used more than the maximum ${n} bytes of RAM. Add an index, or specify a smaller limit.`,
        );
      },
    };
  }

  /** A find's / aggregate's allowDiskUse: the command's, else allowDiskUseByDefault (6.0+), else false. */
  private diskUse(body: Doc): boolean {
    if (typeof body.allowDiskUse === 'boolean') return body.allowDiskUse;
    return this.version.has('parameter:allowDiskUseByDefault') && this.allowDiskUseByDefault;
  }

  private find(body: Doc, ctx: CommandContext): Uint8Array {
    const name = collName(body, 'find');
    const filter = asDoc(body.filter, 'filter');
    const sort = asDoc(body.sort, 'sort');
    let limit = num(body.limit);
    let singleBatch = body.singleBatch === true;
    if (limit < 0) {
      limit = -limit;
      singleBatch = true;
    }
    const skip = num(body.skip);
    if (skip < 0) fail(2, 'Skip value must be non-negative');
    checkCollation(body.collation);
    const vars = evaluateLet(body.let, 'find', this.version);
    checkFilterOperators(filter, this.version);
    const render = this.renderRecs(body.projection, filter);
    const coll = this.storage.get(ctx.db, name);
    checkHint(coll, body.hint);
    const sortMemory = sort ? this.sortMemory('find', this.diskUse(body), body.hint) : undefined;
    const recs = coll ? coll.select(filter, { sort, skip, limit, vars, sortMemory }) : [];
    const batchSize = typeof body.batchSize === 'number' ? body.batchSize : limit > 0 ? Math.min(101, limit) : 101;
    return this.cursorReply(`${ctx.db}.${name}`, recs, render, batchSize, singleBatch);
  }

  private getMore(body: Doc): Uint8Array {
    const id = num(body.getMore, -1);
    const c = this.cursors.get(id);
    if (!c) fail(43, `cursor id ${String(body.getMore)} not found`);
    const size = typeof body.batchSize === 'number' && body.batchSize > 0 ? body.batchSize : 0;
    const { batch, next } = this.takeBatch(c.items, c.pos, size, c.render);
    c.pos = next;
    c.lastUsed = Date.now();
    let outId = c.id;
    if (next >= c.items.length) {
      this.cursors.delete(id);
      outId = 0;
    }
    return encodeCursorReply('nextBatch', batch, outId, c.ns);
  }

  private killCursors(body: Doc): Doc {
    const ids = Array.isArray(body.cursors) ? body.cursors : [];
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const raw of ids) {
      const id = num(raw, -1);
      (this.cursors.delete(id) ? killed : notFound).push(Long.fromNumber(id));
    }
    return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
  }

  private count(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'count');
    checkCollation(body.collation);
    checkFilterOperators(body.query, this.version);
    const coll = this.storage.get(ctx.db, name);
    checkHint(coll, body.hint);
    const n = coll ? coll.countMatching(asDoc(body.query, 'query'), num(body.skip), Math.abs(num(body.limit))) : 0;
    return { n, ok: 1 };
  }

  private distinct(body: Doc, ctx: CommandContext): Doc {
    const name = collName(body, 'distinct');
    if (typeof body.key !== 'string') fail(14, '"key" had the wrong type. Expected string');
    checkCollation(body.collation);
    checkFilterOperators(body.query, this.version);
    const coll = this.storage.get(ctx.db, name);
    const values: unknown[] = [];
    if (coll) {
      const seen = new Set<string>();
      const segs = body.key.split('.');
      for (const rec of coll.select(asDoc(body.query, 'query'))) {
        for (const v of pathValues(rec.doc, segs)) {
          if (v === undefined || v === EMPTY_ARRAY) continue;
          const k = canon(v);
          if (seen.has(k)) continue;
          seen.add(k);
          values.push(v);
        }
      }
    }
    return { values, ok: 1 };
  }

  private aggregate(body: Doc, ctx: CommandContext): Uint8Array | Doc {
    if (body.explain) return this.explain({ explain: body }, ctx);
    const target = body.aggregate;
    const pipeline = body.pipeline;
    if (!Array.isArray(pipeline)) fail(14, "'pipeline' option must be specified as an array");
    const cursorOpt = asDoc(body.cursor, 'cursor');
    if (!cursorOpt) fail(9, "The 'cursor' option is required, except for aggregate with the explain argument");
    checkPipeline(pipeline, false, this.version);
    checkCollation(body.collation);
    const vars = evaluateLet(body.let, 'aggregate', this.version);
    // A $sort no index provides is a blocking DocumentSourceSort (the pushed-down leading one too).
    const sortMemory = this.sortMemory('aggregate', this.diskUse(body), body.hint);
    const bypass = body.bypassDocumentValidation === true;
    const stages = pipeline.slice() as Doc[];
    const dbLevel = target === 1;
    const name = dbLevel ? '$cmd.aggregate' : collName(body, 'aggregate');
    const ns = `${ctx.db}.${name}`;
    const coll = dbLevel ? undefined : this.storage.get(ctx.db, name);
    checkHint(coll, body.hint);

    // $out / $merge as the last stage (checkPipeline allows them nowhere else).
    let out: { db: string; coll: string } | null = null;
    let merge: MergeSpec | null = null;
    const last = stages[stages.length - 1];
    if (last && '$out' in last) {
      const o = last.$out;
      if (typeof o === 'string') out = { db: ctx.db, coll: o };
      else if (isPlainObject(o) && typeof o.coll === 'string') {
        if (o.timeseries !== undefined) notSupported('$out.timeseries (time series collections)');
        out = { db: typeof o.db === 'string' ? o.db : ctx.db, coll: o.coll };
      } else fail(2, 'Invalid $out specification');
      stages.pop();
    } else if (last && '$merge' in last) {
      merge = parseMerge(last.$merge, ctx.db);
      stages.pop();
    }

    // Push the leading $match / $sort / $skip / $limit down to the engine (indexes, top-k sort).
    let filter: Doc | null = null;
    let sort: Doc | null = null;
    let skip = 0;
    let limit = 0;
    let i = 0;
    if (!dbLevel) {
      if (stages[i] && '$match' in stages[i]) filter = asDoc(stages[i++].$match, '$match');
      if (stages[i] && '$sort' in stages[i]) sort = asDoc(stages[i++].$sort, '$sort');
      if (stages[i] && '$skip' in stages[i]) skip = num(stages[i++].$skip);
      if (stages[i] && '$limit' in stages[i]) limit = num(stages[i++].$limit);
      if (!sort && !skip && stages[i] && '$limit' in stages[i]) limit = num(stages[i++].$limit);
    }
    const rest = stages.slice(i);

    // countDocuments: [$match, ($skip), ($limit), $group {_id: <const>, n: {$sum: 1}}] or $count.
    if (!dbLevel && !out && !merge) {
      const fast = this.fastCount(rest);
      if (fast) {
        const n = coll ? coll.countMatching(filter, skip, limit, vars) : 0;
        const docs = n > 0 ? [fast(n)] : [];
        return this.cursorReply(
          ns,
          docs,
          (d) => BSON.serialize(d as Doc, SERIALIZE_OPTIONS),
          cursorOpt?.batchSize,
          false,
        );
      }
    }

    const recs = coll ? coll.select(filter, { sort, skip, limit, vars, sortMemory }) : [];
    let results: unknown[];
    let render: (item: unknown) => Uint8Array;
    if (rest.length === 0 && !out && !merge) {
      results = recs;
      render = this.renderRecs(undefined);
    } else {
      const mutating = rest.some((s) => !NON_MUTATING_STAGES.has(Object.keys(s)[0]));
      const input = recs.map((r) => r.doc);
      const options = {
        processingMode: mutating ? ProcessingMode.CLONE_INPUT : ProcessingMode.CLONE_OFF,
        collectionResolver: (n: string) => Array.from(this.storage.get(ctx.db, n)?.docs.values() ?? [], (r) => r.doc),
        variables: vars,
      };
      results =
        sortMemory && rest.some((s) => '$sort' in s)
          ? this.runMeasuringSorts(rest, input, options, sortMemory)
          : newAggregator(rest, options).run(input);
      render = (d) => BSON.serialize(d as Doc, SERIALIZE_OPTIONS);
    }
    const docOf = (d: unknown): Doc => (isPlainObject(d) ? d : (d as Rec).doc);
    if (out) {
      const existing = this.storage.get(out.db, out.coll);
      const docs = results.map((d) => withIdFirst(docOf(d)));
      // Validated and checked for duplicate _ids before the target is replaced: a failure changes nothing.
      const seen = new Set<string>();
      for (const doc of docs) {
        this.checkDocument(existing, doc, null, null, bypass);
        const k = canon(doc._id);
        if (seen.has(k))
          fail(
            11000,
            `E11000 duplicate key error collection: ${out.db}.${out.coll} index: _id_ dup key: { _id: ${showValue(doc._id)} }`,
            {
              keyPattern: { _id: 1 },
              keyValue: { _id: doc._id },
            },
          );
        seen.add(k);
      }
      const dst = this.storage.ensure(out.db, out.coll);
      dst.clear();
      for (const doc of docs) dst.insert(doc, null);
      results = [];
    }
    if (merge) {
      this.runMerge(merge, results.map(docOf), vars, bypass);
      results = [];
    }
    return this.cursorReply(ns, results, render, cursorOpt?.batchSize, false);
  }

  /**
   * Run a pipeline measuring what each top-level `$sort` holds (a blocking sort: nothing indexes
   * it): the pipeline runs in segments ending at each `$sort` (with the `$limit`, or `$skip` +
   * `$limit`, right after it: MongoDB's sort then keeps only the best skip + limit), and the BSON
   * bytes of its output must stay within the limit. Sorts inside `$facet` / `$lookup` /
   * `$unionWith` are not measured.
   */
  private runMeasuringSorts(
    stages: Doc[],
    input: unknown[],
    options: Parameters<typeof newAggregator>[1],
    memory: NonNullable<SelectOptions['sortMemory']>,
  ): unknown[] {
    let docs = input;
    let start = 0;
    for (let i = 0; i < stages.length; i++) {
      if (!('$sort' in stages[i])) continue;
      const [next, after] = [stages[i + 1], stages[i + 2]];
      const segment = stages.slice(start, i + 1);
      const held =
        next && '$limit' in next
          ? num(next.$limit)
          : next && '$skip' in next && after && '$limit' in after
            ? num(next.$skip) + num(after.$limit)
            : 0;
      if (held > 0) segment.push({ $limit: held });
      docs = newAggregator(segment, options).run(docs);
      if (docs.length * MAX_BSON_SIZE > memory.limit) {
        let bytes = 0;
        for (const d of docs)
          if ((bytes += BSON.calculateObjectSize(d as Doc, SERIALIZE_OPTIONS)) > memory.limit)
            memory.fail(memory.limit);
      }
      start = i + 1;
    }
    return start < stages.length ? newAggregator(stages.slice(start), options).run(docs) : docs;
  }

  /** `$merge` into a collection: matched on `on` (a unique index), then whenMatched / whenNotMatched. */
  private runMerge(m: MergeSpec, docs: Doc[], vars: Doc | null, bypass: boolean): void {
    const dst = this.storage.ensure(m.db, m.coll);
    const onId = m.on.length === 1 && m.on[0] === '_id';
    if (!onId) {
      const same = (key: Doc) => {
        const k = Object.keys(key);
        return k.length === m.on.length && m.on.every((f) => k.includes(f));
      };
      if (!dst.indexes.some((ix) => ix.unique && !ix.partial && !ix.sparse && same(ix.key)))
        fail(51183, 'Cannot find index to verify that join fields will be unique');
    }
    for (const d of docs) {
      const filter: Doc = {};
      let missing = false;
      for (const f of m.on) {
        const v = pathValues(d, f.split('.'))[0];
        if (v === undefined || v === null || Array.isArray(v)) {
          if (f === '_id' && v === undefined) {
            missing = true;
            continue;
          }
          fail(51132, `$merge write error: 'on' field '${f}' cannot be missing, null, undefined or an array`);
        }
        filter[f] = { $eq: v };
      }
      const found = missing ? [] : dst.select(filter, { limit: 1 });
      if (!found.length) {
        if (m.whenNotMatched === 'discard') continue;
        if (m.whenNotMatched === 'fail')
          fail(
            13113,
            '$merge could not find a matching document in the target collection for at least one document in the source collection',
          );
        const doc = withIdFirst(d);
        this.checkDocument(dst, doc, null, null, bypass);
        dst.insert(doc, null);
        continue;
      }
      const rec = found[0];
      if (m.whenMatched === 'keepExisting') continue;
      if (m.whenMatched === 'fail') {
        // As MongoDB: the insert that fails on the duplicate key (11000, keyPattern, keyValue).
        dst.insert(withIdFirst(d), null);
        continue;
      }
      let next: Doc;
      if (Array.isArray(m.whenMatched)) {
        const u = parseUpdate(m.whenMatched, [], this.version);
        // `let` is evaluated against each source document; without it, $$new is that document.
        const own = m.let ? (newAggregator([{ $replaceWith: m.let }]).run([d])[0] as Doc) : { new: d };
        next = applyUpdate(rec.doc, rec.ann, u, { filter: null, insert: false, vars: { ...(vars ?? {}), ...own } }).doc;
      } else if (m.whenMatched === 'replace') next = { _id: rec.doc._id, ...d };
      else next = { ...rec.doc, ...d };
      if (d._id !== undefined && canon(d._id) !== canon(rec.doc._id))
        fail(
          66,
          `$merge failed to update the matching document, did you attempt to modify the _id or the shard key? :: caused by :: Performing an update on the path '_id' would modify the immutable field '_id'`,
        );
      next = withIdFirst(next);
      this.checkDocument(dst, next, null, rec, bypass);
      dst.replace(rec, next, null);
    }
  }

  private fastCount(rest: Doc[]): ((n: number) => Doc) | null {
    if (rest.length !== 1) return null;
    const st = rest[0];
    if (typeof st.$count === 'string') {
      const field = st.$count;
      return (n) => ({ [field]: n });
    }
    const g = st.$group;
    if (!isPlainObject(g)) return null;
    const keys = Object.keys(g);
    if (keys.length !== 2 || keys[0] !== '_id') return null;
    const id = g._id;
    if (!(id === null || typeof id === 'number' || (typeof id === 'string' && !id.startsWith('$')))) return null;
    const field = keys[1];
    const acc = g[field];
    if (!isPlainObject(acc) || Object.keys(acc).length !== 1 || acc.$sum !== 1) return null;
    return (n) => ({ _id: id, [field]: n });
  }

  private explain(body: Doc, ctx: CommandContext): Doc {
    const inner = asDoc(body.explain, 'explain');
    if (!inner) fail(9, 'explain command requires a nested object');
    const cmd = Object.keys(inner)[0]?.toLowerCase();
    const name = inner[Object.keys(inner)[0]];
    const coll = typeof name === 'string' ? this.storage.get(ctx.db, name) : undefined;
    let filter: Doc | null = null;
    let sort: Doc | null = null;
    if (cmd === 'find') {
      filter = asDoc(inner.filter, 'filter');
      sort = asDoc(inner.sort, 'sort');
    } else if (cmd === 'count' || cmd === 'distinct') filter = asDoc(inner.query, 'query');
    else if (cmd === 'findandmodify') filter = asDoc(inner.query, 'query');
    else if (cmd === 'aggregate' && Array.isArray(inner.pipeline)) {
      const first = inner.pipeline[0];
      if (isPlainObject(first) && '$match' in first) filter = asDoc(first.$match, '$match');
    } else if (cmd === 'update' && Array.isArray(inner.updates) && isPlainObject(inner.updates[0]))
      filter = asDoc(inner.updates[0].q, 'q');
    else if (cmd === 'delete' && Array.isArray(inner.deletes) && isPlainObject(inner.deletes[0]))
      filter = asDoc(inner.deletes[0].q, 'q');
    else fail(59, `Explain is not supported for ${String(cmd)}`);
    const info: { plan?: Plan; examined?: number } = {};
    const started = Date.now();
    const recs = coll ? coll.select(filter, { sort }, info) : [];
    const index = info.plan?.index ?? null;
    const winningPlan = index
      ? { stage: 'FETCH', inputStage: { stage: 'IXSCAN', indexName: index, keysExamined: info.plan?.count ?? 0 } }
      : { stage: coll ? 'COLLSCAN' : 'EOF' };
    return {
      queryPlanner: {
        namespace: `${ctx.db}.${String(name)}`,
        parsedQuery: filter ?? {},
        winningPlan,
        rejectedPlans: [],
      },
      executionStats: {
        nReturned: recs.length,
        executionTimeMillis: Date.now() - started,
        totalKeysExamined: info.plan?.count ?? 0,
        totalDocsExamined: info.examined ?? 0,
        executionStages: winningPlan,
      },
      ok: 1,
    };
  }
}

export { MongoWireError };

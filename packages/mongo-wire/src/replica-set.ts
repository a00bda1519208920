/**
 * Replica-set mode (`replSet` option, `--replSet NAME`): the server is the only member, and the
 * primary, of a one-member replica set, as a `mongod --replSet NAME` after `rs.initiate()`. It can
 * step down (`replSetStepDown`, `MongoWireServer.stepDown()`) and is elected again, in a new term,
 * when the step-down period ends (or at `replSetFreeze: 0` / `stepUp()`).
 *
 * Also here, for both modes: MongoDB's rules for `lsid` / `txnNumber`. A standalone refuses a
 * retryable write's `txnNumber` (20 IllegalOperation); a replica-set member executes a retryable
 * write (insert, update, delete, findAndModify with `txnNumber` and no `autocommit`) once per
 * (session, txnNumber) and answers a retry with the recorded reply; an older txnNumber is 225
 * TransactionTooOld. And the checks a secondary makes (10107 / 13435) and the error labels a
 * member adds (RetryableWriteError, TransientTransactionError).
 *
 * Sources: mongod's `service_entry_point_common.cpp` (not-primary checks, per-client "not master"
 * / "not primary" messages), `initializeOperationSessionInfo` (txnNumber checks),
 * `repl_set_commands.cpp` + `replication_coordinator_impl.cpp` (replSetStepDown, replSetFreeze),
 * `error_labels.cpp`, `error_codes.yml` (RetriableError category), `write_ops_exec.cpp`
 * (multi / limit=0 statements of a retryable write).
 */
import * as crypto from 'node:crypto';
import { Binary, BSON, Long, ObjectId, Timestamp } from 'bson';
import type { ConnectionInfo } from './commands';
import { fail, MongoWireError } from './errors';
import { bsonType, Doc, isPlainObject } from './values';

/** What differs between the MongoDB versions a member can announce. */
export interface ReplicaSetTraits {
  /**
   * 4.4 and older: codeNames NotMaster / NotMasterNoSlaveOk, messages "not master" / "not master
   * and slaveOk=false". 4.9 / 5.0 and later: NotWritablePrimary / NotPrimaryNoSecondaryOk, with
   * "not primary" messages only for clients that sent `helloOk` (the others still get "not master").
   */
  legacyNotPrimaryNames: boolean;
  /** 4.2 and later keep client connections open on a step-down; 4.0 and older close them all. */
  keepsConnectionsOnStepDown: boolean;
  /** 4.4 and later label retryable-write errors `RetryableWriteError` (older: the driver does). */
  labelsRetryableWrites: boolean;
  /** 6.0 and later list the replayed statements of a retried write (`retriedStmtIds`). */
  reportsRetriedStatements: boolean;
  /** 5.0 and later: `secondaryDelaySecs` in the set configuration (older: `slaveDelay`). */
  secondaryDelaySecs: boolean;
  /** 4.4 and later: replSetFreeze's "Cannot freeze node when primary..., state: Primary". */
  newFreezeMessage: boolean;
}

function versionNumber(version: string): number {
  const [major, minor] = version.split('.').map((p) => Number.parseInt(p, 10));
  return (Number.isFinite(major) ? major : 0) * 100 + (Number.isFinite(minor) ? minor : 0);
}

export function replicaSetTraits(version = '7.0.0'): ReplicaSetTraits {
  const v = versionNumber(version);
  return {
    legacyNotPrimaryNames: v < 409,
    keepsConnectionsOnStepDown: v >= 402,
    labelsRetryableWrites: v >= 404,
    reportsRetriedStatements: v >= 600,
    secondaryDelaySecs: v >= 500,
    newFreezeMessage: v >= 404,
  };
}

/** mongod's RetriableError category (error_codes.yml), the codes a client may retry a write on. */
export const RETRIABLE_CODES = new Set([6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436]);
/** NotPrimaryError and shutdown categories: TransientTransactionError inside a transaction. */
const TRANSIENT_TXN_CODES = new Set([10107, 11602, 13435, 13436, 189, 91, 11600, 6, 7, 89, 9001, 112, 24]);

/** The commands that are retryable writes when they carry a txnNumber without autocommit. */
const RETRYABLE_WRITE_COMMANDS = new Set(['insert', 'update', 'delete', 'findAndModify']);

/**
 * Where a command may run while the member is a secondary (mongod's `secondaryAllowed`):
 * `always`, `optIn` (with a non-primary read preference or the OP_QUERY secondaryOk flag), and
 * anything not listed never (a write).
 */
const ON_SECONDARY = new Map<string, 'always' | 'optIn'>([
  ...[
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
    'listCommands',
    'currentOp',
    'killOp',
    'getLastError',
    'getPrevError',
    'resetError',
    'logout',
    'fsync',
    'startSession',
    'endSessions',
    'refreshSessions',
    'killSessions',
    'killAllSessions',
    'killAllSessionsByPattern',
    'getMore',
    'killCursors',
    'validate',
    'configureFailPoint',
    'replSetGetStatus',
    'replSetGetConfig',
    'replSetStepDown',
    'replSetFreeze',
    'commitTransaction',
    'abortTransaction',
  ].map((n) => [n.toLowerCase(), 'always'] as const),
  ...[
    'find',
    'aggregate',
    'count',
    'distinct',
    'listCollections',
    'listDatabases',
    'listIndexes',
    'dbStats',
    'collStats',
    'explain',
    'getDefaultRWConcern',
  ].map((n) => [n.toLowerCase(), 'optIn'] as const),
]);

/** A MongoWireError with an explicit codeName (the legacy names of 10107 / 13435). */
function namedError(code: number, codeName: string, message: string, extra?: Record<string, unknown>): MongoWireError {
  const e = new MongoWireError(code, message, extra);
  Object.defineProperty(e, 'codeName', { value: codeName, enumerable: true });
  return e;
}

/** mongod's SHA-256 of the (empty) user name: the `uid` half of a session id without auth. */
const NO_AUTH_UID = crypto.createHash('sha256').update('').digest('base64');

function lsidKey(lsid: unknown): string {
  if (!isPlainObject(lsid)) fail(72, 'Transaction number requires a session ID to also be specified');
  const id = lsid.id;
  if (!(id instanceof Binary))
    fail(14, `BSON field 'OperationSessionInfo.lsid.id' is the wrong type, expected type 'binData'`);
  return Buffer.from(id.buffer).toString('hex');
}

function lsidText(lsid: Doc): string {
  const id = lsid.id as Binary;
  let uuid: string;
  try {
    uuid = id.toUUID().toHexString(true);
  } catch {
    uuid = Buffer.from(id.buffer).toString('hex');
  }
  return `${uuid} - ${NO_AUTH_UID}`;
}

/** `txnNumber` as a number (a Long is normalised to a number on decoding), or undefined. */
function txnNumberOf(body: Doc): number | undefined {
  const t = body.txnNumber;
  if (t === undefined) return undefined;
  if (typeof t !== 'number' || !Number.isInteger(t))
    fail(
      14,
      `BSON field 'OperationSessionInfo.txnNumber' is the wrong type '${bsonType(t) ?? typeof t}', expected type 'long'`,
    );
  if (t < 0) fail(2, 'Transaction number cannot be negative');
  return t;
}

/**
 * A standalone's session checks: a txnNumber needs an lsid (72) and, outside a transaction, a
 * replica set (20 IllegalOperation, as mongod). Commands of a transaction (`autocommit` present)
 * are still accepted on a standalone, as before (writes apply at once; see the README).
 */
export function checkStandaloneSession(body: Doc): void {
  if (body.txnNumber === undefined) return;
  if (!isPlainObject(body.lsid)) fail(72, 'Transaction number requires a session ID to also be specified');
  txnNumberOf(body);
  if (body.autocommit === undefined) fail(20, 'Transaction numbers are only allowed on a replica set member or mongos');
}

/** What Dispatcher.run does with a command after the member's checks. */
export interface Admission {
  /** The recorded reply of this already executed retryable write: send it, execute nothing. */
  replay?: Uint8Array;
  /** A retryable write: its multi updates / limit 0 deletes are refused statement by statement. */
  retryable: boolean;
  /** Record the reply of the executed retryable write (only an `ok: 1` reply is kept). */
  record?: (reply: Doc) => void;
}

interface SessionRecord {
  txnNumber: number;
  /** The retryable write executed under txnNumber, its reply and statement count; null if none yet. */
  executed: { command: string; reply: Uint8Array; statements: number; ordered: boolean } | null;
  lastUse: number;
}

export interface ReplicaSetMemberOptions {
  /** The set name (`replSet`). */
  name: string;
  /** This member's host:port as listed in `hosts`, `me`, `primary` (read when needed). */
  member: () => string;
  /** The MongoDB version the server announces (default 7.0.0): names, connection closing. */
  version?: string;
  /** Closes every client connection (a step-down on 4.0 and older, or `closeConnections`). */
  closeConnections?: () => void;
  log?: (line: string) => void;
}

export interface StepDownOptions {
  /**
   * Close every client connection, as MongoDB 4.0 and older did on a step-down. Default: what the
   * announced version does (4.2 and later keep them open).
   */
  closeConnections?: boolean;
}

const SESSION_IDLE_MS = 30 * 60 * 1000;

/**
 * The member's state: primary or secondary, term / electionId, the step-down period, the
 * sessions' retryable-write records, and which connections sent `helloOk`.
 */
export class ReplicaSetMember {
  readonly name: string;
  readonly traits: ReplicaSetTraits;
  private readonly member: () => string;
  private readonly closeConnections: () => void;
  private readonly log: (line: string) => void;
  private primary = false;
  /**
   * The election term. mongod persists it, so a restarted member comes back in a later term; here
   * the first term is the start time in ms, so terms (and electionIds) keep growing across
   * restarts too: drivers ignore a primary whose electionId is older than one they have seen.
   */
  private term = Date.now() - 1;
  private electionId = new ObjectId();
  private electionDate = new Date();
  private electionTime = new Timestamp({ t: 0, i: 0 });
  /** While a secondary: the time (ms) the member runs for election again. */
  private stepDownUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastWriteMs = 0;
  private lastOpTime = new Timestamp({ t: 0, i: 0 });
  private readonly sessions = new Map<string, SessionRecord>();
  private lastPrune = Date.now();
  private readonly supportsHello = new WeakMap<ConnectionInfo, boolean>();
  private readonly startedAt = Date.now();
  private readonly replicaSetId = new ObjectId();

  constructor(options: ReplicaSetMemberOptions) {
    if (!options.name || options.name.includes('/'))
      throw new Error(`invalid replica set name: ${JSON.stringify(options.name)}`);
    this.name = options.name;
    this.member = options.member;
    this.traits = replicaSetTraits(options.version);
    this.closeConnections = options.closeConnections ?? (() => undefined);
    this.log = options.log ?? (() => undefined);
    this.elect();
  }

  get isPrimary(): boolean {
    return this.primary;
  }

  /** Stops the re-election timer (server stop). The state stays as it is. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  // ---- elections --------------------------------------------------------------------------------

  /** Win the (single-node) election: a new term, a greater electionId. */
  private elect(): void {
    this.close();
    this.term++;
    this.primary = true;
    this.stepDownUntil = 0;
    // mongod's electionId: OID::fromTerm, 0x7fffffff then the term, so it grows with each term.
    this.electionId = new ObjectId('7fffffff' + this.term.toString(16).padStart(16, '0'));
    this.noteWrite(); // the new primary's no-op oplog entry
    this.electionDate = new Date(this.lastWriteMs);
    this.electionTime = this.lastOpTime;
    this.log(`replica set ${this.name}: primary (term ${this.term})`);
  }

  /** Become a secondary until `until` (ms), then run for election again. */
  private freezeUntil(until: number): void {
    this.stepDownUntil = until;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.elect(), Math.max(0, until - Date.now()));
    this.timer.unref();
  }

  /**
   * Step down for `seconds` (fractions allowed), as `{replSetStepDown: seconds, force: true}`:
   * secondary at once, elected again (new term, greater electionId) when the period ends.
   * Throws 10107 when already a secondary.
   */
  stepDown(seconds: number, options: StepDownOptions = {}): void {
    if (!(seconds > 0) || !Number.isFinite(seconds)) throw new RangeError(`invalid step-down period: ${seconds}`);
    if (!this.primary) throw this.notPrimaryError(10107, "not primary so can't step down");
    this.primary = false;
    this.freezeUntil(Date.now() + seconds * 1000);
    this.log(`replica set ${this.name}: stepped down for ${seconds}s`);
    if (options.closeConnections ?? !this.traits.keepsConnectionsOnStepDown) this.closeConnections();
  }

  /** End a step-down now (as `replSetFreeze: 0` in a one-member set); no-op on a primary. */
  stepUp(): void {
    if (!this.primary) this.elect();
  }

  // ---- hello ------------------------------------------------------------------------------------

  /**
   * The replica-set fields of hello / isMaster (in place of `isWritablePrimary` / `ismaster`).
   * No `topologyVersion`: drivers then poll (heartbeatFrequencyMS) instead of streaming.
   */
  hello(legacy: boolean, body: Doc, conn: ConnectionInfo): Doc {
    if (body.helloOk !== undefined) this.supportsHello.set(conn, body.helloOk === true || body.helloOk === 1);
    const me = this.member();
    const primary = this.primary;
    const opTime = { ts: this.lastOpTime, t: Long.fromNumber(this.term) };
    const date = new Date(this.lastWriteMs);
    return {
      hosts: [me],
      setName: this.name,
      setVersion: 1,
      [legacy ? 'ismaster' : 'isWritablePrimary']: primary,
      secondary: !primary,
      ...(primary ? { primary: me } : {}),
      me,
      ...(primary ? { electionId: this.electionId } : {}),
      lastWrite: { opTime, lastWriteDate: date, majorityOpTime: opTime, majorityWriteDate: date },
    };
  }

  /** A write happened now (lastWrite / optimes); only a primary writes. */
  noteWrite(): void {
    if (!this.primary) return;
    const now = Date.now();
    const secs = Math.floor(now / 1000);
    const prev = this.lastOpTime;
    this.lastOpTime = new Timestamp({ t: secs, i: prev.high === secs ? prev.low + 1 : 1 });
    this.lastWriteMs = now;
  }

  // ---- the checks before a command runs ---------------------------------------------------------

  private notPrimaryError(code: 10107 | 13435, message?: string, conn?: ConnectionInfo): MongoWireError {
    const modern = !this.traits.legacyNotPrimaryNames;
    const newMessages = modern && conn !== undefined && this.supportsHello.get(conn) === true;
    if (code === 10107)
      return namedError(
        10107,
        modern ? 'NotWritablePrimary' : 'NotMaster',
        message ?? (newMessages ? 'not primary' : 'not master'),
      );
    return namedError(
      13435,
      modern ? 'NotPrimaryNoSecondaryOk' : 'NotMasterNoSlaveOk',
      message ?? (newMessages ? 'not primary and secondaryOk=false' : 'not master and slaveOk=false'),
    );
  }

  /**
   * The session arguments of a command (canonical name), checked first (before the failCommand
   * fail point): a txnNumber needs an lsid (72); outside a transaction only a retryable write
   * command may carry one (50768).
   */
  checkSession(command: string, body: Doc): void {
    const txnNumber = txnNumberOf(body);
    if (txnNumber === undefined) return;
    lsidKey(body.lsid);
    if (body.autocommit === undefined && !RETRYABLE_WRITE_COMMANDS.has(command))
      fail(
        50768,
        `txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and ${command} is not a retryable write command.`,
      );
  }

  /**
   * Then, after the fail point and the field checks, in mongod's order: where the command may run
   * (a secondary refuses writes with 10107 and primary reads with 13435), then the session's
   * txnNumber (225 when older) and the retryable-write record (a retry of an executed write gets
   * the recorded reply).
   */
  admit(command: string, body: Doc, db: string, conn: ConnectionInfo, secondaryOk: boolean): Admission | null {
    const txnNumber = txnNumberOf(body);
    const inTransaction = txnNumber !== undefined && body.autocommit !== undefined;
    const retryable = txnNumber !== undefined && !inTransaction;
    if (!this.primary && db !== 'local') this.checkSecondary(command, body, conn, secondaryOk, inTransaction);
    if (txnNumber === undefined) return null;
    const key = lsidKey(body.lsid);
    const now = Date.now();
    this.prune(now);
    let rec = this.sessions.get(key);
    if (rec && txnNumber < rec.txnNumber) {
      const lsid = body.lsid as Doc;
      fail(
        225,
        this.traits.legacyNotPrimaryNames
          ? `Cannot start transaction ${txnNumber} on session ${lsidText(lsid)} because a newer transaction ${rec.txnNumber} has already started.`
          : `Cannot start transaction ${txnNumber} on session ${lsidText(lsid)} because a newer transaction with txnNumber ${rec.txnNumber} has already started on this session.`,
      );
    }
    if (!rec || txnNumber > rec.txnNumber) this.sessions.set(key, (rec = { txnNumber, executed: null, lastUse: now }));
    rec.lastUse = now;
    if (!retryable) return null;
    const done = rec.executed;
    if (done && done.command === command) return { replay: this.replayReply(done), retryable: true };
    const session = rec;
    const statements = statementCount(command, body);
    const ordered = body.ordered !== false;
    return {
      retryable: true,
      record: (reply) => {
        if (reply.ok !== 1 || session.txnNumber !== txnNumber) return;
        session.executed = { command, reply: BSON.serialize(reply, { ignoreUndefined: false }), statements, ordered };
      },
    };
  }

  private checkSecondary(
    command: string,
    body: Doc,
    conn: ConnectionInfo,
    secondaryOk: boolean,
    inTransaction: boolean,
  ): void {
    const allowed = ON_SECONDARY.get(command.toLowerCase());
    if (allowed === 'always' && !inTransaction) return;
    const couldOptIn = allowed === 'optIn' && !inTransaction;
    const optedIn = couldOptIn && (secondaryOk || readPreferenceAllowsSecondary(body.$readPreference));
    if (optedIn) {
      // An aggregate writing with $out / $merge needs a primary to write to.
      if (command === 'aggregate' && writesOut(body.pipeline)) throw this.notPrimaryError(10107, undefined, conn);
      return;
    }
    if (couldOptIn) throw this.notPrimaryError(13435, undefined, conn);
    throw this.notPrimaryError(10107, undefined, conn);
  }

  /** The recorded reply, with `retriedStmtIds` / `retriedStmtId` from 6.0. */
  private replayReply(done: NonNullable<SessionRecord['executed']>): Uint8Array {
    if (!this.traits.reportsRetriedStatements) return done.reply;
    const reply = BSON.deserialize(done.reply, { promoteValues: false, promoteBuffers: false, bsonRegExp: true });
    const out: Doc = {};
    for (const [k, v] of Object.entries(reply)) if (k !== 'ok') out[k] = v;
    if (done.command === 'findAndModify') out.retriedStmtId = 0;
    else {
      const failed = new Set<number>();
      if (Array.isArray(reply.writeErrors))
        for (const w of reply.writeErrors as Doc[]) failed.add(Number(bsonNumber(w.index)));
      const firstFailure = failed.size ? Math.min(...failed) : Infinity;
      const ids: number[] = [];
      for (let i = 0; i < done.statements; i++) {
        if (failed.has(i)) continue;
        if (done.ordered && i > firstFailure) break;
        ids.push(i);
      }
      out.retriedStmtIds = ids;
    }
    out.ok = reply.ok;
    return BSON.serialize(out, { ignoreUndefined: false });
  }

  /** Forget the sessions unused for 30 minutes (mongod reaps expired sessions' records). */
  private prune(now: number): void {
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    for (const [k, r] of this.sessions) if (now - r.lastUse > SESSION_IDLE_MS) this.sessions.delete(k);
  }

  /**
   * MongoDB's error labels (4.4+) on an error reply, unless it has some already (a failCommand
   * fail point's `errorLabels` replace them): RetryableWriteError for a retryable write (or a
   * commit / abort) failing with a retriable code, TransientTransactionError inside a transaction.
   */
  labelError(reply: Doc, body: Doc): void {
    if (reply.errorLabels !== undefined || body.txnNumber === undefined) return;
    const code = typeof reply.code === 'number' ? reply.code : 0;
    const command = (Object.keys(body)[0] ?? '').toLowerCase();
    const commitOrAbort = command === 'committransaction' || command === 'aborttransaction';
    const inTransaction = body.autocommit !== undefined;
    const labels: string[] = [];
    if (this.traits.labelsRetryableWrites && (!inTransaction || commitOrAbort) && RETRIABLE_CODES.has(code))
      labels.push('RetryableWriteError');
    if (inTransaction && !commitOrAbort && TRANSIENT_TXN_CODES.has(code)) labels.push('TransientTransactionError');
    if (labels.length) reply.errorLabels = labels;
  }

  // ---- replica-set commands ---------------------------------------------------------------------

  /** replSetStepDown, replSetFreeze, replSetGetStatus, replSetGetConfig. */
  command(name: string, body: Doc): Doc {
    switch (name) {
      case 'replSetStepDown':
        return this.replSetStepDown(body);
      case 'replSetFreeze':
        return this.replSetFreeze(body);
      case 'replSetGetStatus':
        return this.replSetGetStatus();
      default:
        return this.replSetGetConfig();
    }
  }

  /**
   * `{replSetStepDown: secs, force?, secondaryCatchUpPeriodSecs?}`, parsed as mongod does. In a
   * one-member set no secondary can catch up: without `force` the answer is 262 ExceededTimeLimit.
   * Not faithful in time: mongod answers after waiting secondaryCatchUpPeriodSecs (10 s by
   * default without force); this answers at once (the 262, or the forced step-down).
   */
  private replSetStepDown(body: Doc): Doc {
    const force = truthy(body.force);
    let secs = Math.trunc(numberOr(body.replSetStepDown, 0));
    if (secs === 0) secs = 60;
    else if (secs < 0) fail(2, 'stepdown period must be a positive integer');
    let catchUp: number;
    const raw = body.secondaryCatchUpPeriodSecs;
    if (raw === undefined) catchUp = force ? 0 : 10;
    else {
      if (typeof raw !== 'number')
        fail(14, `"secondaryCatchUpPeriodSecs" had the wrong type. Expected number, found ${bsonTypeName(raw)}`);
      if (!Number.isInteger(raw))
        fail(
          2,
          `Expected field "secondaryCatchUpPeriodSecs" to have a value exactly representable as a 64-bit integer, but found ${raw}`,
        );
      catchUp = raw;
    }
    if (catchUp < 0) fail(2, 'secondaryCatchUpPeriodSecs period must be a positive or absent');
    if (secs < catchUp) fail(2, 'stepdown period must be longer than secondaryCatchUpPeriodSecs');
    if (!this.primary) throw this.notPrimaryError(10107, "not primary so can't step down");
    if (!force)
      fail(
        262,
        `No electable secondaries caught up as of ${isoLocal(new Date())}Please use the replSetStepDown command with the argument {force: true} to force node to step down.`,
      );
    this.stepDown(secs);
    return { ok: 1 };
  }

  /** `{replSetFreeze: secs}`: 0 ends a step-down (a one-member set elects itself at once). */
  private replSetFreeze(body: Doc): Doc {
    if (this.primary)
      fail(
        95,
        this.traits.newFreezeMessage
          ? 'Cannot freeze node when primary or running for election, state: Primary'
          : 'cannot freeze node when primary or running for election. state: Primary',
      );
    const secs = Math.trunc(numberOr(body.replSetFreeze, 0));
    if (secs === 0) {
      this.elect();
      return { info: 'unfreezing', ok: 1 };
    }
    const out: Doc = {};
    if (secs === 1) out.warning = 'you really want to freeze for only 1 second?';
    const until = Date.now() + secs * 1000;
    if (until > this.stepDownUntil) this.freezeUntil(until);
    return { ...out, ok: 1 };
  }

  private opTime(): Doc {
    return { ts: this.lastOpTime, t: Long.fromNumber(this.term) };
  }

  private replSetGetStatus(): Doc {
    const now = new Date();
    const op = this.opTime();
    const wall = new Date(this.lastWriteMs);
    const state = this.primary ? 1 : 2;
    return {
      set: this.name,
      date: now,
      myState: state,
      term: Long.fromNumber(this.term),
      syncSourceHost: '',
      syncSourceId: -1,
      heartbeatIntervalMillis: Long.fromNumber(2000),
      majorityVoteCount: 1,
      writeMajorityCount: 1,
      votingMembersCount: 1,
      writableVotingMembersCount: 1,
      optimes: {
        lastCommittedOpTime: op,
        lastCommittedWallTime: wall,
        readConcernMajorityOpTime: op,
        appliedOpTime: op,
        durableOpTime: op,
        lastAppliedWallTime: wall,
        lastDurableWallTime: wall,
      },
      members: [
        {
          _id: 0,
          name: this.member(),
          health: 1,
          state,
          stateStr: this.primary ? 'PRIMARY' : 'SECONDARY',
          uptime: Math.floor((now.getTime() - this.startedAt) / 1000),
          optime: op,
          optimeDate: new Date(this.lastOpTime.high * 1000),
          lastAppliedWallTime: wall,
          lastDurableWallTime: wall,
          syncSourceHost: '',
          syncSourceId: -1,
          infoMessage: '',
          ...(this.primary ? { electionTime: this.electionTime, electionDate: this.electionDate } : {}),
          configVersion: 1,
          configTerm: Long.fromNumber(this.term),
          self: true,
          lastHeartbeatMessage: '',
        },
      ],
      ok: 1,
    };
  }

  private replSetGetConfig(): Doc {
    return {
      config: {
        _id: this.name,
        version: 1,
        term: Long.fromNumber(this.term),
        members: [
          {
            _id: 0,
            host: this.member(),
            arbiterOnly: false,
            buildIndexes: true,
            hidden: false,
            priority: 1,
            tags: {},
            ...(this.traits.secondaryDelaySecs
              ? { secondaryDelaySecs: Long.fromNumber(0) }
              : { slaveDelay: Long.fromNumber(0) }),
            votes: 1,
          },
        ],
        protocolVersion: Long.fromNumber(1),
        writeConcernMajorityJournalDefault: true,
        settings: {
          chainingAllowed: true,
          heartbeatIntervalMillis: 2000,
          heartbeatTimeoutSecs: 10,
          electionTimeoutMillis: 10000,
          catchUpTimeoutMillis: -1,
          catchUpTakeoverDelayMillis: 30000,
          getLastErrorModes: {},
          getLastErrorDefaults: { w: 1, wtimeout: 0 },
          replicaSetId: this.replicaSetId,
        },
      },
      ok: 1,
    };
  }
}

/**
 * The replica-set commands on any server: admin database only (13), and on a standalone 76
 * NoReplicationEnabled "not running with --replSet", as mongod.
 */
export function replicaSetCommand(member: ReplicaSetMember | null, name: string, body: Doc, db: string): Doc {
  if (db !== 'admin') fail(13, `${name} may only be run against the admin database.`);
  if (!member) fail(76, 'not running with --replSet');
  return member.command(name, body);
}

function statementCount(command: string, body: Doc): number {
  const field = command === 'insert' ? 'documents' : command === 'update' ? 'updates' : 'deletes';
  const list = body[field];
  return Array.isArray(list) ? list.length : 1;
}

function readPreferenceAllowsSecondary(rp: unknown): boolean {
  if (rp === undefined || rp === null) return false;
  const mode = typeof rp === 'string' ? rp : isPlainObject(rp) ? rp.mode : undefined;
  return typeof mode === 'string' && mode !== 'primary';
}

function writesOut(pipeline: unknown): boolean {
  if (!Array.isArray(pipeline) || !pipeline.length) return false;
  const last = pipeline[pipeline.length - 1];
  return isPlainObject(last) && ('$out' in last || '$merge' in last);
}

function truthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== '';
}

/** A number field read as mongod's numberLong / numberInt: not a number → the default. */
function numberOr(v: unknown, dflt: number): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : dflt;
}

function bsonNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object' && 'valueOf' in v) return Number((v as { valueOf(): unknown }).valueOf());
  return NaN;
}

function bsonTypeName(v: unknown): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return bsonType(v)?.toLowerCase() ?? 'object';
}

/** mongod's dateToISOStringLocal: 2026-12-07T21:29:00.123+0100. */
function isoLocal(d: Date): string {
  const pad = (n: number, w = 2): string => String(Math.abs(n)).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${off >= 0 ? '+' : '-'}${pad(Math.trunc(off / 60))}${pad(off % 60)}`
  );
}

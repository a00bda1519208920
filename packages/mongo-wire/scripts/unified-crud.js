/* global require, process, console, __dirname, module, setTimeout, clearTimeout */
/* eslint-disable @typescript-eslint/no-require-imports */
'use strict';
/**
 * Runs MongoDB's CRUD unified-format specification tests (mongodb/specifications,
 * source/crud/tests/unified/*.json) through the real `mongodb` driver against this package's server,
 * started in-process from its TypeScript sources on a free port.
 *
 *   npm run spec:crud -w @openhim-rerun/mongo-wire -- DIR [--filter TEXT] [--verbose] [--json FILE]
 *
 * The spec files are not part of this repository (their licence is not ours): DIR holds copies.
 * Each applicable test (runOnRequirements evaluated for a 7.0 standalone, not serverless, no auth,
 * no CSFLE) is classified:
 *   PASS   every expectation met;
 *   ERROR  the server refused or failed where MongoDB succeeds, or failed with another error than
 *          the one expected (an honest "not supported" / different code; never silently wrong);
 *   WRONG  a silently wrong answer: success where MongoDB refuses, a different result, different
 *          final data, or different commands observed because of the server's answers;
 *   DRIVER the driver refused the operation itself (a client-side error where the spec expects
 *          success): nothing the server answered is involved;
 *   NOT-SERVER a failure checked by hand and listed in NOT_THE_SERVER below: the stored copy of the
 *          spec file or the Node driver, not the server, decides it (reason printed);
 *   RUNNER an operation or entity this runner does not implement (not counted against the server).
 *
 * Stored copies older than the installed driver (or faulty) are corrected rather than only labelled:
 * CORRECTIONS below patches the expectation or operation of a listed test (each with its one-line reason:
 * what the driver sends or what upstream expects), the test then runs and checks the server against the
 * corrected expectation; it is a PASS only if it passes so corrected, and the summary says how many ran
 * corrected. Outcome data is read with promoteValues false (a symbol stays a symbol); NaN matches NaN.
 * The server is started with enableTestCommands, so the failPoint operation (configureFailPoint,
 * failCommand) works; it is turned off after each test.
 *
 * Measured 2026-12-03 on the 51 stored copies (of the 76 stored JSON files; the others need a replica
 * set / sharded cluster or MongoDB 8.0): 237 applicable, PASS 225 (30 of them corrected), ERROR 0,
 * WRONG 0, DRIVER 0, NOT-SERVER 12 (a null / undefined _id the Node driver replaces before sending).
 */
const fs = require('node:fs');
const path = require('node:path');

// Load the server from its TypeScript sources (no build needed): transpile-only require hook.
const ts = require('typescript');
require.extensions['.ts'] = (mod, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  });
  mod._compile(out.outputText, filename);
};

const { MongoClient, MongoServerError, MongoBulkWriteError, ReadPreference, BSON } = require('mongodb');
const { EJSON, Long, Int32, Double, Decimal128 } = BSON;
const { MongoWireServer } = require(path.join(__dirname, '..', 'src', 'index.ts'));

/** The version the applicability of tests is judged against (the issue's target: a 7.0 standalone). */
const TARGET_VERSION = '7.0.0';
const OP_TIMEOUT_MS = 15000;

/**
 * Failures investigated by hand that the server does not cause (file :: test description -> why).
 * Applied only when the test fails; a listed test that passes is a PASS.
 */
const NODE_NULL_ID =
  'the Node driver replaces a null / undefined _id by an ObjectId before sending the insert (seen in the command it ' +
  "sends); Node's own unified runner skips these tests";
const NOT_THE_SERVER = {
  'create-null-ids.json :: inserting _id with type undefined via insertOne': NODE_NULL_ID,
  'create-null-ids.json :: inserting _id with type undefined via insertMany': NODE_NULL_ID,
  'create-null-ids.json :: inserting _id with type undefined via bulkWrite': NODE_NULL_ID,
  'create-null-ids.json :: inserting _id with type null via insertOne': NODE_NULL_ID,
  'create-null-ids.json :: inserting _id with type null via insertMany': NODE_NULL_ID,
  'create-null-ids.json :: inserting _id with type null via bulkWrite': NODE_NULL_ID,
  ...Object.fromEntries(
    ['undefined', 'null'].flatMap((t) =>
      ['insertOne', 'insertMany', 'bulkWrite'].map((op) => [
        `create-id-types.json :: inserting _id with type ${t} via ${op}`,
        NODE_NULL_ID,
      ]),
    ),
  ),
};

// ---------------------------------------------------------------------------------------------
// Corrections of stale or faulty stored copies

/** Every expected commandStartedEvent command of a test. */
const expectedCommands = (test) =>
  (test.expectEvents || []).flatMap((e) =>
    e.events.filter((ev) => ev.commandStartedEvent).map((ev) => ev.commandStartedEvent),
  );
/** Adds `key: value` to every statement of `field` (deletes / updates) of the expected commands. */
const addToStatements = (field, key, value) => (test) => {
  for (const c of expectedCommands(test))
    for (const st of (c.command && c.command[field]) || []) if (!(key in st)) st[key] = value;
};
const isOperatorUpdate = (u) => !isPlainDoc(u) || Object.keys(u).some((k) => k.startsWith('$'));
/** Replacement-style updates of updateOne (operation and bulk request) become {$set: ...}, here and in the events. */
const setOperatorUpdates = (test) => {
  const wrapped = new Set();
  const wrap = (holder) => {
    if (holder && holder.update !== undefined && !isOperatorUpdate(holder.update)) {
      wrapped.add(JSON.stringify(holder.update));
      holder.update = { $set: holder.update };
    }
  };
  for (const op of test.operations) {
    if (op.name === 'updateOne') wrap(op.arguments);
    if (op.name === 'bulkWrite') for (const r of op.arguments.requests) wrap(r.updateOne);
  }
  for (const c of expectedCommands(test))
    for (const st of (c.command && c.command.updates) || [])
      if (wrapped.has(JSON.stringify(st.u))) st.u = { $set: st.u };
};
/** The expected `aggregate` with `$collStats` of estimatedDocumentCount becomes the `count` the driver sends. */
const countForCollStats = (test) => {
  for (const c of expectedCommands(test)) {
    if (!c.command || c.command.aggregate === undefined) continue;
    const { aggregate: coll, pipeline: _p, ...rest } = c.command;
    c.command = { count: coll, ...rest };
    if (c.commandName) c.commandName = 'count';
  }
  for (const op of test.operations)
    if (op.name === 'failPoint') {
      const data = op.arguments.failPoint.data;
      data.failCommands = data.failCommands.map((n) => (n === 'aggregate' ? 'count' : n));
    }
};
/** A bulk request's `let` moves to the bulkWrite options (where the driver takes it and sends it). */
const bulkLetToTopLevel = (test) => {
  for (const op of test.operations)
    if (op.name === 'bulkWrite')
      for (const r of op.arguments.requests) {
        const model = Object.values(r)[0];
        if (model.let) {
          op.arguments.let = model.let;
          delete model.let;
        }
      }
  for (const c of expectedCommands(test))
    for (const st of (c.command && c.command.updates) || [])
      if (st.let) {
        c.command.let = st.let;
        delete st.let;
      }
};
/** `{_id: {$gt: "$$id"}}` (a plain string outside $expr) becomes `{$expr: {$gt: ["$_id", "$$id"]}}`. */
const gtIdInExpr = (test) => {
  const fix = (q) => (q && q._id && q._id.$gt === '$$id' ? { $expr: { $gt: ['$_id', '$$id'] } } : q);
  for (const op of test.operations)
    if (op.name === 'bulkWrite')
      for (const r of op.arguments.requests) Object.values(r)[0].filter = fix(Object.values(r)[0].filter);
  for (const c of expectedCommands(test)) for (const st of (c.command && c.command.updates) || []) st.q = fix(st.q);
};
const all =
  (...fns) =>
  (test) =>
    fns.forEach((f) => f(test));

const LIMIT_1 = 'the driver sends "limit": 1 in every deleteOne statement (upstream expects it since)';
const LIMIT_0 = 'the driver sends "limit": 0 in every deleteMany statement (upstream expects it since)';
const MULTI = 'the driver sends "multi": true in every updateMany statement (upstream expects it since)';
const ATOMIC =
  'the update has no $ operator, which the driver refuses client-side ("Update document requires atomic ' +
  'operators"); upstream uses {$set: ...}';
const COLLSTATS =
  'driver 7.8 sends {count: coll} for estimatedDocumentCount on every server version (the spec was changed: ' +
  'drivers use count again); the stored copy still expects aggregate with $collStats';
/**
 * file :: test description -> [reason, patch of the test]. Applied (to a copy) before the test runs; the
 * test then checks the server against the corrected expectation. A corrected test counts as PASS only if
 * it passes after the correction (the summary says how many did).
 */
const CORRECTIONS = {
  'deleteOne-comment.json :: deleteOne with string comment': [LIMIT_1, addToStatements('deletes', 'limit', 1)],
  'deleteOne-comment.json :: deleteOne with document comment': [LIMIT_1, addToStatements('deletes', 'limit', 1)],
  'deleteOne-let.json :: DeleteOne with let option': [LIMIT_1, addToStatements('deletes', 'limit', 1)],
  'deleteMany-comment.json :: deleteMany with string comment': [LIMIT_0, addToStatements('deletes', 'limit', 0)],
  'deleteMany-comment.json :: deleteMany with document comment': [LIMIT_0, addToStatements('deletes', 'limit', 0)],
  'deleteMany-let.json :: DeleteMany with let option': [LIMIT_0, addToStatements('deletes', 'limit', 0)],
  'updateMany-comment.json :: UpdateMany with string comment': [MULTI, addToStatements('updates', 'multi', true)],
  'updateMany-comment.json :: UpdateMany with document comment': [MULTI, addToStatements('updates', 'multi', true)],
  'updateMany-let.json :: UpdateMany with let option': [MULTI, addToStatements('updates', 'multi', true)],
  'updateMany-let.json :: UpdateMany with let option and dollar-prefixed $literal value': [
    MULTI,
    addToStatements('updates', 'multi', true),
  ],
  'bulkWrite-update-comment.json :: BulkWrite updateMany with string comment': [
    MULTI,
    addToStatements('updates', 'multi', true),
  ],
  'bulkWrite-update-comment.json :: BulkWrite updateMany with document comment': [
    MULTI,
    addToStatements('updates', 'multi', true),
  ],
  'updateOne-comment.json :: UpdateOne with string comment': [ATOMIC, setOperatorUpdates],
  'updateOne-comment.json :: UpdateOne with document comment': [ATOMIC, setOperatorUpdates],
  'bulkWrite-update-comment.json :: BulkWrite updateOne with string comment': [ATOMIC, setOperatorUpdates],
  'bulkWrite-update-comment.json :: BulkWrite updateOne with document comment': [ATOMIC, setOperatorUpdates],
  ...Object.fromEntries(
    ['string', 'document'].map((c) => [
      `bulkWrite-comment.json :: BulkWrite with ${c} comment`,
      [
        `${ATOMIC}; it expects a null result of bulkWrite, which always answers a BulkWriteResult (upstream: ` +
          'the counts of its four requests, 1 inserted, 2 matched and modified, 1 deleted), and two update ' +
          'commands where the driver batches the consecutive replaceOne and updateOne into one (upstream: one); ' +
          'and its deleteOne statement lacks the "limit": 1 the driver sends',
        all(setOperatorUpdates, addToStatements('deletes', 'limit', 1), (test) => {
          const events = test.expectEvents[0].events;
          const [first, second] = events.filter((e) => e.commandStartedEvent.command.update !== undefined);
          first.commandStartedEvent.command.updates.push(...second.commandStartedEvent.command.updates);
          events.splice(events.indexOf(second), 1);
          test.operations[0].expectResult = {
            deletedCount: 1,
            insertedCount: 1,
            insertedIds: { $$unsetOrMatches: { 0: 5 } },
            matchedCount: 2,
            modifiedCount: 2,
            upsertedCount: 0,
            upsertedIds: {},
          };
        }),
      ],
    ]),
  ),
  ...Object.fromEntries(
    ['string', 'document'].map((c) => [
      `bulkWrite-replaceOne-comment.json :: BulkWrite replaceOne with ${c} comment`,
      [
        'expects matchedCount 0 with modifiedCount 2, which no server can answer: two replaceOne each matching ' +
          'one document match 2 (upstream expects 2)',
        (test) => {
          test.operations[0].expectResult.matchedCount = 2;
        },
      ],
    ]),
  ),
  ...Object.fromEntries(
    [
      'estimatedDocumentCount.json :: estimatedDocumentCount uses $collStats on 4.9.0 or greater',
      'estimatedDocumentCount.json :: estimatedDocumentCount with maxTimeMS on 4.9.0 or greater',
      'estimatedDocumentCount.json :: estimatedDocumentCount on non-existent collection on 4.9.0 or greater',
      'estimatedDocumentCount.json :: estimatedDocumentCount errors correctly on 4.9.0 or greater--command error',
      'estimatedDocumentCount.json :: estimatedDocumentCount errors correctly on 4.9.0 or greater--socket error',
      'estimatedDocumentCount.json :: estimatedDocumentCount with comment on 4.9.0 or greater',
      'estimatedDocumentCount-comment.json :: estimatedDocumentCount with document comment - post 4.9',
    ].map((id) => [id, [COLLSTATS, countForCollStats]]),
  ),
  'bulkWrite-updateMany-let.json :: BulkWrite updateMany with let option': [
    'the stored copy sends an updateOne with `let` inside the request (the driver takes `let` only as a ' +
      'bulkWrite option) and "$$id" outside $expr (a plain string there) while expecting an updateMany of ' +
      'both documents; corrected to what it means: updateMany, top-level let, the filter in $expr',
    all(
      (test) => {
        const r = test.operations[0].arguments.requests[0];
        r.updateMany = r.updateOne;
        delete r.updateOne;
      },
      bulkLetToTopLevel,
      gtIdInExpr,
    ),
  ],
  'bulkWrite-updateOne-let.json :: BulkWrite updateOne with let option': [
    'the stored copy puts `let` inside the request (the driver takes it only as a bulkWrite option) and ' +
      '"$$id" outside $expr (a plain string there, never $gt a number); corrected: top-level let, filter in $expr',
    all(bulkLetToTopLevel, gtIdInExpr),
  ],
  'bulkWrite-replaceOne-let.json :: BulkWrite replaceOne with let option': [
    'the stored copy puts `let` inside the replaceOne request (the driver takes it only as a bulkWrite option) ' +
      'and expects {_id: 2, x: 3}, {_id: 3}, unreachable from its initial data {_id: 1}, {_id: 2}; corrected: ' +
      'top-level let, outcome {_id: 1, x: 3}, {_id: 2} (replacing the document whose _id is $$id = 1)',
    all(bulkLetToTopLevel, (test) => {
      test.outcome[0].documents = [{ _id: 1, x: 3 }, { _id: 2 }];
    }),
  ],
};

// ---------------------------------------------------------------------------------------------
// Outcome classes

class Wrong extends Error {}
class ServerRefused extends Error {
  constructor(message, cause) {
    super(message);
    this.cause = cause;
  }
}
class RunnerGap extends Error {}
class DriverRefused extends Error {}
const isServerError = (err) =>
  err instanceof MongoServerError || err instanceof MongoBulkWriteError || (err && err.name === 'MongoServerError');

// ---------------------------------------------------------------------------------------------
// Requirements

function versionParts(v) {
  const p = String(v)
    .split('.')
    .map((x) => parseInt(x, 10) || 0);
  while (p.length < 3) p.push(0);
  return p;
}
function cmpVersion(a, b) {
  const x = versionParts(a);
  const y = versionParts(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}
/** Why a requirement is not met on a 7.0 standalone (null when it is). */
function unmet(req) {
  if (req.minServerVersion && cmpVersion(TARGET_VERSION, req.minServerVersion) < 0)
    return `minServerVersion ${req.minServerVersion}`;
  if (req.maxServerVersion && cmpVersion(TARGET_VERSION, req.maxServerVersion) > 0)
    return `maxServerVersion ${req.maxServerVersion}`;
  if (req.topologies && !req.topologies.includes('single')) return `topologies ${req.topologies.join(',')}`;
  if (req.serverless === 'require') return 'serverless';
  if (req.auth === true) return 'auth';
  if (req.authMechanism) return 'authMechanism';
  if (req.csfle) return 'csfle';
  if (req.serverParameters) return 'serverParameters';
  return null;
}
/** null when one of the requirement sets is met, otherwise the reasons. */
function requirementsUnmet(reqs) {
  if (!reqs || reqs.length === 0) return null;
  const reasons = [];
  for (const r of reqs) {
    const why = unmet(r);
    if (!why) return null;
    reasons.push(why);
  }
  return reasons.join(' | ');
}

// ---------------------------------------------------------------------------------------------
// Matching (unified test format "Evaluating Matches")

const isNumber = (v) => typeof v === 'number' || v instanceof Long || v instanceof Int32 || v instanceof Double;
const numValue = (v) => (v instanceof Long ? v.toNumber() : typeof v === 'number' ? v : Number(v.valueOf()));
const isPlainDoc = (v) =>
  v !== null &&
  typeof v === 'object' &&
  !Array.isArray(v) &&
  (v.constructor === Object || Object.getPrototypeOf(v) === null);
const show = (v) => {
  try {
    return EJSON.stringify(v, { relaxed: true });
  } catch {
    return String(v);
  }
};

function typeMatches(name, v) {
  switch (name) {
    case 'double':
      return typeof v === 'number' || v instanceof Double;
    case 'int':
      return (typeof v === 'number' && Number.isInteger(v)) || v instanceof Int32;
    case 'long':
      return v instanceof Long || (typeof v === 'number' && Number.isInteger(v));
    case 'decimal':
      return v instanceof Decimal128;
    case 'number':
      return isNumber(v) || v instanceof Decimal128;
    case 'string':
      return typeof v === 'string';
    case 'object':
      return isPlainDoc(v);
    case 'array':
      return Array.isArray(v);
    case 'bool':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'objectId':
      return v && v._bsontype === 'ObjectId';
    case 'date':
      return v instanceof Date;
    case 'binData':
      return v && v._bsontype === 'Binary';
    case 'timestamp':
      return v && v._bsontype === 'Timestamp';
    case 'regex':
      return v instanceof RegExp || (v && v._bsontype === 'BSONRegExp');
    default:
      return v !== undefined && v !== null && v._bsontype === name;
  }
}

/**
 * Throws Wrong with the path when `actual` does not match `expected`. `root`: extra fields allowed
 * in `actual` (root-level documents: operation results, commands of command events).
 */
function match(expected, actual, entities, where, root) {
  if (isPlainDoc(expected)) {
    const keys = Object.keys(expected);
    if (keys.length === 1 && keys[0].startsWith('$$'))
      return special(keys[0], expected[keys[0]], actual, entities, where, root);
    if (!isPlainDoc(actual)) throw new Wrong(`${where}: expected a document ${show(expected)}, got ${show(actual)}`);
    for (const k of keys) {
      const e = expected[k];
      if (isPlainDoc(e) && Object.keys(e).length === 1 && Object.keys(e)[0] === '$$exists') {
        const present = Object.prototype.hasOwnProperty.call(actual, k) && actual[k] !== undefined;
        if (present !== e.$$exists)
          throw new Wrong(`${where}.${k}: expected ${e.$$exists ? 'present' : 'absent'}, got ${show(actual[k])}`);
        continue;
      }
      if (
        isPlainDoc(e) &&
        Object.keys(e).length === 1 &&
        Object.keys(e)[0] === '$$unsetOrMatches' &&
        actual[k] === undefined
      )
        continue;
      if (!(k in actual) || actual[k] === undefined) throw new Wrong(`${where}.${k}: missing (expected ${show(e)})`);
      match(e, actual[k], entities, `${where}.${k}`, false);
    }
    if (!root) {
      const extra = Object.keys(actual).filter((k) => !(k in expected) && actual[k] !== undefined);
      if (extra.length) throw new Wrong(`${where}: unexpected field(s) ${extra.join(', ')} in ${show(actual)}`);
    }
    return;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) throw new Wrong(`${where}: expected an array ${show(expected)}, got ${show(actual)}`);
    if (actual.length !== expected.length)
      throw new Wrong(
        `${where}: expected ${expected.length} element(s) ${show(expected)}, got ${actual.length} ${show(actual)}`,
      );
    expected.forEach((e, i) => match(e, actual[i], entities, `${where}[${i}]`, false));
    return;
  }
  if (isNumber(expected)) {
    // NaN matches NaN (a stored NaN is the value expected, e.g. an _id of type double NaN).
    const a = isNumber(actual) ? numValue(actual) : undefined;
    const e = numValue(expected);
    if (!isNumber(actual) || !(a === e || (Number.isNaN(a) && Number.isNaN(e))))
      throw new Wrong(`${where}: expected ${show(expected)}, got ${show(actual)}`);
    return;
  }
  if (expected === null || typeof expected !== 'object') {
    if (actual !== expected) throw new Wrong(`${where}: expected ${show(expected)}, got ${show(actual)}`);
    return;
  }
  // BSON values (ObjectId, Binary, Date, Decimal128, Timestamp, regex...): canonical Extended JSON.
  if (EJSON.stringify(expected, { relaxed: false }) !== EJSON.stringify(actual, { relaxed: false }))
    throw new Wrong(`${where}: expected ${show(expected)}, got ${show(actual)}`);
}

function special(op, arg, actual, entities, where, root) {
  switch (op) {
    case '$$exists':
      if ((actual !== undefined) !== arg) throw new Wrong(`${where}: expected ${arg ? 'present' : 'absent'}`);
      return;
    case '$$type': {
      const names = Array.isArray(arg) ? arg : [arg];
      if (!names.some((n) => typeMatches(n, actual)))
        throw new Wrong(`${where}: expected type ${names.join('|')}, got ${show(actual)}`);
      return;
    }
    case '$$unsetOrMatches':
      if (actual === undefined) return;
      return match(arg, actual, entities, where, root);
    case '$$matchesEntity':
      return match(entities.get(arg), actual, entities, where, root);
    case '$$matchAsDocument':
      return match(
        arg,
        typeof actual === 'string' ? EJSON.parse(actual, { relaxed: true }) : actual,
        entities,
        where,
        false,
      );
    case '$$matchAsRoot':
      return match(arg, actual, entities, where, true);
    case '$$lte':
      if (!isNumber(actual) || numValue(actual) > numValue(arg))
        throw new Wrong(`${where}: expected <= ${arg}, got ${show(actual)}`);
      return;
    case '$$sessionLsid': {
      const s = entities.get(arg);
      if (!s || !s.id) throw new RunnerGap(`$$sessionLsid: no session ${arg}`);
      return match(s.id, actual, entities, where, false);
    }
    case '$$matchesHexBytes':
      throw new RunnerGap('$$matchesHexBytes');
    default:
      throw new RunnerGap(`special operator ${op}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Entities

const SENSITIVE = new Set([
  'authenticate',
  'saslstart',
  'saslcontinue',
  'getnonce',
  'createuser',
  'updateuser',
  'copydbgetnonce',
  'copydbsaslstart',
  'copydb',
  'hello',
  'ismaster',
]);

class Entities extends Map {
  constructor() {
    super();
    this.clients = [];
    this.events = new Map(); // client id -> [{type, event}]
  }
  async create(specs, uri) {
    for (const spec of specs) {
      const [kind, def] = Object.entries(spec)[0];
      if (kind === 'client') {
        const observe = new Set(def.observeEvents || []);
        const ignore = new Set((def.ignoreCommandMonitoringEvents || []).map((c) => c.toLowerCase()));
        if (def.storeEventsAsEntities || def.observeLogMessages || def.serverApi)
          throw new RunnerGap(`client option ${Object.keys(def).join(',')}`);
        const client = new MongoClient(uri, { ...(def.uriOptions || {}), monitorCommands: true });
        const list = [];
        this.events.set(def.id, list);
        const record = (type) => (ev) => {
          if (!observe.has(type)) return;
          const name = String(ev.commandName).toLowerCase();
          if (ignore.has(name) || SENSITIVE.has(name)) return;
          if (name === 'configurefailpoint' && !def.observeSensitiveCommands) return;
          list.push({ type, event: ev });
        };
        client.on('commandStarted', record('commandStartedEvent'));
        client.on('commandSucceeded', record('commandSucceededEvent'));
        client.on('commandFailed', record('commandFailedEvent'));
        await client.connect();
        this.clients.push(client);
        this.set(def.id, client);
      } else if (kind === 'database') {
        this.set(def.id, this.get(def.client).db(def.databaseName, convertOptions(def.databaseOptions || {})));
      } else if (kind === 'collection') {
        this.set(
          def.id,
          this.get(def.database).collection(def.collectionName, convertOptions(def.collectionOptions || {})),
        );
      } else if (kind === 'session') {
        const s = this.get(def.client).startSession(convertOptions(def.sessionOptions || {}));
        this.set(def.id, s);
      } else {
        throw new RunnerGap(`entity ${kind}`);
      }
    }
    // Connection set-up commands (and anything before the operations) are not part of the test.
    for (const l of this.events.values()) l.length = 0;
  }
  async close() {
    for (const v of this.values())
      if (v && typeof v.endSession === 'function') await v.endSession().catch(() => undefined);
    for (const c of this.clients) await c.close().catch(() => undefined);
  }
}

function convertOptions(o) {
  const out = { ...o };
  if (out.readPreference && typeof out.readPreference === 'object' && !(out.readPreference instanceof ReadPreference)) {
    const { mode, tagSets, ...rest } = out.readPreference;
    out.readPreference = new ReadPreference(mode, tagSets, rest);
  }
  if (out.returnDocument) out.returnDocument = String(out.returnDocument).toLowerCase();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Operations

/** A plain object of a driver result, in the fields the spec's results use. */
function plainResult(r) {
  if (r === null || r === undefined || typeof r !== 'object') return r;
  if (r.constructor && r.constructor.name === 'BulkWriteResult') {
    return {
      insertedCount: r.insertedCount,
      matchedCount: r.matchedCount,
      modifiedCount: r.modifiedCount,
      deletedCount: r.deletedCount,
      upsertedCount: r.upsertedCount,
      upsertedIds: { ...r.upsertedIds },
      insertedIds: { ...r.insertedIds },
    };
  }
  if (isPlainDoc(r) && 'upsertedId' in r && r.upsertedId === null) {
    const { upsertedId: _u, ...rest } = r;
    return rest;
  }
  return r;
}

function withSession(args, entities) {
  const a = { ...args };
  if (a.session) a.session = entities.get(a.session);
  return a;
}

async function runOperation(op, entities) {
  const target = op.object === 'testRunner' ? 'testRunner' : entities.get(op.object);
  if (target === undefined) throw new RunnerGap(`no entity ${op.object}`);
  const a = withSession(op.arguments || {}, entities);
  const name = op.name;
  const take = (...keys) => {
    const rest = { ...a };
    const vals = keys.map((k) => {
      const v = rest[k];
      delete rest[k];
      return v;
    });
    return [...vals, convertOptions(rest)];
  };
  if (target === 'testRunner') return testRunnerOp(name, a, entities);
  const kind = target.constructor.name; // MongoClient, Db, Collection, ClientSession
  if (kind === 'Collection') {
    switch (name) {
      case 'insertOne': {
        const [doc, o] = take('document');
        return target.insertOne(doc, o);
      }
      case 'insertMany': {
        const [docs, o] = take('documents');
        return target.insertMany(docs, o);
      }
      case 'find': {
        const [filter, o] = take('filter');
        return target.find(filter || {}, o).toArray();
      }
      case 'findOne': {
        const [filter, o] = take('filter');
        return target.findOne(filter || {}, o);
      }
      case 'aggregate': {
        const [pipeline, o] = take('pipeline');
        return target.aggregate(pipeline, o).toArray();
      }
      case 'countDocuments': {
        const [filter, o] = take('filter');
        return target.countDocuments(filter, o);
      }
      case 'estimatedDocumentCount':
        return target.estimatedDocumentCount(convertOptions(a));
      case 'count': {
        const [filter, o] = take('filter');
        return target.count(filter, o);
      }
      case 'distinct': {
        const [field, filter, o] = take('fieldName', 'filter');
        return target.distinct(field, filter || {}, o);
      }
      case 'updateOne':
      case 'updateMany': {
        const [filter, update, o] = take('filter', 'update');
        return target[name](filter, update, o);
      }
      case 'replaceOne': {
        const [filter, repl, o] = take('filter', 'replacement');
        return target.replaceOne(filter, repl, o);
      }
      case 'deleteOne':
      case 'deleteMany': {
        const [filter, o] = take('filter');
        return target[name](filter, o);
      }
      case 'findOneAndUpdate': {
        const [filter, update, o] = take('filter', 'update');
        return target.findOneAndUpdate(filter, update, o);
      }
      case 'findOneAndReplace': {
        const [filter, repl, o] = take('filter', 'replacement');
        return target.findOneAndReplace(filter, repl, o);
      }
      case 'findOneAndDelete': {
        const [filter, o] = take('filter');
        return target.findOneAndDelete(filter, o);
      }
      case 'bulkWrite': {
        const [requests, o] = take('requests');
        return target.bulkWrite(requests, o);
      }
      case 'createIndex': {
        const [keys, o] = take('keys');
        return target.createIndex(keys, o);
      }
      case 'dropIndex': {
        const [n, o] = take('name');
        return target.dropIndex(n, o);
      }
      case 'dropIndexes':
        return target.dropIndexes(convertOptions(a));
      case 'listIndexes':
        return target.listIndexes(convertOptions(a)).toArray();
      case 'listIndexNames':
        return (await target.listIndexes(convertOptions(a)).toArray()).map((i) => i.name);
      case 'rename': {
        const [to, o] = take('to');
        return target.rename(to, o);
      }
      case 'drop':
        return target.drop(convertOptions(a));
      case 'createFindCursor': {
        const [filter, o] = take('filter');
        const c = target.find(filter || {}, o);
        await c.hasNext();
        return c;
      }
      default:
        throw new RunnerGap(`collection operation ${name}`);
    }
  }
  if (kind === 'Db') {
    switch (name) {
      case 'aggregate': {
        const [pipeline, o] = take('pipeline');
        return target.aggregate(pipeline, o).toArray();
      }
      case 'runCommand': {
        const [command, _n, o] = take('command', 'commandName');
        return target.command(command, o);
      }
      case 'createCollection': {
        const [coll, o] = take('collection');
        await target.createCollection(coll, o);
        return undefined;
      }
      case 'dropCollection': {
        const [coll, o] = take('collection');
        return target.dropCollection(coll, o);
      }
      case 'listCollections': {
        const [filter, o] = take('filter');
        return target.listCollections(filter || {}, o).toArray();
      }
      case 'listCollectionNames': {
        const [filter, o] = take('filter');
        return (await target.listCollections(filter || {}, { ...o, nameOnly: true }).toArray()).map((c) => c.name);
      }
      case 'modifyCollection': {
        const [coll, o] = take('collection');
        return target.command({ collMod: coll, ...o });
      }
      default:
        throw new RunnerGap(`database operation ${name}`);
    }
  }
  if (kind === 'MongoClient') {
    switch (name) {
      case 'listDatabases':
        return (await target.db('admin').admin().listDatabases(convertOptions(a))).databases;
      case 'listDatabaseNames':
        return (await target.db('admin').admin().listDatabases(convertOptions(a))).databases.map((d) => d.name);
      default:
        throw new RunnerGap(`client operation ${name}`);
    }
  }
  if (kind === 'ClientSession') {
    switch (name) {
      case 'startTransaction':
        return target.startTransaction(convertOptions(a));
      case 'commitTransaction':
        return target.commitTransaction();
      case 'abortTransaction':
        return target.abortTransaction();
      case 'endSession':
        return target.endSession();
      default:
        throw new RunnerGap(`session operation ${name}`);
    }
  }
  if (typeof target.next === 'function') {
    switch (name) {
      case 'iterateUntilDocumentOrError':
      case 'iterateOnce':
        return target.next();
      case 'close':
        return target.close();
      default:
        throw new RunnerGap(`cursor operation ${name}`);
    }
  }
  throw new RunnerGap(`operation ${name} on ${kind}`);
}

async function testRunnerOp(name, a, entities) {
  const internal = entities.internal;
  const exists = async (db, coll) => (await internal.db(db).listCollections({ name: coll }).toArray()).length > 0;
  const indexNames = async (db, coll) =>
    (await internal.db(db).collection(coll).listIndexes().toArray()).map((i) => i.name);
  switch (name) {
    case 'assertCollectionExists':
      if (!(await exists(a.databaseName, a.collectionName)))
        throw new Wrong(`collection ${a.collectionName} does not exist`);
      return;
    case 'assertCollectionNotExists':
      if (await exists(a.databaseName, a.collectionName)) throw new Wrong(`collection ${a.collectionName} exists`);
      return;
    case 'assertIndexExists':
      if (!(await indexNames(a.databaseName, a.collectionName)).includes(a.indexName))
        throw new Wrong(`index ${a.indexName} missing`);
      return;
    case 'assertIndexNotExists':
      if ((await indexNames(a.databaseName, a.collectionName).catch(() => [])).includes(a.indexName))
        throw new Wrong(`index ${a.indexName} exists`);
      return;
    case 'failPoint':
      // configureFailPoint: a test command (the server is started with enableTestCommands); turned off
      // after the test.
      entities.failPointsSet = true;
      await entities
        .get(a.client)
        .db('admin')
        .command(a.failPoint)
        .catch((e) => {
          throw new ServerRefused(`failPoint: ${e.code} ${e.message}`, e);
        });
      return;
    default:
      throw new RunnerGap(`testRunner operation ${name}`);
  }
}

function checkError(expectError, err, entities) {
  // err: the thrown error; classifies a mismatch as ERROR (different error) or WRONG.
  const isServer = isServerError(err);
  const desc = `${err && err.name}${err && err.code !== undefined ? ` ${err.code}` : ''}: ${err && err.message}`;
  if (expectError.isClientError === true && isServer)
    throw new ServerRefused(`expected a client-side error, got ${desc}`, err);
  if (expectError.isClientError === false && !isServer)
    throw new ServerRefused(`expected a server error, got ${desc}`, err);
  if (expectError.errorContains && !String(err.message).toLowerCase().includes(expectError.errorContains.toLowerCase()))
    throw new ServerRefused(`expected an error containing "${expectError.errorContains}", got ${desc}`, err);
  if (expectError.errorCode !== undefined && err.code !== expectError.errorCode)
    throw new ServerRefused(`expected error code ${expectError.errorCode}, got ${desc}`, err);
  if (expectError.errorCodeName !== undefined && err.codeName !== expectError.errorCodeName)
    throw new ServerRefused(`expected error ${expectError.errorCodeName}, got ${desc}`, err);
  for (const l of expectError.errorLabelsContain || [])
    if (!(err.hasErrorLabel && err.hasErrorLabel(l)))
      throw new ServerRefused(`expected error label ${l}, got ${desc}`, err);
  for (const l of expectError.errorLabelsOmit || [])
    if (err.hasErrorLabel && err.hasErrorLabel(l)) throw new ServerRefused(`unexpected error label ${l}: ${desc}`, err);
  if (expectError.expectResult !== undefined) {
    const partial = err instanceof MongoBulkWriteError ? plainResult(err.result) : undefined;
    match(expectError.expectResult, partial, entities, 'expectError.expectResult', true);
  }
  if (expectError.errorResponse !== undefined)
    match(expectError.errorResponse, err.errorResponse, entities, 'expectError.errorResponse', true);
  if (expectError.writeErrors !== undefined || expectError.writeConcernErrors !== undefined)
    throw new RunnerGap('expectError.writeErrors/writeConcernErrors');
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new ServerRefused(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

async function runOperations(ops, entities) {
  for (const [i, op] of ops.entries()) {
    const where = `operation ${i} (${op.name})`;
    let result;
    let error;
    try {
      result = await withTimeout(Promise.resolve(runOperation(op, entities)), OP_TIMEOUT_MS, where);
    } catch (e) {
      error = e;
    }
    if (error instanceof RunnerGap || error instanceof Wrong || error instanceof ServerRefused) {
      error.message = `${where}: ${error.message}`;
      throw error;
    }
    if (op.ignoreResultAndError) continue;
    if (op.expectError) {
      if (!error)
        throw new Wrong(
          `${where}: succeeded (${show(plainResult(result))}) where MongoDB answers an error ${show(op.expectError)}`,
        );
      try {
        checkError(op.expectError, error, entities);
      } catch (e) {
        e.message = `${where}: ${e.message}`;
        throw e;
      }
      continue;
    }
    if (error && !isServerError(error) && !(error instanceof ServerRefused))
      throw new DriverRefused(`${where}: the driver refused: ${error.name}: ${error.message}`);
    if (error)
      throw new ServerRefused(
        `${where}: ${error.name}${error.code !== undefined ? ` ${error.code}` : ''}: ${error.message}`,
        error,
      );
    if (op.expectResult !== undefined) match(op.expectResult, plainResult(result), entities, `${where} result`, true);
    if (op.saveResultAsEntity) entities.set(op.saveResultAsEntity, result);
  }
}

function checkEvents(expectEvents, entities) {
  for (const exp of expectEvents) {
    const type = exp.eventType || 'command';
    if (type !== 'command') throw new RunnerGap(`eventType ${type}`);
    const actual = entities.events.get(exp.client) || [];
    const expected = exp.events;
    if (exp.ignoreExtraEvents ? actual.length < expected.length : actual.length !== expected.length)
      throw new Wrong(
        `events of ${exp.client}: expected ${expected.length} (${expected.map((e) => Object.values(e)[0].commandName || Object.keys(Object.values(e)[0].command || {})[0] || Object.keys(e)[0]).join(', ')}), got ${actual.length} (${actual.map((e) => e.event.commandName).join(', ')})`,
      );
    expected.forEach((e, i) => {
      const [etype, spec] = Object.entries(e)[0];
      const a = actual[i];
      const where = `event ${i} (${etype})`;
      if (a.type !== etype) throw new Wrong(`${where}: got ${a.type} ${a.event.commandName}`);
      if (spec.commandName !== undefined && spec.commandName !== a.event.commandName)
        throw new Wrong(`${where}: expected command ${spec.commandName}, got ${a.event.commandName}`);
      if (spec.databaseName !== undefined && spec.databaseName !== a.event.databaseName)
        throw new Wrong(`${where}: expected database ${spec.databaseName}, got ${a.event.databaseName}`);
      if (spec.command !== undefined) match(spec.command, a.event.command, entities, `${where} command`, true);
      if (spec.reply !== undefined) match(spec.reply, a.event.reply, entities, `${where} reply`, true);
    });
  }
}

async function checkOutcome(outcome, internal) {
  for (const o of outcome) {
    const docs = await internal
      .db(o.databaseName)
      .collection(o.collectionName)
      // promoteValues false: BSON types come back as stored (a symbol stays a BSONSymbol instead of
      // a string; numbers as Int32 / Double / Long, which match() compares by value).
      .find({}, { sort: { _id: 1 }, readConcern: { level: 'local' }, promoteValues: false })
      .toArray();
    match(o.documents, docs, new Map(), `outcome ${o.databaseName}.${o.collectionName}`, false);
  }
}

async function setInitialData(initialData, internal) {
  for (const d of initialData || []) {
    const db = internal.db(d.databaseName);
    await db.dropCollection(d.collectionName, { writeConcern: { w: 'majority' } }).catch(() => undefined);
    await db.createCollection(d.collectionName, { ...(d.createOptions || {}), writeConcern: { w: 'majority' } });
    if (d.documents.length)
      await db.collection(d.collectionName).insertMany(d.documents, { writeConcern: { w: 'majority' } });
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = process.argv.slice(2);
  const dir = args.find(
    (a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--filter' && args[args.indexOf(a) - 1] !== '--json',
  );
  const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : undefined;
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const verbose = args.includes('--verbose');
  if (!dir) {
    console.error('usage: unified-crud DIR [--filter TEXT] [--verbose] [--json FILE]');
    process.exit(2);
  }
  const files = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((x, y) => x.name.localeCompare(y.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) files.push(p);
    }
  };
  walk(dir);

  // enableTestCommands: configureFailPoint (failCommand), as the spec runners' mongod has it.
  // Announces (and behaves as) the release the applicability is judged for.
  const server = new MongoWireServer({ port: 0, enableTestCommands: true, mongodbVersion: '7.0' });
  await server.start();
  const uri = server.uri();
  const internal = new MongoClient(uri);
  await internal.connect();
  const build = await internal.db('admin').command({ buildInfo: 1 });
  const hello = await internal.db('admin').command({ hello: 1 });
  console.log(
    `server: ${uri} reports version ${build.version}, maxWireVersion ${hello.maxWireVersion}, ${hello.setName ? 'replica set' : 'standalone'}; applicability judged for ${TARGET_VERSION} standalone`,
  );

  const results = [];
  for (const file of files) {
    const rel = path.relative(dir, file);
    let spec;
    try {
      spec = EJSON.parse(fs.readFileSync(file, 'utf8'), { relaxed: true });
    } catch (e) {
      console.log(`${rel}: cannot parse: ${e.message}`);
      continue;
    }
    const fileUnmet = requirementsUnmet(spec.runOnRequirements);
    for (const test of spec.tests || []) {
      const id = `${rel} :: ${test.description}`;
      if (filter && !id.includes(filter)) continue;
      const why =
        fileUnmet ||
        requirementsUnmet(test.runOnRequirements) ||
        (test.skipReason ? `skipReason: ${test.skipReason}` : null);
      if (why) {
        results.push({ id, status: 'N/A', detail: why });
        continue;
      }
      const entities = new Entities();
      entities.internal = internal;
      let status = 'PASS';
      let detail = '';
      const correction = CORRECTIONS[id];
      // The stored copy is corrected in place (each test runs once); the reason is printed with the result.
      if (correction) correction[1](test);
      try {
        await setInitialData(spec.initialData, internal);
        await entities.create(spec.createEntities || [], uri);
        await runOperations(test.operations, entities);
        if (test.expectEvents) checkEvents(test.expectEvents, entities);
        if (test.outcome) await checkOutcome(test.outcome, internal);
      } catch (e) {
        if (e instanceof Wrong) status = 'WRONG';
        else if (e instanceof RunnerGap) status = 'RUNNER';
        else if (e instanceof DriverRefused) status = 'DRIVER';
        else status = 'ERROR';
        detail =
          e instanceof Wrong || e instanceof RunnerGap || e instanceof ServerRefused || e instanceof DriverRefused
            ? e.message
            : `${e.name}: ${e.message}`;
        if (NOT_THE_SERVER[id]) {
          detail = `${status}: ${detail}\n       not the server: ${NOT_THE_SERVER[id]}`;
          status = 'NOT-SERVER';
        }
      } finally {
        if (entities.failPointsSet)
          await internal
            .db('admin')
            .command({ configureFailPoint: 'failCommand', mode: 'off' })
            .catch(() => undefined);
        await entities.close();
      }
      if (correction) detail = `${detail ? `${detail}\n       ` : ''}ran corrected: ${correction[0]}`;
      results.push({ id, status, detail, corrected: Boolean(correction) });
    }
  }
  await internal.close();
  await server.stop();

  const count = (s) => results.filter((r) => r.status === s).length;
  for (const r of results) {
    if (r.status === 'N/A' && !verbose) continue;
    if (r.status === 'PASS' && !verbose) continue;
    console.log(`${r.status.padEnd(6)} ${r.id}${r.detail ? `\n       ${r.detail}` : ''}`);
  }
  const applicable = results.length - count('N/A');
  const judged = applicable - count('DRIVER') - count('NOT-SERVER') - count('RUNNER');
  const pct = (n, d) => (d ? `${((100 * n) / d).toFixed(1)}%` : '-');
  console.log(
    `\n${files.length} files, ${results.length} tests, ${applicable} applicable to a ${TARGET_VERSION} standalone ` +
      `(not applicable: ${count('N/A')}): PASS ${count('PASS')}, ERROR ${count('ERROR')}, WRONG ${count('WRONG')}, ` +
      `DRIVER ${count('DRIVER')}, NOT-SERVER ${count('NOT-SERVER')}, RUNNER ${count('RUNNER')}; ` +
      `passing ${pct(count('PASS'), applicable)} of the applicable, ${pct(count('PASS'), judged)} of those the server decides; ` +
      `${results.filter((r) => r.corrected).length} ran with a correction of the stored copy (CORRECTIONS), ` +
      `${results.filter((r) => r.corrected && r.status === 'PASS').length} of them PASS`,
  );
  const reasons = new Map();
  for (const r of results.filter((x) => x.status === 'ERROR')) {
    const m = /: (?:Mongo\w*Error|ServerRefused)? ?(\d+)?:? ?(.{0,80})/.exec(r.detail.split('\n')[0]);
    const key = m ? m[0].slice(2) : r.detail.slice(0, 80);
    reasons.set(key, (reasons.get(key) || 0) + 1);
  }
  for (const [k, n] of reasons) console.log(`  ERROR x${n}: ${k}`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(results, null, 2));
  process.exitCode = count('WRONG') > 0 ? 1 : 0;
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}

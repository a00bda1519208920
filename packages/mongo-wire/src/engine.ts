/**
 * In-memory storage: databases, collections, hash indexes, the query planner and executor.
 * Everything here is synchronous: a command runs to completion before the next one starts, which
 * makes each single-document read-modify-write atomic.
 */
import { BSON, UUID } from 'bson';
import { fail, MongoWireError } from './errors';
import { newQuery } from './query';
import {
  AnnMap,
  bsonType,
  canon,
  compareValues,
  Doc,
  EMPTY_ARRAY,
  isPlainObject,
  pathValues,
  showValue,
  sortKey,
} from './values';

export interface Rec {
  /** Insertion sequence: the natural order. */
  seq: number;
  doc: Doc;
  ann: AnnMap | null;
  /**
   * BSON size: maintained for capped collections; otherwise computed when a blocking sort measures
   * the record (`recBytes`), 0 until then and after each change.
   */
  bytes: number;
}

export interface EngineStats {
  /** Documents tested against a filter (or returned by a filterless scan). */
  docsExamined: number;
  /** Queries answered from an index (including `_id`). */
  indexLookups: number;
  /** Queries that scanned the whole collection. */
  collectionScans: number;
}

type Bucket = Rec | Set<Rec>;

function bucketAdd(map: Map<string, Bucket>, key: string, rec: Rec): void {
  const b = map.get(key);
  if (b === undefined) map.set(key, rec);
  else if (b instanceof Set) b.add(rec);
  else if (b !== rec) map.set(key, new Set([b, rec]));
}

function bucketRemove(map: Map<string, Bucket>, key: string, rec: Rec): void {
  const b = map.get(key);
  if (b === undefined) return;
  if (b instanceof Set) {
    b.delete(rec);
    if (b.size === 1) map.set(key, b.values().next().value as Rec);
    else if (b.size === 0) map.delete(key);
  } else if (b === rec) map.delete(key);
}

function bucketSize(b: Bucket | undefined): number {
  return b === undefined ? 0 : b instanceof Set ? b.size : 1;
}

/** Options stored with an index that make two specs different. */
const SIGNIFICANT_OPTIONS = ['unique', 'sparse', 'partialFilterExpression', 'expireAfterSeconds', 'collation'];

export function defaultIndexName(key: Doc): string {
  return Object.keys(key)
    .map((k) => `${k}_${String(key[k])}`)
    .join('_');
}

export class Index {
  readonly name: string;
  readonly key: Doc;
  readonly fields: string[];
  readonly segs: string[][];
  readonly unique: boolean;
  readonly sparse: boolean;
  readonly partial: { test(doc: Doc): boolean } | null;
  /** Options as given (everything but key, name, v, ns). */
  readonly options: Doc;
  /** maps[k-1]: canonical key of the first k fields -> records. */
  readonly maps: Map<string, Bucket>[];
  /** owned[k-1]: this index maintains maps[k-1] (false: the same map is maintained by another index). */
  readonly owned: boolean[];

  constructor(spec: Doc) {
    const key = spec.key;
    if (!isPlainObject(key) || Object.keys(key).length === 0) fail(67, 'Index key pattern must be a non-empty object');
    this.key = key;
    this.fields = Object.keys(key);
    this.segs = this.fields.map((f) => f.split('.'));
    this.name = typeof spec.name === 'string' && spec.name ? spec.name : defaultIndexName(key);
    const options: Doc = {};
    for (const k of Object.keys(spec)) if (k !== 'key' && k !== 'name' && k !== 'v' && k !== 'ns') options[k] = spec[k];
    this.options = options;
    this.unique = options.unique === true || options.unique === 1;
    this.sparse = options.sparse === true || options.sparse === 1;
    this.partial = isPlainObject(options.partialFilterExpression) ? newQuery(options.partialFilterExpression) : null;
    this.maps = this.fields.map(() => new Map<string, Bucket>());
    this.owned = this.fields.map(() => true);
  }

  /** Whether maps[k-1] of this index and of `other` hold the same entries (same leading fields, all documents). */
  samePrefix(other: Index, k: number): boolean {
    if (this.partial || other.partial || this.sparse || other.sparse || other.fields.length < k) return false;
    for (let j = 0; j < k; j++) if (this.fields[j] !== other.fields[j]) return false;
    return true;
  }

  get ttl(): number | undefined {
    const v = this.options.expireAfterSeconds;
    return typeof v === 'number' && this.fields.length === 1 ? v : undefined;
  }

  spec(): Doc {
    return { v: 2, key: this.key, name: this.name, ...this.options };
  }

  sameKey(key: Doc): boolean {
    const a = Object.keys(key);
    if (a.length !== this.fields.length) return false;
    return a.every((k, i) => k === this.fields[i] && canon(key[k]) === canon(this.key[k]));
  }

  sameOptions(options: Doc): boolean {
    return SIGNIFICANT_OPTIONS.every((o) => canon(normOpt(o, options[o])) === canon(normOpt(o, this.options[o])));
  }

  /** Canonical keys for each prefix length (entries[k-1]), or null when the doc is not indexed. */
  entries(doc: Doc): string[][] | null {
    if (this.partial && !this.partial.test(doc)) return null;
    // Fast path (no array on any path): one key per prefix, no intermediate sets.
    const n = this.segs.length;
    const out: string[][] = new Array(n);
    let acc = '';
    let allMissing = true;
    for (let j = 0; j < n; j++) {
      const v = singleValue(doc, this.segs[j]);
      if (v === MULTI) return this.multiEntries(doc);
      if (v !== undefined) allMissing = false;
      const c = canon(v);
      acc = j ? acc + '|' + c : c;
      out[j] = [acc];
    }
    return this.sparse && allMissing ? null : out;
  }

  /** entries() when a path crosses arrays (multikey). */
  private multiEntries(doc: Doc): string[][] | null {
    const perField: string[][] = [];
    let allMissing = true;
    for (const segs of this.segs) {
      const vals = pathValues(doc, segs);
      const keys = new Set<string>();
      for (const v of vals) {
        if (v !== undefined) allMissing = false;
        keys.add(v === EMPTY_ARRAY ? 'a0[]' : canon(v));
      }
      perField.push([...keys]);
    }
    if (this.sparse && allMissing) return null;
    const out: string[][] = [];
    let acc: string[] = [''];
    for (let j = 0; j < perField.length; j++) {
      const next: string[] = [];
      for (const p of acc) for (const k of perField[j]) next.push(j ? p + '|' + k : k);
      acc = next;
      out.push(acc);
    }
    return out;
  }

  add(rec: Rec, e: string[][] | null): void {
    if (!e) return;
    for (let k = 0; k < e.length; k++) if (this.owned[k]) for (const key of e[k]) bucketAdd(this.maps[k], key, rec);
  }

  remove(rec: Rec, e: string[][] | null): void {
    if (!e) return;
    for (let k = 0; k < e.length; k++) if (this.owned[k]) for (const key of e[k]) bucketRemove(this.maps[k], key, rec);
  }

  /** A full key already owned by another record (unique indexes only). */
  conflict(e: string[][] | null, self: Rec | null): string | null {
    if (!this.unique || !e) return null;
    const full = this.maps[this.maps.length - 1];
    for (const key of e[e.length - 1]) {
      const b = full.get(key);
      if (b === undefined) continue;
      if (b instanceof Set) {
        for (const r of b) if (r !== self) return key;
      } else if (b !== self) return key;
    }
    return null;
  }

  /** The field values of `doc` producing the given full key (for E11000 reports). */
  keyValueFor(doc: Doc, key: string): Doc {
    const perField = this.segs.map((s) => pathValues(doc, s));
    const walk = (j: number, prefix: string, vals: unknown[]): unknown[] | null => {
      if (j === perField.length) return prefix === key ? vals : null;
      for (const v of perField[j]) {
        const c = v === EMPTY_ARRAY ? 'a0[]' : canon(v);
        const r = walk(j + 1, j ? prefix + '|' + c : c, [...vals, v === EMPTY_ARRAY ? [] : v]);
        if (r) return r;
      }
      return null;
    };
    const vals = walk(0, '', []) ?? perField.map((v) => v[0]);
    const out: Doc = {};
    this.fields.forEach((f, i) => (out[f] = vals[i] === undefined ? null : vals[i]));
    return out;
  }
}

const MULTI = Symbol('multi');

/** The value at a path when no array is crossed (as pathValues would give its only value), else MULTI. */
function singleValue(doc: unknown, segs: readonly string[]): unknown {
  let cur: unknown = doc;
  for (let i = 0; i < segs.length; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) return MULTI;
    if (!isPlainObject(cur)) return undefined;
    cur = cur[segs[i]];
  }
  return Array.isArray(cur) ? MULTI : cur;
}

function normOpt(name: string, v: unknown): unknown {
  if (name === 'unique' || name === 'sparse') return v === true || v === 1;
  return v === undefined ? null : v;
}

export interface Plan {
  /** Candidate records (unordered), or null for a collection scan. */
  recs: Iterable<Rec> | null;
  /** Number of candidates. */
  count: number;
  index: string | null;
  /** Fields whose equality the candidates satisfy by construction (the index prefix used). */
  covered?: string[];
  /** For each covered field: the canonical keys looked up (every candidate has one of them). */
  used?: Map<string, Set<string>>;
}

export interface SelectOptions {
  sort?: Doc | null;
  skip?: number;
  limit?: number;
  /** Command-level variables (`let`) for `$expr`. */
  vars?: Doc | null;
  /**
   * MongoDB's memory limit of a blocking sort (one no index provides: `sortProvided`): the BSON
   * bytes of the documents the sort holds (all the matches, or the best skip + limit) may not
   * exceed `limit`, else `fail(limit)` (which throws). `hint` restricts the indexes considered.
   */
  sortMemory?: { limit: number; hint?: unknown; fail: (limit: number) => never };
}

/** The largest BSON document MongoDB stores: a sort holding n documents cannot exceed n times it. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;
/** MongoDB explodes up to this many point-interval combinations of an index prefix into a sort-merge (internalQueryMaxScansToExplode). */
const MAX_SCANS_TO_EXPLODE = 200;

/** A record's BSON size, computed once per document version. */
export function recBytes(rec: Rec): number {
  return rec.bytes || (rec.bytes = BSON.calculateObjectSize(rec.doc));
}

/**
 * Whether an index key pattern provides `sort` once the leading fields bound to points are
 * dropped: equalities only, or (`explode`) also `$in`s, up to MAX_SCANS_TO_EXPLODE combinations.
 */
function indexProvides(key: Doc, sort: Doc, points: Map<string, number>, explode: boolean): boolean {
  const fields = Object.keys(key);
  let i = 0;
  let scans = 1;
  while (i < fields.length && points.has(fields[i])) {
    const n = points.get(fields[i]) as number;
    if (explode ? scans * n > MAX_SCANS_TO_EXPLODE : n !== 1) break;
    scans *= n;
    i++;
  }
  // The index must take part: through its bound prefix or a sort field (else it is not scanned).
  const used = i > 0;
  let direction = 0;
  for (const f of Object.keys(sort)) {
    if (points.get(f) === 1) {
      // Constant over the matches: it orders nothing.
      if (fields[i] === f) i++;
      continue;
    }
    if (fields[i] !== f) return false;
    const d = (Number(sort[f]) < 0 ? -1 : 1) * (Number(key[f]) < 0 ? -1 : 1);
    if (direction && d !== direction) return false;
    direction = d;
    i++;
  }
  return used || direction !== 0;
}

/** A value an index bound can hold as one point (an equality MongoDB plans as [v, v]). */
function isPointValue(v: unknown): boolean {
  if (Array.isArray(v) || v instanceof RegExp || bsonType(v) === 'BSONRegExp') return false;
  return !(isPlainObject(v) && hasDollarKey(v));
}

/**
 * Per top-level path of a filter (also under a top-level `$and`; never under `$or`): the number
 * of index points its condition allows, for a plain value or `$eq` (1) or a `$in` of point
 * values (their number). Other conditions are ranges: no entry.
 */
function pointConditions(filter: Doc | null | undefined, out = new Map<string, number>()): Map<string, number> {
  if (!filter) return out;
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (k === '$and') {
      if (Array.isArray(v)) for (const sub of v) if (isPlainObject(sub)) pointConditions(sub, out);
      continue;
    }
    if (k.startsWith('$')) continue;
    let n = 0;
    if (isPlainObject(v) && hasDollarKey(v)) {
      const ops = Object.keys(v);
      if (ops.length === 1 && ops[0] === '$eq' && isPointValue(v.$eq)) n = 1;
      else if (ops.length === 1 && Array.isArray(v.$in) && v.$in.length > 0 && v.$in.every(isPointValue))
        n = new Set(v.$in.map(canon)).size;
    } else if (isPointValue(v)) n = 1;
    if (n && (!out.has(k) || n < (out.get(k) as number))) out.set(k, n);
  }
  return out;
}

export interface Matcher {
  test(doc: Doc): boolean;
  /** For pure equality / $in filters: the paths they constrain. */
  simplePaths?: string[];
}

/** Values for which equality is exactly "same canonical key" (no null / array / object subtleties). */
function isSimpleEqValue(v: unknown): boolean {
  const t = typeof v;
  if (t === 'string' || t === 'number' || t === 'boolean') return true;
  return v instanceof Date || bsonType(v) === 'ObjectId';
}

interface SimpleCond {
  segs: string[];
  one?: string;
  set?: Set<string>;
}

/** A top-level `path: value` / `{$eq}` / `{$in}` condition on simple values, as canonical keys. */
function simpleCond(k: string, v: unknown): SimpleCond | null {
  if (k.startsWith('$') || k === '') return null;
  if (isSimpleEqValue(v)) return { segs: k.split('.'), one: canon(v) };
  if (!isPlainObject(v)) return null;
  const ops = Object.keys(v);
  if (ops.length !== 1) return null;
  if (ops[0] === '$eq' && isSimpleEqValue(v.$eq)) return { segs: k.split('.'), one: canon(v.$eq) };
  if (ops[0] === '$in' && Array.isArray(v.$in) && v.$in.every(isSimpleEqValue))
    return { segs: k.split('.'), set: new Set(v.$in.map(canon)) };
  return null;
}

/**
 * A top-level `path: {$all: [values]}` on simple values: one equality per value (MongoDB's `$all`
 * is the `$and` of the equalities), so the engine's gate (`'leases.id': {$all: [its leases]}`, a
 * new list on every call) needs no mingo query of its own.
 */
function allConds(k: string, v: unknown): SimpleCond[] | null {
  if (k.startsWith('$') || k === '' || !isPlainObject(v)) return null;
  const ops = Object.keys(v);
  if (ops.length !== 1 || ops[0] !== '$all') return null;
  const values = v.$all;
  if (!Array.isArray(values) || values.length === 0 || !values.every(isSimpleEqValue)) return null;
  const segs = k.split('.');
  return values.map((value) => ({ segs, one: canon(value) }));
}

function testSimple(conds: SimpleCond[], doc: Doc): boolean {
  for (const c of conds) {
    let hit = false;
    for (const v of pathValues(doc, c.segs)) {
      if (v === undefined || v === EMPTY_ARRAY) continue;
      const cv = canon(v);
      if (c.one !== undefined ? cv === c.one : c.set!.has(cv)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  return true;
}

/**
 * Compile a filter (null for an empty filter: everything matches). Top-level equality / `$in` on
 * scalars, ObjectIds and Dates (the hot path: lookups, claims, leases) are matched through
 * canonical keys (a `$in` becomes a Set, not a linear scan per document); the remaining
 * conditions go through mingo. Compiled filters are cached by value (building a mingo Query copies
 * its whole operator table): the engine repeats the same filters (same task, lease, status).
 */
export function compileFilter(filter: Doc | null | undefined, vars?: Doc | null): Matcher | null {
  if (!filter) return null;
  const keys = Object.keys(filter).filter((k) => k !== '$comment');
  if (keys.length === 0) return null;
  // With variables, the compiled form depends on them: not cached.
  if (vars) return buildMatcher(filter, keys, vars);
  const key = filterKey(filter);
  if (key !== null) {
    const hit = compiledFilters.get(key);
    if (hit) return hit;
  }
  const matcher = buildMatcher(filter, keys);
  if (key !== null) {
    if (compiledFilters.size >= COMPILED_FILTERS_MAX) compiledFilters.delete(compiledFilters.keys().next().value!);
    compiledFilters.set(key, matcher);
  }
  return matcher;
}

const COMPILED_FILTERS_MAX = 2000;
const FILTER_KEY_MAX_LENGTH = 4096;
const compiledFilters = new Map<string, Matcher>();

function buildMatcher(filter: Doc, keys: string[], vars?: Doc | null): Matcher {
  const conds: SimpleCond[] = [];
  let rest: Doc | null = null;
  let all = false;
  for (const k of keys) {
    const c = simpleCond(k, filter[k]);
    if (c) {
      conds.push(c);
      continue;
    }
    const each = allConds(k, filter[k]);
    if (each) {
      conds.push(...each);
      all = true;
    } else (rest ??= {})[k] = filter[k];
  }
  if (!conds.length) return newQuery(filter, vars);
  if (rest) {
    // The rest is cached on its own: a filter whose equalities change on every call (a claim's
    // seq, a gate's leases) often has the same remaining conditions (`nextSeq: {$lte: n}`).
    const q = vars ? newQuery(rest, vars) : compileFilter(rest)!;
    return { test: (doc: Doc) => testSimple(conds, doc) && q.test(doc) };
  }
  return all
    ? { test: (doc: Doc) => testSimple(conds, doc) }
    : { simplePaths: keys, test: (doc: Doc) => testSimple(conds, doc) };
}

/** One filter requiring every condition: merged when their fields differ (keeps the fast paths), else `$and`. */
export function conjunction(conds: Doc[]): Doc {
  if (conds.length === 1) return conds[0];
  const merged: Doc = {};
  for (const c of conds)
    for (const k of Object.keys(c)) {
      if (k in merged) return { $and: conds };
      merged[k] = c[k];
    }
  return merged;
}

/**
 * The filter's conditions on the array at `arrayPath` (what the positional `$` refers to), compiled:
 * undefined when the filter has none, null when they match everything.
 */
export function positionalConditions(filter: Doc | null, arrayPath: string): Matcher | null | undefined {
  const conds: Doc[] = [];
  const gather = (f: Doc): void => {
    for (const k of Object.keys(f)) {
      if (k === '$and' && Array.isArray(f[k])) {
        for (const sub of f[k] as unknown[]) if (isPlainObject(sub)) gather(sub);
      } else if (k === arrayPath || k.startsWith(arrayPath + '.')) conds.push({ [k]: f[k] });
    }
  };
  if (filter) gather(filter);
  return conds.length ? compileFilter(conjunction(conds)) : undefined;
}

/** Operators whose compiled form is not a pure function of the filter ($$NOW, scripts). */
const UNCACHEABLE_OPERATORS = new Set(['$expr', '$where', '$function', '$accumulator']);

/**
 * A string identifying a filter exactly (key order and value types kept; every leaf ends with ','
 * and keys are length-prefixed, so no two filters share a key), or null when the filter
 * must not be cached (time- or script-dependent operators, unusual BSON types, very long filters).
 */
export function filterKey(filter: Doc): string | null {
  const parts: string[] = [];
  let length = 0;
  const push = (s: string): boolean => {
    parts.push(s);
    length += s.length;
    return length <= FILTER_KEY_MAX_LENGTH;
  };
  const walk = (v: unknown): boolean => {
    if (v === undefined) return push('U');
    if (v === null) return push('z');
    if (typeof v !== 'object')
      return (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') && push(canon(v) + ',');
    if (Array.isArray(v)) {
      if (!push('a' + v.length + '[')) return false;
      for (const e of v) if (!walk(e)) return false;
      return push(']');
    }
    if (v instanceof Date || v instanceof RegExp) return push(canon(v) + ',');
    if (isPlainObject(v)) {
      const keys = Object.keys(v);
      if (!push('O' + keys.length + '{')) return false;
      for (const k of keys) {
        if (UNCACHEABLE_OPERATORS.has(k)) return false;
        if (!push(k.length + ':' + k + '=') || !walk(v[k])) return false;
      }
      return push('}');
    }
    const bt = bsonType(v);
    if (bt === 'ObjectId' || bt === 'Binary') return push(canon(v) + ',');
    if (bt === 'Decimal128') return push('D' + String(v) + ',');
    return false;
  };
  return walk(filter) ? parts.join('') : null;
}

/**
 * The filter without the top-level conditions every candidate of the plan satisfies by
 * construction (equality / `$in` on the index fields used, with all the plan's keys allowed).
 */
export function residualFilter(filter: Doc, plan: Plan): Doc {
  const used = plan.used;
  if (!used) return filter;
  let out: Doc | null = null;
  for (const [field, keys] of used) {
    if (!(field in filter)) continue;
    const c = simpleCond(field, filter[field]);
    if (!c) continue;
    let all = true;
    for (const key of keys)
      if (c.one !== undefined ? key !== c.one : !c.set!.has(key)) {
        all = false;
        break;
      }
    if (!all) continue;
    if (!out) out = { ...filter };
    delete out[field];
  }
  return out ?? filter;
}

export class Collection {
  readonly docs = new Map<string, Rec>();
  readonly indexes: Index[] = [];
  readonly uuid = new UUID();
  readonly options: Doc;
  readonly capped: { size: number; max: number } | null;
  bytes = 0;
  private seq = 0;

  constructor(
    readonly db: string,
    readonly name: string,
    options: Doc,
    private readonly stats: EngineStats,
  ) {
    this.options = options;
    if (options.capped === true || options.capped === 1) {
      const size = typeof options.size === 'number' ? options.size : 0;
      const max = typeof options.max === 'number' ? options.max : 0;
      this.capped = { size: size > 0 ? Math.max(size, 4096) : 0, max: max > 0 ? max : 0 };
    } else this.capped = null;
  }

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  get count(): number {
    return this.docs.size;
  }

  // ---- writes -----------------------------------------------------------------------------------

  private dupError(index: string, keyPattern: Doc, keyValue: Doc): MongoWireError {
    const shown =
      '{ ' +
      Object.keys(keyValue)
        .map((k) => `${k}: ${showValue(keyValue[k])}`)
        .join(', ') +
      ' }';
    return new MongoWireError(
      11000,
      `E11000 duplicate key error collection: ${this.ns} index: ${index} dup key: ${shown}`,
      {
        keyPattern,
        keyValue,
      },
    );
  }

  insert(doc: Doc, ann: AnnMap | null): Rec {
    const id = doc._id;
    if (Array.isArray(id)) fail(53, "The '_id' value cannot be of type array");
    if (bsonType(id) === 'BSONRegExp' || id instanceof RegExp) fail(53, "The '_id' value cannot be of type regex");
    if (isPlainObject(id)) checkIdFields(id);
    const idKey = canon(id);
    if (this.docs.has(idKey)) throw this.dupError('_id_', { _id: 1 }, { _id: id });
    const entries = this.indexes.map((ix) => ix.entries(doc));
    for (let i = 0; i < this.indexes.length; i++) {
      const ix = this.indexes[i];
      const c = ix.conflict(entries[i], null);
      if (c !== null) throw this.dupError(ix.name, ix.key, ix.keyValueFor(doc, c));
    }
    const rec: Rec = { seq: ++this.seq, doc, ann, bytes: 0 };
    this.docs.set(idKey, rec);
    for (let i = 0; i < this.indexes.length; i++) this.indexes[i].add(rec, entries[i]);
    if (this.capped) {
      rec.bytes = BSON.calculateObjectSize(doc);
      this.bytes += rec.bytes;
      this.enforceCap(rec);
    }
    return rec;
  }

  private enforceCap(keep: Rec): void {
    const cap = this.capped;
    if (!cap) return;
    while ((cap.max && this.docs.size > cap.max) || (cap.size && this.bytes > cap.size)) {
      const oldest = this.docs.values().next().value as Rec | undefined;
      if (!oldest || oldest === keep) break;
      this.remove(oldest);
    }
  }

  /** Swap a record's document (same _id) maintaining indexes; throws E11000 without changing anything. */
  replace(rec: Rec, doc: Doc, ann: AnnMap | null): void {
    const n = this.indexes.length;
    const olds: (string[][] | null)[] = new Array(n);
    const news: (string[][] | null)[] = new Array(n);
    const changed: boolean[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const ix = this.indexes[i];
      const o = ix.entries(rec.doc);
      const nw = ix.entries(doc);
      olds[i] = o;
      news[i] = nw;
      changed[i] = !sameEntries(o, nw);
      if (changed[i]) {
        const c = ix.conflict(nw, rec);
        if (c !== null) throw this.dupError(ix.name, ix.key, ix.keyValueFor(doc, c));
      }
    }
    for (let i = 0; i < n; i++) {
      if (!changed[i]) continue;
      this.indexes[i].remove(rec, olds[i]);
      this.indexes[i].add(rec, news[i]);
    }
    rec.doc = doc;
    rec.ann = ann;
    if (this.capped) {
      this.bytes -= rec.bytes;
      rec.bytes = BSON.calculateObjectSize(doc);
      this.bytes += rec.bytes;
    } else rec.bytes = 0;
  }

  remove(rec: Rec): void {
    const idKey = canon(rec.doc._id);
    if (this.docs.get(idKey) !== rec) return;
    this.docs.delete(idKey);
    for (const ix of this.indexes) ix.remove(rec, ix.entries(rec.doc));
    if (this.capped) this.bytes -= rec.bytes;
  }

  clear(): void {
    this.docs.clear();
    for (const ix of this.indexes) for (const m of ix.maps) m.clear();
    this.bytes = 0;
  }

  // ---- indexes ----------------------------------------------------------------------------------

  findIndex(nameOrKey: unknown): Index | undefined {
    if (typeof nameOrKey === 'string') return this.indexes.find((i) => i.name === nameOrKey);
    if (isPlainObject(nameOrKey)) return this.indexes.find((i) => i.sameKey(nameOrKey));
    return undefined;
  }

  /** Returns false when an identical index already exists. */
  createIndex(spec: Doc): boolean {
    const ix = new Index(spec);
    if (ix.fields.length === 1 && ix.fields[0] === '_id' && !ix.partial) {
      // The _id index always exists.
      if (ix.name === '_id_' || spec.name === undefined) return false;
    }
    if (ix.name === '_id_') {
      if (ix.fields.length === 1 && ix.fields[0] === '_id') return false;
      fail(
        86,
        `An existing index has the same name as the requested index. Requested index: ${showValue(ix.spec())}, existing index: { v: 2, key: { _id: 1 }, name: "_id_" }`,
      );
    }
    for (const ex of this.indexes) {
      if (ex.name === ix.name) {
        if (ex.sameKey(ix.key) && ex.sameOptions(ix.options)) return false;
        fail(
          86,
          `An existing index has the same name as the requested index. When index names are not explicitly specified, MongoDB will automatically generate index names based on the keys. Requested index: ${showValue(ix.spec())}, existing index: ${showValue(ex.spec())}`,
        );
      }
    }
    for (const ex of this.indexes) {
      if (
        ex.sameKey(ix.key) &&
        canon(ex.options.partialFilterExpression ?? null) === canon(ix.options.partialFilterExpression ?? null)
      ) {
        if (ex.sameOptions(ix.options)) fail(85, `Index already exists with a different name: ${ex.name}`);
        fail(
          85,
          `An equivalent index already exists with a different name and options. Requested index: ${showValue(ix.spec())}, existing index: ${showValue(ex.spec())}`,
        );
      }
    }
    // Prefix maps identical to an existing index's are shared (one less hash update per write).
    for (let k = 1; k < ix.fields.length; k++) {
      const ex = this.indexes.find((e) => e.owned[k - 1] && ix.samePrefix(e, k));
      if (!ex) continue;
      ix.maps[k - 1] = ex.maps[k - 1];
      ix.owned[k - 1] = false;
    }
    // Build, checking uniqueness before the index becomes visible.
    for (const rec of this.docs.values()) {
      const e = ix.entries(rec.doc);
      const c = ix.conflict(e, rec);
      if (c !== null) {
        throw new MongoWireError(
          11000,
          `Index build failed: ${this.uuid.toHexString()}: Collection ${this.ns} ( ${this.uuid.toHexString()} ) :: caused by :: E11000 duplicate key error collection: ${this.ns} index: ${ix.name} dup key: ${showValue(ix.keyValueFor(rec.doc, c))}`,
          { keyPattern: ix.key, keyValue: ix.keyValueFor(rec.doc, c) },
        );
      }
      ix.add(rec, e);
    }
    this.indexes.push(ix);
    return true;
  }

  dropIndex(ix: Index): void {
    const i = this.indexes.indexOf(ix);
    if (i < 0) return;
    this.indexes.splice(i, 1);
    // Maps it maintained for others (up to date so far) pass to one of them.
    ix.maps.forEach((m, k) => {
      if (!ix.owned[k]) return;
      for (const other of this.indexes) {
        const j = other.maps.indexOf(m);
        if (j >= 0 && !other.owned[j]) {
          other.owned[j] = true;
          break;
        }
      }
    });
  }

  indexSpecs(): Doc[] {
    return [{ v: 2, key: { _id: 1 }, name: '_id_' }, ...this.indexes.map((i) => i.spec())];
  }

  // ---- TTL --------------------------------------------------------------------------------------

  expire(now: number): number {
    let removed = 0;
    for (const ix of this.indexes) {
      const ttl = ix.ttl;
      if (ttl === undefined) continue;
      const limit = now - ttl * 1000;
      // Walk the index keys (canonical dates are 'd<ms>'), not the documents.
      const victims = new Set<Rec>();
      for (const [key, bucket] of ix.maps[0]) {
        if (key.charCodeAt(0) !== 100 /* d */ || Number(key.slice(1)) > limit) continue;
        if (bucket instanceof Set) for (const r of bucket) victims.add(r);
        else victims.add(bucket);
      }
      for (const r of victims) {
        this.remove(r);
        removed++;
      }
    }
    return removed;
  }

  // ---- reads ------------------------------------------------------------------------------------

  /**
   * Whether an index of the collection provides `sort` for `filter`, so that MongoDB reads in
   * order instead of sorting in memory (a blocking sort, under a memory limit). An index provides
   * it when its key pattern, after the leading fields the filter binds to points (equality or
   * `$eq`, or a `$in` of at most 200 combinations, which MongoDB's planner explodes into a merge of
   * index scans), starts with the sort's fields, all in the index's directions or all reversed;
   * a sort field bound by an equality may be skipped. `_id` counts; sparse, partial and hidden
   * indexes do not (MongoDB uses them for a sort only when told). `hint`: only that index
   * (`$natural`: none). A `$natural` sort is never blocking. Not modelled: multikey paths (a
   * multikey index cannot provide a sort on its array field), `$or` (sort-merged per branch).
   */
  sortProvided(filter: Doc | null | undefined, sort: Doc, hint?: unknown): boolean {
    const sortKeys = Object.keys(sort);
    if (sortKeys.includes('$natural')) return true;
    if (sortKeys.some((k) => typeof sort[k] !== 'number' && typeof sort[k] !== 'boolean')) return false;
    let keys: Doc[];
    if (hint === undefined || hint === null) {
      keys = [{ _id: 1 }];
      for (const ix of this.indexes) if (!ix.partial && !ix.sparse && ix.options.hidden !== true) keys.push(ix.key);
    } else if (isPlainObject(hint) && '$natural' in hint) keys = [];
    else if (hint === '_id_' || (isPlainObject(hint) && Object.keys(hint).length === 1 && '_id' in hint))
      keys = [{ _id: 1 }];
    else {
      const ix = this.findIndex(hint);
      keys = ix ? [ix.key] : [];
    }
    const points = pointConditions(filter);
    return keys.some((key) => indexProvides(key, sort, points, false) || indexProvides(key, sort, points, true));
  }

  plan(filter: Doc | null | undefined): Plan {
    if (!filter) return { recs: null, count: 0, index: null };
    const eq = new Map<string, unknown[]>();
    collectEqualities(filter, eq);
    if (eq.size === 0) return { recs: null, count: 0, index: null };
    const ids = eq.get('_id');
    if (ids) {
      const recs: Rec[] = [];
      const seen = ids.length > 1 ? new Set<Rec>() : null;
      const keys = new Set<string>();
      for (const v of ids) {
        const key = canon(v);
        keys.add(key);
        const r = this.docs.get(key);
        if (!r) continue;
        if (seen) {
          if (seen.has(r)) continue;
          seen.add(r);
        }
        recs.push(r);
      }
      return { recs, count: recs.length, index: '_id_', covered: ['_id'], used: new Map([['_id', keys]]) };
    }
    let best: { ix: Index; k: number; keys: string[]; count: number; used: Map<string, Set<string>> } | null = null;
    // Canonical keys per field, shared by the indexes compared (canon of an ObjectId is not free).
    const canonSets = new Map<string, Set<string>>();
    for (const ix of this.indexes) {
      if (ix.partial) continue;
      let k = 0;
      while (k < ix.fields.length && eq.has(ix.fields[k])) k++;
      if (k === 0) continue;
      let keys: string[] = [''];
      let ok = true;
      const used = new Map<string, Set<string>>();
      for (let j = 0; j < k && ok; j++) {
        const vals = eq.get(ix.fields[j]) as unknown[];
        if (ix.sparse && vals.some((v) => v === null || v === undefined)) ok = false;
        let set = canonSets.get(ix.fields[j]);
        if (!set) canonSets.set(ix.fields[j], (set = new Set(vals.map(canon))));
        used.set(ix.fields[j], set);
        const cs = [...set];
        const next: string[] = [];
        for (const p of keys) for (const c of cs) next.push(j ? p + '|' + c : c);
        keys = next;
        if (keys.length > 10000) ok = false;
      }
      if (!ok) continue;
      const map = ix.maps[k - 1];
      let count = 0;
      for (const key of keys) count += bucketSize(map.get(key));
      if (!best || count < best.count || (count === best.count && k > best.k)) best = { ix, k, keys, count, used };
    }
    if (!best) return { recs: null, count: 0, index: null };
    const map = best.ix.maps[best.k - 1];
    const covered = best.ix.fields.slice(0, best.k);
    if (best.keys.length === 1) {
      const b = map.get(best.keys[0]);
      const recs: Iterable<Rec> = b === undefined ? [] : b instanceof Set ? b : [b];
      return { recs, count: best.count, index: best.ix.name, covered, used: best.used };
    }
    const seen = new Set<Rec>();
    for (const key of best.keys) {
      const b = map.get(key);
      if (b === undefined) continue;
      if (b instanceof Set) for (const r of b) seen.add(r);
      else seen.add(b);
    }
    return { recs: seen, count: seen.size, index: best.ix.name, covered, used: best.used };
  }

  /**
   * Matching records in result order (sort, else natural order), after skip and limit.
   * Index candidates are unordered: they are ordered by the sort (ties: natural order) with a
   * bounded top-k when there is a limit; a filterless or unindexed natural-order read streams.
   */
  select(
    filter: Doc | null | undefined,
    opts: SelectOptions = {},
    planOut?: { plan?: Plan; examined?: number },
  ): Rec[] {
    const plan = this.plan(filter);
    if (planOut) planOut.plan = plan;
    // Conditions the index lookup already guarantees are not re-checked per candidate.
    const q = compileFilter(filter && plan.recs ? residualFilter(filter, plan) : filter, opts.vars);
    if (plan.recs) this.stats.indexLookups++;
    else this.stats.collectionScans++;
    const examinedBefore = this.stats.docsExamined;
    const skip = opts.skip && opts.skip > 0 ? opts.skip : 0;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    let sortSpec = opts.sort && Object.keys(opts.sort).length ? opts.sort : null;
    let seqDir = 1;
    if (sortSpec && '$natural' in sortSpec) {
      seqDir = Number(sortSpec.$natural) < 0 ? -1 : 1;
      sortSpec = null;
    }
    const fields = sortSpec
      ? Object.keys(sortSpec)
          .filter((f) => typeof sortSpec![f] === 'number' || typeof sortSpec![f] === 'boolean')
          .map((f) => ({ segs: f.split('.'), dir: Number(sortSpec![f]) < 0 ? -1 : 1 }))
      : [];
    const out: Rec[] = [];

    if (!plan.recs && !fields.length) {
      // Natural order over the collection: stream, stop at skip + limit.
      const source: Iterable<Rec> = seqDir < 0 ? Array.from(this.docs.values()).reverse() : this.docs.values();
      let skipped = 0;
      for (const rec of source) {
        this.stats.docsExamined++;
        if (q && !q.test(rec.doc)) continue;
        if (skipped < skip) {
          skipped++;
          continue;
        }
        out.push(rec);
        if (out.length >= limit) break;
      }
      if (planOut) planOut.examined = this.stats.docsExamined - examinedBefore;
      return out;
    }

    interface Item {
      rec: Rec;
      keys: unknown[];
    }
    const nf = fields.length;
    const NO_KEYS: unknown[] = [];
    const compare = (a: Item, b: Item): number => {
      for (let i = 0; i < nf; i++) {
        const c = compareValues(a.keys[i], b.keys[i]);
        if (c) return c * fields[i].dir;
      }
      return (a.rec.seq - b.rec.seq) * seqDir;
    };
    const want = skip + limit;
    const topK = Number.isFinite(want) && want <= 5000;
    const items: Item[] = [];
    for (const rec of plan.recs ?? this.docs.values()) {
      this.stats.docsExamined++;
      if (q && !q.test(rec.doc)) continue;
      if (topK && items.length >= want) {
        // Reject without allocating when it sorts after the current worst.
        const worst = items[items.length - 1];
        let c = 0;
        for (let i = 0; i < nf && !c; i++)
          c = compareValues(sortKey(rec.doc, fields[i].segs, fields[i].dir), worst.keys[i]) * fields[i].dir;
        if (c > 0 || (c === 0 && (rec.seq - worst.rec.seq) * seqDir > 0)) continue;
      }
      const item: Item = { rec, keys: nf ? fields.map((f) => sortKey(rec.doc, f.segs, f.dir)) : NO_KEYS };
      if (!topK) {
        items.push(item);
        continue;
      }
      let lo = 0;
      let hi = items.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compare(items[mid], item) <= 0) lo = mid + 1;
        else hi = mid;
      }
      items.splice(lo, 0, item);
      if (items.length > want) items.pop();
    }
    if (!topK) items.sort(compare);
    const end = Math.min(Number.isFinite(limit) ? skip + limit : items.length, items.length);
    const memory = opts.sortMemory;
    // A blocking sort holds the best skip + limit documents (all of them without a limit).
    if (memory && nf && end * MAX_DOCUMENT_BYTES > memory.limit && !this.sortProvided(filter, sortSpec!, memory.hint)) {
      let bytes = 0;
      for (let i = 0; i < end; i++) if ((bytes += recBytes(items[i].rec)) > memory.limit) memory.fail(memory.limit);
    }
    for (let i = skip; i < end; i++) out.push(items[i].rec);
    if (planOut) planOut.examined = this.stats.docsExamined - examinedBefore;
    return out;
  }

  /** Number of matching documents, without materialising or ordering anything. */
  countMatching(filter: Doc | null | undefined, skip = 0, limit = 0, vars?: Doc | null): number {
    let n: number;
    if (!filter || Object.keys(filter).length === 0) n = this.docs.size;
    else {
      const plan = this.plan(filter);
      const q = compileFilter(plan.recs ? residualFilter(filter, plan) : filter, vars);
      if (plan.recs) this.stats.indexLookups++;
      else this.stats.collectionScans++;
      if (!q && plan.recs) n = plan.count;
      else {
        n = 0;
        for (const rec of plan.recs ?? this.docs.values()) {
          this.stats.docsExamined++;
          if (!q || q.test(rec.doc)) n++;
        }
      }
    }
    n = Math.max(0, n - (skip > 0 ? skip : 0));
    return limit > 0 ? Math.min(n, limit) : n;
  }
}

/** MongoDB refuses `$`-prefixed field names anywhere inside an `_id` (InvalidIdField). */
function checkIdFields(o: Doc): void {
  for (const k of Object.keys(o)) {
    if (k.startsWith('$')) fail(53, `_id fields may not contain '$'-prefixed fields: ${k} is not valid for storage.`);
    const v = o[k];
    if (isPlainObject(v)) checkIdFields(v);
  }
}

function sameEntries(a: string[][] | null, b: string[][] | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  const x = a[a.length - 1];
  const y = b[b.length - 1];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function hasDollarKey(o: Doc): boolean {
  for (const k of Object.keys(o)) if (k.startsWith('$')) return true;
  return false;
}

function eqUsable(v: unknown): boolean {
  if (Array.isArray(v) || v instanceof RegExp) return false;
  if (bsonType(v) === 'BSONRegExp') return false;
  if (isPlainObject(v) && hasDollarKey(v)) return false;
  return true;
}

/** Equality (or `$in`) constraints on top-level paths of a filter (also inside a top-level `$and`). */
export function collectEqualities(filter: Doc, out: Map<string, unknown[]>): void {
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (k === '$and') {
      if (Array.isArray(v)) for (const sub of v) if (isPlainObject(sub)) collectEqualities(sub, out);
      continue;
    }
    if (k.startsWith('$')) continue;
    let vals: unknown[] | null = null;
    if (isPlainObject(v) && hasDollarKey(v)) {
      if ('$eq' in v && eqUsable(v.$eq)) vals = [v.$eq];
      else if (Array.isArray(v.$in) && v.$in.every(eqUsable)) vals = v.$in;
    } else if (eqUsable(v)) vals = [v];
    if (!vals) continue;
    const prev = out.get(k);
    if (!prev || vals.length < prev.length) out.set(k, vals);
  }
}

export class Storage {
  readonly dbs = new Map<string, Map<string, Collection>>();

  constructor(readonly stats: EngineStats) {}

  get(db: string, name: string): Collection | undefined {
    return this.dbs.get(db)?.get(name);
  }

  /** Get or create (implicit creation on first write). */
  ensure(db: string, name: string, options: Doc = {}): Collection {
    validateCollName(name);
    let d = this.dbs.get(db);
    if (!d) {
      d = new Map();
      this.dbs.set(db, d);
    }
    let c = d.get(name);
    if (!c) {
      c = new Collection(db, name, options, this.stats);
      d.set(name, c);
    }
    return c;
  }

  drop(db: string, name: string): Collection | undefined {
    const d = this.dbs.get(db);
    const c = d?.get(name);
    if (d && c) {
      d.delete(name);
      if (d.size === 0) this.dbs.delete(db);
    }
    return c;
  }

  dropDb(db: string): void {
    this.dbs.delete(db);
  }

  collections(db: string): Collection[] {
    return Array.from(this.dbs.get(db)?.values() ?? []);
  }

  expire(now: number): number {
    let n = 0;
    for (const d of this.dbs.values())
      for (const c of d.values()) if (c.indexes.some((i) => i.ttl !== undefined)) n += c.expire(now);
    return n;
  }
}

export function validateCollName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) fail(73, `Invalid collection name: ${String(name)}`);
  if (name.includes('$') || name.includes('\0')) fail(73, `Invalid collection name: ${name}`);
}

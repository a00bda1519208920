/**
 * Value helpers shared by the engine: BSON-type preservation, canonical keys, path extraction,
 * MongoDB ordering, cloning.
 *
 * Internal representation: documents are decoded with `promoteValues:false` and then normalised
 * in place so that Int32, Double and Long become plain JS numbers (mingo compares plain values).
 * Numbers whose default BSON encoding would differ from what the client sent (a Long, or a
 * Double holding an integral value that would otherwise be re-encoded as int32) are recorded in a
 * per-document annotation map (path -> original value) and substituted back on output.
 */
import { Double, Long } from 'bson';

export type Doc = Record<string, unknown>;

export interface Ann {
  kind: 'long' | 'double';
  /** The JS number stored in the document at this path. */
  num: number;
  /** The value to put on the wire instead, while the stored number is still `num`. */
  orig: Long | Double;
}
/** Dotted path inside a document -> annotation. */
export type AnnMap = Map<string, Ann>;
/** Annotation collected while normalising a request body: path segments from the body root. */
export interface RawAnn {
  segs: string[];
  ann: Ann;
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** True when a double with this value would be re-encoded as int32 by the BSON serializer. */
export function needsDoubleAnn(n: number): boolean {
  return Number.isInteger(n) && !Object.is(n, -0) && n >= INT32_MIN && n <= INT32_MAX;
}

export function makeAnn(kind: 'long' | 'double', num: number): Ann | null {
  if (kind === 'long') {
    if (!Number.isInteger(num)) return null;
    return { kind, num, orig: Long.fromNumber(num) };
  }
  if (!needsDoubleAnn(num)) return null;
  return { kind, num, orig: new Double(num) };
}

export function bsonType(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const t = (v as { _bsontype?: unknown })._bsontype;
  return typeof t === 'string' ? t : undefined;
}

export function isPlainObject(v: unknown): v is Doc {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Replace Int32/Double/Long by JS numbers in place (returns the replacement for `v`).
 * When `sink` is given, records annotations for numbers whose type would otherwise be lost.
 */
export function normalizeInPlace(v: unknown, segs: string[], sink: RawAnn[] | null): unknown {
  if (v === null || typeof v !== 'object') return v;
  const bt = (v as { _bsontype?: string })._bsontype;
  if (bt !== undefined) {
    switch (bt) {
      case 'Int32':
        return (v as { value: number }).value;
      case 'Double': {
        const n = (v as Double).value;
        if (sink && needsDoubleAnn(n))
          sink.push({ segs: segs.slice(), ann: { kind: 'double', num: n, orig: v as Double } });
        return n;
      }
      case 'Long': {
        const n = (v as Long).toNumber();
        if (sink) sink.push({ segs: segs.slice(), ann: { kind: 'long', num: n, orig: v as Long } });
        return n;
      }
      default:
        return v;
    }
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e = v[i];
      if (e !== null && typeof e === 'object') {
        segs.push(String(i));
        const r = normalizeInPlace(e, segs, sink);
        segs.pop();
        if (r !== e) v[i] = r;
      }
    }
    return v;
  }
  if (!isPlainObject(v)) return v;
  for (const k of Object.keys(v)) {
    const e = v[k];
    if (e !== null && typeof e === 'object') {
      segs.push(k);
      const r = normalizeInPlace(e, segs, sink);
      segs.pop();
      if (r !== e) v[k] = r;
    }
  }
  return v;
}

/** Annotations under a body prefix, as relative segment lists. */
export function annsUnder(raw: RawAnn[], prefix: string[]): RawAnn[] {
  if (raw.length === 0) return [];
  const out: RawAnn[] = [];
  outer: for (const r of raw) {
    if (r.segs.length < prefix.length) continue;
    for (let i = 0; i < prefix.length; i++) if (r.segs[i] !== prefix[i]) continue outer;
    out.push({ segs: r.segs.slice(prefix.length), ann: r.ann });
  }
  return out;
}

/** Turn relative raw annotations into a document annotation map (null when empty). */
export function annMapOf(raw: RawAnn[]): AnnMap | null {
  if (raw.length === 0) return null;
  const m: AnnMap = new Map();
  for (const r of raw) if (r.segs.length) m.set(r.segs.join('.'), r.ann);
  return m.size ? m : null;
}

/** Shallow-copying substitution of annotated numbers by their original BSON values. */
export function typedView(doc: Doc, ann: AnnMap | null): Doc {
  if (!ann || ann.size === 0) return doc;
  const root: Doc = { ...doc };
  const cloned = new Set<object>([root]);
  for (const [path, a] of ann) {
    const segs = path.split('.');
    let parent: Record<string, unknown> | unknown[] = root;
    let ok = true;
    for (let i = 0; i < segs.length - 1; i++) {
      const child: unknown = (parent as Record<string, unknown>)[segs[i]];
      if (!(Array.isArray(child) || isPlainObject(child))) {
        ok = false;
        break;
      }
      let c: Record<string, unknown> | unknown[] = child;
      if (!cloned.has(child)) {
        c = Array.isArray(child) ? child.slice() : { ...child };
        (parent as Record<string, unknown>)[segs[i]] = c;
        cloned.add(c);
      }
      parent = c;
    }
    if (!ok) continue;
    const last = segs[segs.length - 1];
    const cur = (parent as Record<string, unknown>)[last];
    if (typeof cur === 'number' && Object.is(cur, a.num)) (parent as Record<string, unknown>)[last] = a.orig;
  }
  return root;
}

/** Deep clone of a stored document (plain objects, arrays and Dates are copied; BSON values shared). */
export function cloneDoc<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let i = 0; i < v.length; i++) out[i] = cloneDoc(v[i]);
    return out as T;
  }
  if (v instanceof Date) return new Date(v.getTime()) as T;
  if (!isPlainObject(v)) return v;
  const out: Doc = {};
  for (const k of Object.keys(v)) out[k] = cloneDoc((v as Doc)[k]);
  return out as T;
}

/**
 * Canonical string of a value for hash indexes. Equal (in mingo / MongoDB terms) values map to the
 * same string; numbers of any BSON type compare by value. Strings are length-prefixed so compound
 * keys built by concatenation are unambiguous.
 */
export function canon(v: unknown): string {
  if (v === undefined || v === null) return 'z';
  switch (typeof v) {
    case 'number':
      return 'n' + v;
    case 'string':
      return 's' + v.length + ':' + v;
    case 'boolean':
      return v ? 'b1' : 'b0';
    case 'bigint':
      return 'n' + v.toString();
    case 'object':
      break;
    default:
      return 'u' + String(v);
  }
  if (v instanceof Date) return 'd' + v.getTime();
  if (Array.isArray(v)) {
    let s = 'a' + v.length + '[';
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + canon(v[i]);
    return s + ']';
  }
  if (v instanceof RegExp) return 'r' + v.source.length + ':' + v.source + '/' + v.flags;
  const bt = bsonType(v);
  if (bt !== undefined) {
    switch (bt) {
      case 'ObjectId':
        return 'o' + (v as { toHexString(): string }).toHexString();
      case 'Decimal128': {
        const s = String(v);
        const n = Number(s);
        return Number.isFinite(n) && String(n) === s ? 'n' + n : 'D' + s;
      }
      case 'Long':
        return 'n' + (v as Long).toNumber();
      case 'Int32':
      case 'Double':
        return 'n' + (v as { value: number }).value;
      case 'Binary': {
        const b = v as { sub_type: number; toString(enc: string): string };
        return 'x' + b.sub_type + ':' + b.toString('base64');
      }
      default:
        return bt + ':' + JSON.stringify(v);
    }
  }
  const keys = Object.keys(v as Doc).sort();
  let s = 'O{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    s += (i ? ',' : '') + k.length + ':' + k + '=' + canon((v as Doc)[k]);
  }
  return s + '}';
}

const NUMERIC = /^\d+$/;
/** Marker for an empty array at the end of a path (distinct from missing/null). */
export const EMPTY_ARRAY: readonly unknown[] = Object.freeze([]);

/**
 * All values reachable at a dotted path, expanding arrays (multikey semantics). A missing value is
 * reported as `undefined`; an empty array at the leaf as EMPTY_ARRAY.
 */
export function pathValues(doc: unknown, segs: readonly string[]): unknown[] {
  const out: unknown[] = [];
  collect(doc, segs, 0, out);
  return out;
}

function collect(cur: unknown, segs: readonly string[], i: number, out: unknown[]): void {
  if (i === segs.length) {
    if (Array.isArray(cur)) {
      if (cur.length === 0) out.push(EMPTY_ARRAY);
      else for (const e of cur) out.push(e);
    } else out.push(cur);
    return;
  }
  if (cur === null || typeof cur !== 'object') {
    out.push(undefined);
    return;
  }
  const seg = segs[i];
  if (Array.isArray(cur)) {
    if (NUMERIC.test(seg)) {
      collect(cur[Number(seg)], segs, i + 1, out);
      return;
    }
    if (cur.length === 0) {
      out.push(undefined);
      return;
    }
    for (const e of cur) {
      if (Array.isArray(e)) out.push(undefined);
      else collect(e, segs, i, out);
    }
    return;
  }
  if (!isPlainObject(cur)) {
    out.push(undefined);
    return;
  }
  collect(cur[seg], segs, i + 1, out);
}

/** Plain (non-expanding) lookup of a dotted path; numeric segments index arrays. */
export function getPath(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const seg of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      if (!NUMERIC.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (isPlainObject(cur)) cur = cur[seg];
    else return undefined;
  }
  return cur;
}

/** Set a dotted path, creating intermediate objects. */
export function setPath(doc: Doc, path: string, value: unknown): void {
  const segs = path.split('.');
  let cur: Record<string, unknown> = doc;
  for (let i = 0; i < segs.length - 1; i++) {
    let next = cur[segs[i]];
    if (next === null || typeof next !== 'object') {
      next = {};
      cur[segs[i]] = next;
    }
    cur = next as Record<string, unknown>;
  }
  cur[segs[segs.length - 1]] = value;
}

// ---- MongoDB ordering -------------------------------------------------------------------------

function typeRank(v: unknown): number {
  if (v === undefined || v === null) return 1;
  switch (typeof v) {
    case 'number':
    case 'bigint':
      return 2;
    case 'string':
      return 4;
    case 'boolean':
      return 9;
  }
  if (v instanceof Date) return 10;
  if (Array.isArray(v)) return 6;
  if (v instanceof RegExp) return 12;
  switch (bsonType(v)) {
    case undefined:
      return 5;
    case 'MinKey':
      return 0;
    case 'Int32':
    case 'Double':
    case 'Long':
    case 'Decimal128':
      return 2;
    case 'BSONSymbol':
      return 4;
    case 'Binary':
      return 7;
    case 'ObjectId':
      return 8;
    case 'Timestamp':
      return 11;
    case 'BSONRegExp':
      return 12;
    case 'MaxKey':
      return 14;
    default:
      return 13;
  }
}

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  const bt = bsonType(v);
  if (bt === 'Long') return (v as Long).toNumber();
  if (bt === 'Int32' || bt === 'Double') return (v as { value: number }).value;
  return Number(String(v));
}

const cmp = (a: number | string, b: number | string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Total order following MongoDB's BSON comparison order. */
export function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (typeof a === 'number' && typeof b === 'number' && !Number.isNaN(a) && !Number.isNaN(b))
    return a < b ? -1 : a > b ? 1 : 0;
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 1:
    case 0:
    case 14:
      return 0;
    case 2: {
      const x = toNum(a);
      const y = toNum(b);
      if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : -1;
      if (Number.isNaN(y)) return 1;
      return cmp(x, y);
    }
    case 4:
      return cmp(String(a), String(b));
    case 9:
      return cmp(Number(a), Number(b));
    case 10:
      return cmp((a as Date).getTime(), (b as Date).getTime());
    case 8:
      return cmp((a as { toHexString(): string }).toHexString(), (b as { toHexString(): string }).toHexString());
    case 6: {
      const x = a as unknown[];
      const y = b as unknown[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compareValues(x[i], y[i]);
        if (c) return c;
      }
      return cmp(x.length, y.length);
    }
    case 5: {
      const ka = Object.keys(a as Doc);
      const kb = Object.keys(b as Doc);
      const n = Math.min(ka.length, kb.length);
      for (let i = 0; i < n; i++) {
        const c1 = typeRank((a as Doc)[ka[i]]) - typeRank((b as Doc)[kb[i]]);
        if (c1) return c1;
        const c2 = cmp(ka[i], kb[i]);
        if (c2) return c2;
        const c3 = compareValues((a as Doc)[ka[i]], (b as Doc)[kb[i]]);
        if (c3) return c3;
      }
      return cmp(ka.length, kb.length);
    }
    case 7: {
      const x = a as { length(): number; sub_type: number; toString(e: string): string };
      const y = b as typeof x;
      return cmp(x.length(), y.length()) || cmp(x.sub_type, y.sub_type) || cmp(x.toString('hex'), y.toString('hex'));
    }
    case 11: {
      const x = BigInt(String(a));
      const y = BigInt(String(b));
      return x < y ? -1 : x > y ? 1 : 0;
    }
    default:
      return cmp(String(a), String(b));
  }
}

/** Sort key of a document for one field: min (ascending) or max (descending) over array values. */
export function sortKey(doc: unknown, segs: readonly string[], dir: number): unknown {
  if (segs.length === 1 && isPlainObject(doc)) {
    const v = doc[segs[0]];
    if (!Array.isArray(v)) return v;
  }
  const vals = pathValues(doc, segs);
  let best: unknown = undefined;
  let first = true;
  for (let v of vals) {
    if (v === EMPTY_ARRAY) v = undefined;
    if (first) {
      best = v;
      first = false;
    } else {
      const c = compareValues(v, best);
      if ((dir > 0 && c < 0) || (dir < 0 && c > 0)) best = v;
    }
  }
  return best;
}

// ---- Display (error messages) -----------------------------------------------------------------

/** Render a value the way the MongoDB shell does in E11000 messages. */
export function showValue(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return `new Date(${v.getTime()})`;
  if (v instanceof RegExp) return String(v);
  if (Array.isArray(v)) return '[ ' + v.map(showValue).join(', ') + ' ]';
  const bt = bsonType(v);
  if (bt === 'ObjectId') return `ObjectId('${(v as { toHexString(): string }).toHexString()}')`;
  if (bt === 'Decimal128') return `Decimal128("${String(v)}")`;
  if (bt) return String(v);
  const keys = Object.keys(v as Doc);
  if (!keys.length) return '{}';
  return '{ ' + keys.map((k) => `${k}: ${showValue((v as Doc)[k])}`).join(', ') + ' }';
}

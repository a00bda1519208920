/**
 * Find-style projections. Inclusion / exclusion (also with dotted paths), `$slice` and the
 * positional `field.$` are done here; other operators ($elemMatch, expressions) go through mingo.
 */
import { Query } from 'mingo';
import { positionalConditions } from './engine';
import { fail } from './errors';
import { Doc, isPlainObject } from './values';

export type Projector = (doc: Doc) => Doc;

interface Tree {
  [key: string]: true | Tree;
}

const identity: Projector = (d) => d;

function addPath(tree: Tree, path: string): void {
  const segs = path.split('.');
  let cur = tree;
  for (let i = 0; i < segs.length - 1; i++) {
    const n = cur[segs[i]];
    if (n === true) return;
    if (n === undefined) {
      const t: Tree = {};
      cur[segs[i]] = t;
      cur = t;
    } else cur = n;
  }
  cur[segs[segs.length - 1]] = true;
}

function includeArray(arr: unknown[], t: Tree): unknown[] {
  const out: unknown[] = [];
  for (const e of arr) {
    if (Array.isArray(e)) out.push(includeArray(e, t));
    else if (isPlainObject(e)) out.push(include(e, t));
  }
  return out;
}

function include(obj: Doc, tree: Tree): Doc {
  const out: Doc = {};
  for (const k of Object.keys(obj)) {
    const t = tree[k];
    if (t === undefined) continue;
    if (t === true) out[k] = obj[k];
    else {
      const v = obj[k];
      if (Array.isArray(v)) out[k] = includeArray(v, t);
      else if (isPlainObject(v)) out[k] = include(v, t);
    }
  }
  return out;
}

function excludeArray(arr: unknown[], t: Tree): unknown[] {
  return arr.map((e) => (Array.isArray(e) ? excludeArray(e, t) : isPlainObject(e) ? exclude(e, t) : e));
}

function exclude(obj: Doc, tree: Tree): Doc {
  const out: Doc = {};
  for (const k of Object.keys(obj)) {
    const t = tree[k];
    if (t === true) continue;
    const v = obj[k];
    if (t === undefined) out[k] = v;
    else if (Array.isArray(v)) out[k] = excludeArray(v, t);
    else if (isPlainObject(v)) out[k] = exclude(v, t);
    else out[k] = v;
  }
  return out;
}

/**
 * Replace the value at a dotted path (through plain objects only) of a projected document,
 * copying the objects along the path so nothing stored is modified.
 */
function replaceAt(doc: Doc, segs: string[], fn: (v: unknown) => unknown): void {
  let cur: Doc = doc;
  for (let i = 0; i < segs.length - 1; i++) {
    const next = cur[segs[i]];
    if (!isPlainObject(next)) return;
    const copy = { ...next };
    cur[segs[i]] = copy;
    cur = copy;
  }
  const last = segs[segs.length - 1];
  if (last in cur) cur[last] = fn(cur[last]);
}

function sliceArray(v: unknown, spec: unknown): unknown {
  if (!Array.isArray(v)) return v;
  if (typeof spec === 'number') return spec >= 0 ? v.slice(0, spec) : v.slice(Math.max(0, v.length + spec));
  const [skip, limit] = spec as [number, number];
  const start = skip >= 0 ? skip : Math.max(0, v.length + skip);
  return v.slice(start, start + limit);
}

function isSliceSpec(v: unknown): boolean {
  if (!isPlainObject(v) || Object.keys(v).length !== 1 || !('$slice' in v)) return false;
  const s = v.$slice;
  return typeof s === 'number' || (Array.isArray(s) && s.length === 2 && s.every((x) => typeof x === 'number'));
}

/** Index of the first element of the array at `arrayPath` matching the filter's conditions on it. */
function positionalMatch(arrayPath: string, arr: unknown[], filter: Doc | null): number {
  const q = positionalConditions(filter, arrayPath);
  if (q === undefined) return -1;
  const segs = arrayPath.split('.');
  for (let i = 0; i < arr.length; i++) {
    const probe: Doc = {};
    let cur = probe;
    for (let j = 0; j < segs.length - 1; j++) {
      const next: Doc = {};
      cur[segs[j]] = next;
      cur = next;
    }
    cur[segs[segs.length - 1]] = [arr[i]];
    if (!q || q.test(probe)) return i;
  }
  return -1;
}

export function makeProjector(spec: unknown, filter: Doc | null = null): Projector {
  if (!isPlainObject(spec)) return identity;
  const keys = Object.keys(spec);
  if (keys.length === 0) return identity;
  let idSetting: boolean | undefined;
  const incl: string[] = [];
  const excl: string[] = [];
  const slices: [string[], unknown][] = [];
  let positional: string | null = null;
  for (const k of keys) {
    const v = spec[k];
    if (isSliceSpec(v) && !k.includes('$')) {
      slices.push([k.split('.'), (v as Doc).$slice]);
      continue;
    }
    if (k.endsWith('.$') && !k.slice(0, -2).includes('$') && (typeof v === 'number' || typeof v === 'boolean') && v) {
      if (positional) fail(31276, 'Cannot specify more than one positional projection per query.');
      positional = k.slice(0, -2);
      incl.push(positional);
      continue;
    }
    if (k.includes('$') || !(typeof v === 'number' || typeof v === 'boolean')) {
      const q = new Query({});
      return (doc) => (q.find([doc], spec).next() as Doc | undefined) ?? {};
    }
    const on = Boolean(v);
    if (k === '_id') idSetting = on;
    else (on ? incl : excl).push(k);
  }
  if (incl.length && excl.length) fail(31254, `Cannot do exclusion on field ${excl[0]} in inclusion projection`);
  let base: Projector;
  if (incl.length || (idSetting === true && !excl.length)) {
    const tree: Tree = {};
    for (const p of incl) addPath(tree, p);
    for (const [segs] of slices) addPath(tree, segs.join('.'));
    if (idSetting !== false) tree._id = true;
    base = (doc) => include(doc, tree);
  } else if (excl.length || idSetting === false) {
    const tree: Tree = {};
    for (const p of excl) addPath(tree, p);
    if (idSetting === false) tree._id = true;
    base = (doc) => exclude(doc, tree);
  } else base = (doc) => ({ ...doc });
  const pos = positional;
  if (!slices.length && !pos) return base;
  return (doc) => {
    const out = base(doc);
    for (const [segs, s] of slices) replaceAt(out, segs, (v) => sliceArray(v, s));
    if (pos) {
      const segs = pos.split('.');
      let arr: unknown = doc;
      for (const s of segs) arr = isPlainObject(arr) ? arr[s] : undefined;
      const idx = Array.isArray(arr) ? positionalMatch(pos, arr, filter) : -1;
      if (idx < 0)
        fail(51246, 'Executor error during find command :: caused by :: positional operator did not match any element');
      const el = (arr as unknown[])[idx];
      replaceAt(out, segs, () => [el]);
    }
    return out;
  };
}

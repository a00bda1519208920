/**
 * Find-style projections. Plain inclusion / exclusion (the common case, also with dotted paths)
 * is done here; projections with operators ($slice, $elemMatch, expressions) go through mingo.
 */
import { Query } from 'mingo';
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

export function makeProjector(spec: unknown): Projector {
  if (!isPlainObject(spec)) return identity;
  const keys = Object.keys(spec);
  if (keys.length === 0) return identity;
  let simple = true;
  let idSetting: boolean | undefined;
  const incl: string[] = [];
  const excl: string[] = [];
  for (const k of keys) {
    const v = spec[k];
    if (k.includes('$') || !(typeof v === 'number' || typeof v === 'boolean')) {
      simple = false;
      break;
    }
    const on = Boolean(v);
    if (k === '_id') idSetting = on;
    else (on ? incl : excl).push(k);
  }
  if (!simple) {
    const q = new Query({});
    return (doc) => (q.find([doc], spec).next() as Doc | undefined) ?? {};
  }
  if (incl.length && excl.length) fail(31254, `Cannot do exclusion on field ${excl[0]} in inclusion projection`);
  if (incl.length || idSetting === true) {
    const tree: Tree = {};
    for (const p of incl) addPath(tree, p);
    if (idSetting !== false) tree._id = true;
    return (doc) => include(doc, tree);
  }
  const tree: Tree = {};
  for (const p of excl) addPath(tree, p);
  if (idSetting === false) tree._id = true;
  return (doc) => exclude(doc, tree);
}

/**
 * Update application: operator documents (through mingo, after resolving positional and
 * array-filter paths to concrete indexes), replacement documents and pipeline updates.
 * Never mutates the stored document: works on a deep clone and returns the new one.
 */
import { ObjectId } from 'bson';
import { ProcessingMode, Query, update as mingoUpdate } from 'mingo';
import { newAggregator, newQuery } from './query';
import { checkPipeline, UPDATE_PIPELINE_STAGES } from './surface';
import { positionalConditions } from './engine';
import { fail } from './errors';
import { ServerVersion } from './versions';
import {
  Ann,
  AnnMap,
  annMapOf,
  canon,
  cloneDoc,
  Doc,
  getPath,
  isPlainObject,
  makeAnn,
  RawAnn,
  setPath,
  showValue,
} from './values';

export interface ParsedUpdate {
  kind: 'replace' | 'ops' | 'pipeline';
  replacement?: Doc;
  ops?: Record<string, Doc>;
  pipeline?: Doc[];
  /** Annotations of typed numbers inside the update, relative to the update document. */
  anns: RawAnn[];
}

export interface UpdateContext {
  /** The query filter (for the positional `$` operator). */
  filter: Doc | null;
  arrayFilters?: Doc[];
  /** True when the update builds a new document for an upsert. */
  insert: boolean;
  /** Variables of a pipeline update: the command's `let` and the statement's constants `c`. */
  vars?: Doc | null;
}

export interface UpdateResult {
  doc: Doc;
  ann: AnnMap | null;
  modified: boolean;
}

const OPERATORS = new Set([
  '$set',
  '$unset',
  '$inc',
  '$mul',
  '$min',
  '$max',
  '$rename',
  '$currentDate',
  '$push',
  '$addToSet',
  '$pull',
  '$pullAll',
  '$pop',
  '$bit',
  '$setOnInsert',
  '$pushAll',
]);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'date';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'double';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'object') {
    const bt = (v as { _bsontype?: string })._bsontype;
    return bt ? bt.toLowerCase() : 'object';
  }
  return typeof v;
}

/** Parse an update (operators, replacement or pipeline) as the announced release `v` does. */
export function parseUpdate(u: unknown, anns: RawAnn[], v: ServerVersion): ParsedUpdate {
  if (Array.isArray(u)) {
    checkPipeline(u, false, v);
    for (const stage of u as Doc[]) {
      const name = Object.keys(stage)[0];
      if (!UPDATE_PIPELINE_STAGES.has(name)) fail(72, `${name} is not allowed to be used within an update`);
    }
    return { kind: 'pipeline', pipeline: u as Doc[], anns };
  }
  if (!isPlainObject(u)) fail(9, 'Update argument must be either an object or an array');
  const keys = Object.keys(u);
  if (keys.length === 0 || !keys[0].startsWith('$')) {
    for (const k of keys) {
      if (k.startsWith('$'))
        fail(
          52,
          `The dollar ($) prefixed field '${k}' in '${k}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.`,
        );
    }
    return { kind: 'replace', replacement: u, anns };
  }
  const ops: Record<string, Doc> = {};
  for (const op of keys) {
    if (!OPERATORS.has(op)) {
      fail(
        9,
        `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`,
      );
    }
    const arg = u[op];
    if (!isPlainObject(arg)) {
      fail(
        9,
        `Modifiers operate on fields but we found type ${typeName(arg)} instead. For example: {$mod: {<field>: ...}} not {${op}: ${showValue(arg)}}`,
      );
    }
    // Before 5.0 an operator without fields is refused (update_driver.cpp / modifier_table of 4.x).
    if (!v.has('behaviour:emptyUpdateOperand') && Object.keys(arg).length === 0)
      fail(9, `'${op}' is empty. You must specify a field like so: {${op}: {<field>: ...}}`);
    if (op === '$pushAll') {
      const push = (ops.$push ??= {});
      for (const f of Object.keys(arg)) {
        const v = arg[f];
        if (!Array.isArray(v)) fail(2, `$pushAll requires an array of values but was given type: ${typeName(v)}`);
        push[f] = { $each: v };
      }
    } else ops[op] = { ...(ops[op] ?? {}), ...arg };
  }
  return { kind: 'ops', ops, anns };
}

const POSITIONAL = /^\$(\[[a-z][a-zA-Z0-9]*\]|\[\])?$/;

function isPositionalSeg(s: string): boolean {
  return s === '$' || s === '$[]' || (s.startsWith('$[') && s.endsWith(']'));
}

/** Copy of `doc` with the value at `segs` replaced (shallow copies along the path). */
function withPath(doc: Doc, segs: string[], value: unknown): Doc {
  const root: Doc = { ...doc };
  let cur: Record<string, unknown> = root;
  for (let i = 0; i < segs.length - 1; i++) {
    const child = cur[segs[i]];
    const c = Array.isArray(child) ? child.slice() : isPlainObject(child) ? { ...child } : {};
    cur[segs[i]] = c;
    cur = c as Record<string, unknown>;
  }
  cur[segs[segs.length - 1]] = value;
  return root;
}

class PathResolver {
  private readonly afQueries = new Map<string, Query>();

  constructor(
    private readonly doc: Doc,
    private readonly ctx: UpdateContext,
  ) {}

  resolve(field: string): string[] {
    const segs = field.split('.');
    if (!segs.some(isPositionalSeg)) return [field];
    const out: string[] = [];
    let dollarSeen = false;
    const walk = (cur: unknown, i: number, prefix: string[]): void => {
      if (i === segs.length) {
        out.push(prefix.join('.'));
        return;
      }
      const s = segs[i];
      if (isPositionalSeg(s)) {
        if (!POSITIONAL.test(s)) {
          fail(
            2,
            `The array filter identifier in '${s}' must begin with a lowercase letter and contain only alphanumeric characters`,
          );
        }
        if (!Array.isArray(cur)) {
          if (s === '$') fail(2, 'The positional operator did not find the match needed from the query.');
          if (cur === undefined && this.ctx.insert) return;
          fail(2, `The path '${prefix.join('.')}' must exist in the document in order to apply array updates.`);
        }
        if (s === '$') {
          if (dollarSeen) fail(2, `Too many positional (i.e. '$') elements found in path '${field}'`);
          dollarSeen = true;
          const idx = this.firstMatch(prefix, cur);
          walk(cur[idx], i + 1, [...prefix, String(idx)]);
        } else if (s === '$[]') {
          for (let j = 0; j < cur.length; j++) walk(cur[j], i + 1, [...prefix, String(j)]);
        } else {
          const id = s.slice(2, -1);
          const q = this.arrayFilter(id, field);
          for (let j = 0; j < cur.length; j++)
            if (q.test({ [id]: cur[j] })) walk(cur[j], i + 1, [...prefix, String(j)]);
        }
        return;
      }
      let next: unknown;
      if (Array.isArray(cur)) next = /^\d+$/.test(s) ? cur[Number(s)] : undefined;
      else if (isPlainObject(cur)) next = cur[s];
      walk(next, i + 1, [...prefix, s]);
    };
    walk(this.doc, 0, []);
    return out;
  }

  private firstMatch(prefix: string[], arr: unknown[]): number {
    const q = positionalConditions(this.ctx.filter, prefix.join('.'));
    if (q === undefined) fail(2, 'The positional operator did not find the match needed from the query.');
    // The conditions only read below the array: a probe holding just that path is enough.
    const probe = prefix.some((s) => /^\d+$/.test(s))
      ? (el: unknown): Doc => withPath(this.doc, prefix, [el])
      : (el: unknown): Doc => withPath({}, prefix, [el]);
    for (let j = 0; j < arr.length; j++) if (!q || q.test(probe(arr[j]))) return j;
    fail(2, 'The positional operator did not find the match needed from the query.');
  }

  private arrayFilter(id: string, field: string): Query {
    let q = this.afQueries.get(id);
    if (q) return q;
    const merged: Doc = {};
    for (const af of this.ctx.arrayFilters ?? []) {
      if (!isPlainObject(af)) continue;
      for (const k of Object.keys(af)) if (k.split('.')[0] === id) merged[k] = af[k];
    }
    if (!Object.keys(merged).length) fail(2, `No array filter found for identifier '${id}' in path '${field}'`);
    q = newQuery(merged);
    this.afQueries.set(id, q);
    return q;
  }
}

function checkIdUpdates(ops: Record<string, Doc>, oldDoc: Doc): void {
  for (const op of Object.keys(ops)) {
    const arg = ops[op];
    for (const f of Object.keys(arg)) {
      const targets = op === '$rename' ? [f, String(arg[f])] : [f];
      for (const t of targets) {
        if (t !== '_id' && !t.startsWith('_id.')) continue;
        if (op === '$set' && t === '_id' && f === '_id') {
          if (oldDoc._id === undefined) continue;
          if (canon(arg[f]) === canon(oldDoc._id)) {
            delete arg[f];
            continue;
          }
        }
        fail(66, `Performing an update on the path '${t}' would modify the immutable field '_id'`);
      }
    }
  }
}

function checkTypes(ops: Record<string, Doc>, doc: Doc): void {
  for (const op of ['$inc', '$mul'] as const) {
    const arg = ops[op];
    if (!arg) continue;
    for (const p of Object.keys(arg)) {
      const v = arg[p];
      if (typeof v !== 'number') {
        fail(
          14,
          `Cannot ${op === '$inc' ? 'increment' : 'multiply'} with non-numeric argument: {${p}: ${showValue(v)}}`,
        );
      }
      const cur = getPath(doc, p);
      if (cur !== undefined && typeof cur !== 'number') {
        fail(
          14,
          `Cannot apply ${op} to a value of non-numeric type. {_id: ${showValue(doc._id)}} has the field '${p.split('.').pop()}' of non-numeric type ${typeName(cur)}`,
        );
      }
    }
  }
  for (const op of ['$push', '$addToSet', '$pull', '$pullAll', '$pop'] as const) {
    const arg = ops[op];
    if (!arg) continue;
    for (const p of Object.keys(arg)) {
      const cur = getPath(doc, p);
      if (cur !== undefined && !Array.isArray(cur)) {
        if (op === '$push' || op === '$addToSet') {
          fail(
            2,
            `The field '${p}' must be an array but is of type ${typeName(cur)} in document {_id: ${showValue(doc._id)}}`,
          );
        }
        fail(2, `Cannot apply ${op} to a non-array value`);
      }
    }
  }
}

const FAST_OPS = new Set(['$set', '$unset', '$inc', '$push']);

/**
 * $set / $unset / $inc on paths through plain objects, or through an existing array element that is
 * an object (`leases.0.until`, what positional paths resolve to), applied directly.
 * Returns null, without touching `doc`, when the update needs mingo. `doc` is a fresh shallow copy
 * of the stored document: nested objects on a written path are copied on the way down (copy on
 * write), everything else stays shared with the stored (immutable) document.
 */
function fastUpdate(doc: Doc, ops: Record<string, Doc>): string[] | null {
  const paths: string[] = [];
  for (const op of Object.keys(ops)) {
    if (!FAST_OPS.has(op)) return null;
    for (const p of Object.keys(ops[op])) paths.push(p);
  }
  const sorted = [...paths].sort();
  for (let i = 0; i + 1 < sorted.length; i++) {
    if (sorted[i] === sorted[i + 1] || sorted[i + 1].startsWith(sorted[i] + '.')) return null;
  }
  for (const p of paths) {
    const segs = p.split('.');
    if (segs.some((x) => x === '')) return null;
    const push = ops.$push && Object.prototype.hasOwnProperty.call(ops.$push, p);
    // A plain `$push` of one value (no $each / $slice / ... modifiers).
    if (push && isPlainObject(ops.$push[p]) && Object.keys(ops.$push[p] as Doc).some((k) => k.startsWith('$')))
      return null;
    let cur: unknown = doc;
    let missing = false;
    for (let i = 0; i < segs.length - 1; i++) {
      if (Array.isArray(cur)) {
        // Only an existing object element; padding, holes and scalars are left to mingo.
        if (String(Number(segs[i])) !== segs[i]) return null;
        cur = cur[Number(segs[i])];
        if (!isPlainObject(cur)) return null;
        continue;
      }
      const next = (cur as Doc)[segs[i]];
      if (next === undefined) {
        missing = true;
        break;
      }
      if (!isPlainObject(next) && !(Array.isArray(next) && i + 2 < segs.length)) return null;
      cur = next;
    }
    if (push && !missing) {
      const target = (cur as Doc)[segs[segs.length - 1]];
      if (target !== undefined && !Array.isArray(target)) return null;
    }
  }
  const modified: string[] = [];
  const copied = new Set<object>([doc]);
  for (const op of Object.keys(ops)) {
    const arg = ops[op];
    for (const p of Object.keys(arg)) {
      const segs = p.split('.');
      const last = segs[segs.length - 1];
      let parent: Doc | undefined = doc;
      for (let i = 0; i < segs.length - 1 && parent; i++) {
        let next = parent[segs[i]] as Doc | undefined;
        if (next === undefined) {
          if (op === '$unset') {
            parent = undefined;
            break;
          }
          next = {};
          parent[segs[i]] = next;
          copied.add(next);
        } else if (!copied.has(next)) {
          next = (Array.isArray(next) ? next.slice() : { ...next }) as Doc;
          parent[segs[i]] = next;
          copied.add(next);
        }
        parent = next;
      }
      if (!parent) continue;
      const v = arg[p];
      if (op === '$set') {
        if (Object.prototype.hasOwnProperty.call(parent, last) && canon(parent[last]) === canon(v)) continue;
        parent[last] = cloneDoc(v);
        modified.push(p);
      } else if (op === '$inc') {
        const prev = parent[last] as number | undefined;
        const next = (prev ?? 0) + (v as number);
        if (prev !== undefined && next === prev) continue;
        parent[last] = next;
        modified.push(p);
      } else if (op === '$push') {
        const prev = parent[last] as unknown[] | undefined;
        parent[last] = prev ? [...prev, cloneDoc(v)] : [cloneDoc(v)];
        modified.push(p);
      } else if (Object.prototype.hasOwnProperty.call(parent, last)) {
        delete parent[last];
        modified.push(p);
      }
    }
  }
  return modified.sort();
}

function dropAnnsUnder(ann: AnnMap, path: string): void {
  const prefix = path + '.';
  for (const k of [...ann.keys()]) if (k === path || k.startsWith(prefix)) ann.delete(k);
}

export function applyUpdate(oldDoc: Doc, oldAnn: AnnMap | null, u: ParsedUpdate, ctx: UpdateContext): UpdateResult {
  if (u.kind === 'replace') return applyReplacement(oldDoc, u, ctx);
  if (u.kind === 'pipeline') {
    const input = cloneDoc(oldDoc);
    let out = newAggregator(u.pipeline ?? [], { processingMode: ProcessingMode.CLONE_INPUT, variables: ctx.vars }).run([
      input,
    ])[0] as Doc | undefined;
    if (!out) fail(2, 'Update pipeline produced no document');
    // A $replaceRoot / $replaceWith / $project that leaves `_id` out keeps the original (as MongoDB).
    if (oldDoc._id !== undefined && out._id === undefined) out = { _id: oldDoc._id, ...out };
    if (oldDoc._id !== undefined) {
      if (out._id === undefined || canon(out._id) !== canon(oldDoc._id)) {
        fail(
          66,
          `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${showValue(out._id)}`,
        );
      }
    }
    const doc = out._id !== undefined && Object.keys(out)[0] !== '_id' ? { _id: out._id, ...out } : out;
    return { doc, ann: oldAnn, modified: canon(doc) !== canon(oldDoc) };
  }

  const src = u.ops ?? {};
  const ops: Record<string, Doc> = {};
  for (const op of Object.keys(src)) if (op !== '$setOnInsert') ops[op] = { ...src[op] };
  if (ctx.insert && src.$setOnInsert) {
    const set = (ops.$set ??= {});
    for (const f of Object.keys(src.$setOnInsert)) {
      if (f in set) fail(40, `Updating the path '${f}' would create a conflict at '${f}'`);
      set[f] = src.$setOnInsert[f];
    }
  }
  checkIdUpdates(ops, oldDoc);

  // Resolve positional / array-filter paths to concrete ones.
  const resolver = new PathResolver(oldDoc, ctx);
  const finalOps: Record<string, Doc> = {};
  const concrete = new Map<string, Map<string, string[]>>();
  for (const op of Object.keys(ops)) {
    const arg = ops[op];
    const out: Doc = {};
    const m = new Map<string, string[]>();
    for (const f of Object.keys(arg)) {
      const paths = resolver.resolve(f);
      m.set(f, paths);
      for (const p of paths) out[p] = arg[f];
    }
    concrete.set(op, m);
    if (Object.keys(out).length) finalOps[op] = out;
  }
  checkTypes(finalOps, oldDoc);

  let doc: Doc = { ...oldDoc };
  let modifiedPaths: string[] = [];
  if (Object.keys(finalOps).length) {
    const fast = fastUpdate(doc, finalOps);
    if (fast) modifiedPaths = fast;
    else {
      doc = cloneDoc(oldDoc);
      modifiedPaths = mingoUpdate(doc, finalOps as never);
    }
  }
  if (!ctx.insert && doc._id !== oldDoc._id && canon(doc._id) !== canon(oldDoc._id)) {
    fail(66, `Performing an update on the path '_id' would modify the immutable field '_id'`);
  }
  if (!modifiedPaths.length) return { doc: oldDoc, ann: oldAnn, modified: false };

  // Maintain number-type annotations.
  let ann: AnnMap | null = oldAnn ? new Map(oldAnn) : null;
  const updAnns = u.anns;
  if (ann || updAnns.length) {
    ann ??= new Map();
    for (const p of modifiedPaths) dropAnnsUnder(ann, p);
    for (const op of ['$inc', '$mul'] as const) {
      const m = concrete.get(op);
      if (!m) continue;
      for (const [f, paths] of m) {
        const argAnn = updAnns.find((r) => r.segs.length === 2 && r.segs[0] === op && r.segs[1] === f)?.ann;
        for (const p of paths) {
          const prev = oldAnn?.get(p);
          const val = getPath(doc, p);
          if (typeof val !== 'number') continue;
          const prevKind = prev && prev.num === getPath(oldDoc, p) ? prev.kind : undefined;
          let kind: 'long' | 'double' | undefined;
          if (prevKind === 'double' || argAnn?.kind === 'double') kind = 'double';
          else if (prevKind === 'long' || argAnn?.kind === 'long') kind = Number.isInteger(val) ? 'long' : 'double';
          if (!kind) continue;
          const a = makeAnn(kind, val);
          if (a) ann.set(p, a);
        }
      }
    }
    for (const op of ['$set', '$min', '$max'] as const) {
      const m = concrete.get(op);
      if (!m) continue;
      const setOnInsertFields = op === '$set' && ctx.insert && src.$setOnInsert ? Object.keys(src.$setOnInsert) : [];
      for (const [f, paths] of m) {
        const srcOp = setOnInsertFields.includes(f) ? '$setOnInsert' : op;
        for (const r of updAnns) {
          if (r.segs.length < 2 || r.segs[0] !== srcOp || r.segs[1] !== f) continue;
          for (const p of paths) {
            const full = [p, ...r.segs.slice(2)].join('.');
            if (Object.is(getPath(doc, full), r.ann.num)) ann.set(full, r.ann);
          }
        }
      }
    }
    if (ann.size === 0) ann = null;
  }
  return { doc, ann, modified: true };
}

function applyReplacement(oldDoc: Doc, u: ParsedUpdate, ctx: UpdateContext): UpdateResult {
  const repl = u.replacement ?? {};
  if (oldDoc._id !== undefined && repl._id !== undefined && canon(repl._id) !== canon(oldDoc._id)) {
    fail(
      66,
      `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${showValue(repl._id)}`,
    );
  }
  const doc: Doc = {};
  const id = oldDoc._id !== undefined ? oldDoc._id : repl._id;
  if (id !== undefined) doc._id = id;
  for (const k of Object.keys(repl)) if (k !== '_id') doc[k] = cloneDoc(repl[k]);
  let ann = annMapOf(u.anns);
  if (ann && oldDoc._id !== undefined) {
    ann.delete('_id');
    if (!ann.size) ann = null;
  }
  return { doc, ann, modified: ctx.insert || canon(doc) !== canon(oldDoc) };
}

/** The document an upsert starts from: equality conditions of the filter. */
export function seedFromFilter(filter: Doc | null, filterAnns: RawAnn[]): { doc: Doc; ann: AnnMap | null } {
  const doc: Doc = {};
  const ann: AnnMap = new Map();
  const add = (f: Doc): void => {
    for (const k of Object.keys(f)) {
      const v = f[k];
      if (k === '$and') {
        if (Array.isArray(v)) for (const sub of v) if (isPlainObject(sub)) add(sub);
        continue;
      }
      if (k.startsWith('$')) continue;
      let val: unknown;
      let viaEq = false;
      if (isPlainObject(v) && Object.keys(v).some((x) => x.startsWith('$'))) {
        if ('$eq' in v) {
          val = v.$eq;
          viaEq = true;
        } else if (Array.isArray(v.$in) && v.$in.length === 1) val = v.$in[0];
        else continue;
      } else val = v;
      if (val instanceof RegExp) continue;
      setPath(doc, k, cloneDoc(val));
      for (const r of filterAnns) {
        if (r.segs[0] !== k) continue;
        if (r.segs.length === 1 && !viaEq) ann.set(k, r.ann);
        else if (viaEq && r.segs.length === 2 && r.segs[1] === '$eq') ann.set(k, r.ann);
      }
    }
  };
  if (filter) add(filter);
  return { doc, ann: ann.size ? ann : null };
}

/** Put `_id` first, generating an ObjectId when missing. */
export function withIdFirst(doc: Doc): Doc {
  if (doc._id !== undefined && Object.keys(doc)[0] === '_id') return doc;
  const { _id, ...rest } = doc;
  return { _id: _id === undefined ? new ObjectId() : _id, ...rest };
}

export type { Ann };

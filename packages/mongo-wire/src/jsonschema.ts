/**
 * MongoDB's `$jsonSchema` (draft 4 with `bsonType`, MongoDB's keyword set), for queries and
 * collection validators. A keyword MongoDB refuses is refused the same way (code 9); the failure
 * details follow the shape of MongoDB's `errInfo.details.schemaRulesNotSatisfied` (operatorName,
 * specifiedAs, and per keyword: missingProperties, propertiesNotSatisfied, reason...).
 */
import { fail } from './errors';
import { Doc, isPlainObject } from './values';

export type SchemaFailure = Doc;
type Check = (v: unknown) => SchemaFailure[];

const BSON_TYPES = new Set([
  'double',
  'string',
  'object',
  'array',
  'binData',
  'undefined',
  'objectId',
  'bool',
  'date',
  'null',
  'regex',
  'dbPointer',
  'javascript',
  'symbol',
  'javascriptWithScope',
  'int',
  'timestamp',
  'long',
  'decimal',
  'minKey',
  'maxKey',
  'number',
]);
const JSON_TYPES = new Set(['object', 'array', 'number', 'boolean', 'string', 'null']);
const UNSUPPORTED = new Set(['$ref', '$schema', 'default', 'definitions', 'format', 'id']);
const ANNOTATIONS = new Set(['title', 'description']);

/** The BSON type name of a value as this server holds it (plain integers within int32: int). */
export function bsonTypeOf(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 2 ** 31 ? 'int' : 'double';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof Date) return 'date';
  if (v instanceof RegExp) return 'regex';
  if (Array.isArray(v)) return 'array';
  const bt = (v as { _bsontype?: string })._bsontype;
  switch (bt) {
    case 'Double':
      return 'double';
    case 'Int32':
      return 'int';
    case 'Long':
      return 'long';
    case 'Decimal128':
      return 'decimal';
    case 'ObjectId':
      return 'objectId';
    case 'Binary':
      return 'binData';
    case 'Timestamp':
      return 'timestamp';
    case 'BSONRegExp':
      return 'regex';
    case 'Code':
      return 'javascript';
    case 'BSONSymbol':
      return 'symbol';
    case 'MinKey':
      return 'minKey';
    case 'MaxKey':
      return 'maxKey';
    case 'DBRef':
      return 'object';
  }
  return 'object';
}

const NUMERIC = new Set(['int', 'long', 'double', 'decimal']);

function numeric(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  const t = bsonTypeOf(v);
  if (t === 'long') return (v as { toNumber(): number }).toNumber();
  if (t === 'double' || t === 'int') return (v as { valueOf(): number }).valueOf();
  if (t === 'decimal') return Number(String(v));
  return undefined;
}

function jsonTypeOf(v: unknown): string {
  const t = bsonTypeOf(v);
  if (NUMERIC.has(t)) return 'number';
  if (t === 'bool') return 'boolean';
  return t;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined && nb !== undefined) return na === nb;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameValue(a[k], b[k]));
  }
  const ta = (a as { _bsontype?: string } | null)?._bsontype;
  if (ta && ta === (b as { _bsontype?: string } | null)?._bsontype) return String(a) === String(b);
  return false;
}

const typeList = (spec: unknown, keyword: string, names: Set<string>): string[] => {
  const list = Array.isArray(spec) ? spec : [spec];
  if (!list.length) fail(9, `$jsonSchema keyword '${keyword}' must be a non-empty array`);
  for (const t of list)
    if (typeof t !== 'string' || !names.has(t))
      fail(
        9,
        `Unknown type name alias: ${String(t)}${keyword === 'type' && t === 'integer' ? " (use bsonType 'int')" : ''}`,
      );
  return list as string[];
};

const num = (spec: unknown, keyword: string): number => {
  const n = numeric(spec);
  if (n === undefined) fail(9, `$jsonSchema keyword '${keyword}' must be a number`);
  return n;
};

/** Compile a schema into a function listing the rules a value does not satisfy (empty: valid). */
export function compileSchema(schema: unknown): Check {
  if (!isPlainObject(schema)) fail(9, '$jsonSchema must be an object');
  const checks: Check[] = [];
  const s = schema;
  const failure = (keyword: string, extra: Doc = {}): SchemaFailure => ({
    operatorName: keyword,
    specifiedAs: { [keyword]: s[keyword] },
    ...extra,
  });
  for (const keyword of Object.keys(s)) {
    const spec = s[keyword];
    if (UNSUPPORTED.has(keyword)) fail(9, `$jsonSchema keyword '${keyword}' is not currently supported`);
    if (ANNOTATIONS.has(keyword)) continue;
    switch (keyword) {
      case 'bsonType': {
        const types = typeList(spec, keyword, BSON_TYPES);
        checks.push((v) => {
          const t = bsonTypeOf(v);
          const ok = types.some((x) => x === t || (x === 'number' && NUMERIC.has(t)));
          return ok ? [] : [failure(keyword, { reason: 'type did not match', consideredValue: v, consideredType: t })];
        });
        break;
      }
      case 'type': {
        const types = typeList(spec, keyword, JSON_TYPES);
        checks.push((v) =>
          types.includes(jsonTypeOf(v))
            ? []
            : [failure(keyword, { reason: 'type did not match', consideredValue: v, consideredType: jsonTypeOf(v) })],
        );
        break;
      }
      case 'enum': {
        if (!Array.isArray(spec) || !spec.length) fail(9, "$jsonSchema keyword 'enum' must be a non-empty array");
        checks.push((v) =>
          spec.some((e) => sameValue(v, e))
            ? []
            : [failure(keyword, { reason: 'value was not found in enum', consideredValue: v })],
        );
        break;
      }
      case 'minimum':
      case 'maximum': {
        const bound = num(spec, keyword);
        const exclusive = s[keyword === 'minimum' ? 'exclusiveMinimum' : 'exclusiveMaximum'] === true;
        checks.push((v) => {
          const n = numeric(v);
          if (n === undefined) return [];
          const ok = keyword === 'minimum' ? (exclusive ? n > bound : n >= bound) : exclusive ? n < bound : n <= bound;
          return ok ? [] : [failure(keyword, { reason: 'comparison failed', consideredValue: v })];
        });
        break;
      }
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        if (typeof spec !== 'boolean') fail(9, `$jsonSchema keyword '${keyword}' must be a boolean`);
        if (!(keyword.replace('exclusiveM', 'm') in s))
          fail(
            9,
            `$jsonSchema keyword '${keyword.replace('exclusiveM', 'm')}' must be present if ${keyword} is present`,
          );
        break;
      case 'multipleOf': {
        const d = num(spec, keyword);
        if (d <= 0) fail(9, "$jsonSchema keyword 'multipleOf' must have a positive value");
        checks.push((v) => {
          const n = numeric(v);
          return n === undefined || Number.isInteger(n / d)
            ? []
            : [
                failure(keyword, {
                  reason: 'considered value is not a multiple of the specified value',
                  consideredValue: v,
                }),
              ];
        });
        break;
      }
      case 'minLength':
      case 'maxLength': {
        const bound = num(spec, keyword);
        checks.push((v) => {
          if (typeof v !== 'string') return [];
          const n = [...v].length;
          const ok = keyword === 'minLength' ? n >= bound : n <= bound;
          return ok
            ? []
            : [failure(keyword, { reason: 'specified string length was not satisfied', consideredValue: v })];
        });
        break;
      }
      case 'pattern': {
        if (typeof spec !== 'string') fail(9, "$jsonSchema keyword 'pattern' must be a string");
        const re = new RegExp(spec, 'u');
        checks.push((v) =>
          typeof v !== 'string' || re.test(v)
            ? []
            : [failure(keyword, { reason: 'regular expression did not match', consideredValue: v })],
        );
        break;
      }
      case 'minItems':
      case 'maxItems': {
        const bound = num(spec, keyword);
        checks.push((v) => {
          if (!Array.isArray(v)) return [];
          const ok = keyword === 'minItems' ? v.length >= bound : v.length <= bound;
          return ok ? [] : [failure(keyword, { reason: 'array did not match specified length', consideredValue: v })];
        });
        break;
      }
      case 'uniqueItems':
        if (typeof spec !== 'boolean') fail(9, "$jsonSchema keyword 'uniqueItems' must be a boolean");
        if (spec)
          checks.push((v) => {
            if (!Array.isArray(v)) return [];
            const dup = v.some((x, i) => v.findIndex((y) => sameValue(x, y)) !== i);
            return dup ? [failure(keyword, { reason: 'found a duplicate item', consideredValue: v })] : [];
          });
        break;
      case 'items': {
        if (Array.isArray(spec)) {
          const each = spec.map((x) => compileSchema(x));
          const additional = s.additionalItems;
          const rest = isPlainObject(additional) ? compileSchema(additional) : null;
          checks.push((v) => {
            if (!Array.isArray(v)) return [];
            const out: SchemaFailure[] = [];
            v.forEach((x, i) => {
              if (i < each.length) {
                const f = each[i](x);
                if (f.length)
                  out.push(
                    failure(keyword, {
                      reason: 'At least one item did not match the sub-schema',
                      itemIndex: i,
                      details: f,
                    }),
                  );
              } else if (additional === false)
                out.push(failure('additionalItems', { reason: 'found additional items', itemIndex: i }));
              else if (rest) {
                const f = rest(x);
                if (f.length) out.push(failure('additionalItems', { itemIndex: i, details: f }));
              }
            });
            return out;
          });
        } else {
          const each = compileSchema(spec);
          checks.push((v) => {
            if (!Array.isArray(v)) return [];
            for (let i = 0; i < v.length; i++) {
              const f = each(v[i]);
              if (f.length)
                return [
                  failure(keyword, {
                    reason: 'At least one item did not match the sub-schema',
                    itemIndex: i,
                    details: f,
                  }),
                ];
            }
            return [];
          });
        }
        break;
      }
      case 'additionalItems':
        if (typeof spec !== 'boolean' && !isPlainObject(spec))
          fail(9, "$jsonSchema keyword 'additionalItems' must be either an object or a boolean");
        break;
      case 'minProperties':
      case 'maxProperties': {
        const bound = num(spec, keyword);
        checks.push((v) => {
          if (bsonTypeOf(v) !== 'object') return [];
          const n = Object.keys(v as Doc).length;
          const ok = keyword === 'minProperties' ? n >= bound : n <= bound;
          return ok
            ? []
            : [failure(keyword, { reason: 'specified number of properties was not satisfied', numberOfProperties: n })];
        });
        break;
      }
      case 'required': {
        if (!Array.isArray(spec) || !spec.every((x) => typeof x === 'string'))
          fail(9, "$jsonSchema keyword 'required' must be an array of strings");
        checks.push((v) => {
          if (bsonTypeOf(v) !== 'object') return [];
          const missing = (spec as string[]).filter((k) => (v as Doc)[k] === undefined);
          return missing.length ? [failure(keyword, { missingProperties: missing })] : [];
        });
        break;
      }
      case 'properties':
      case 'patternProperties':
      case 'additionalProperties':
        break;
      case 'dependencies': {
        if (!isPlainObject(spec)) fail(9, "$jsonSchema keyword 'dependencies' must be an object");
        const deps = Object.entries(spec).map(([k, d]) => [k, Array.isArray(d) ? d : compileSchema(d)] as const);
        checks.push((v) => {
          if (bsonTypeOf(v) !== 'object') return [];
          const o = v as Doc;
          const out: SchemaFailure[] = [];
          for (const [k, d] of deps) {
            if (o[k] === undefined) continue;
            if (Array.isArray(d)) {
              const missing = d.filter((x) => o[x as string] === undefined);
              if (missing.length) out.push(failure(keyword, { conditionalProperty: k, missingProperties: missing }));
            } else {
              const f = d(v);
              if (f.length) out.push(failure(keyword, { conditionalProperty: k, details: f }));
            }
          }
          return out;
        });
        break;
      }
      case 'allOf':
      case 'anyOf':
      case 'oneOf': {
        if (!Array.isArray(spec) || !spec.length) fail(9, `$jsonSchema keyword '${keyword}' must be a non-empty array`);
        const subs = spec.map((x) => compileSchema(x));
        checks.push((v) => {
          const results = subs.map((c) => c(v));
          const passing = results.filter((r) => r.length === 0).length;
          const ok = keyword === 'allOf' ? passing === subs.length : keyword === 'anyOf' ? passing > 0 : passing === 1;
          return ok ? [] : [failure(keyword, { details: results.filter((r) => r.length).map((r) => r) })];
        });
        break;
      }
      case 'not': {
        const sub = compileSchema(spec);
        checks.push((v) => (sub(v).length === 0 ? [failure(keyword, { reason: 'child expression matched' })] : []));
        break;
      }
      case 'encrypt':
      case 'encryptMetadata':
        fail(238, `not supported by the embedded server: $jsonSchema keyword '${keyword}'`);
      // falls through (fail never returns)
      default:
        fail(9, `Unknown $jsonSchema keyword: ${keyword}`);
    }
  }
  // Object keywords, together (additionalProperties depends on properties / patternProperties).
  const props = s.properties;
  const patterns = s.patternProperties;
  const additional = s.additionalProperties;
  if (props !== undefined && !isPlainObject(props)) fail(9, "$jsonSchema keyword 'properties' must be an object");
  if (patterns !== undefined && !isPlainObject(patterns))
    fail(9, "$jsonSchema keyword 'patternProperties' must be an object");
  if (additional !== undefined && typeof additional !== 'boolean' && !isPlainObject(additional))
    fail(9, "$jsonSchema keyword 'additionalProperties' must be either an object or a boolean");
  if (props || patterns || additional !== undefined) {
    const propChecks = Object.entries(props ?? {}).map(([k, x]) => [k, compileSchema(x)] as const);
    const patternChecks = Object.entries(patterns ?? {}).map(
      ([p, x]) => [new RegExp(p, 'u'), compileSchema(x)] as const,
    );
    const rest = isPlainObject(additional) ? compileSchema(additional) : null;
    checks.push((v) => {
      if (bsonTypeOf(v) !== 'object') return [];
      const o = v as Doc;
      const out: SchemaFailure[] = [];
      const notSatisfied: Doc[] = [];
      for (const [k, c] of propChecks) {
        if (o[k] === undefined) continue;
        const f = c(o[k]);
        if (f.length) notSatisfied.push({ propertyName: k, details: f });
      }
      if (notSatisfied.length) out.push({ operatorName: 'properties', propertiesNotSatisfied: notSatisfied });
      const extra: string[] = [];
      for (const k of Object.keys(o)) {
        if (props && k in props) continue;
        const matching = patternChecks.filter(([re]) => re.test(k));
        for (const [re, c] of matching) {
          const f = c(o[k]);
          if (f.length)
            out.push({ operatorName: 'patternProperties', regexMatched: re.source, propertyName: k, details: f });
        }
        if (matching.length) continue;
        if (additional === false) extra.push(k);
        else if (rest) {
          const f = rest(o[k]);
          if (f.length) out.push({ operatorName: 'additionalProperties', propertyName: k, details: f });
        }
      }
      if (extra.length)
        out.push({
          operatorName: 'additionalProperties',
          specifiedAs: { additionalProperties: false },
          additionalProperties: extra,
        });
      return out;
    });
  }
  return (v) => {
    const out: SchemaFailure[] = [];
    for (const c of checks) out.push(...c(v));
    return out;
  };
}

/** mingo's `jsonSchemaValidator` option: `$jsonSchema` in queries and `$match`. */
export function jsonSchemaValidator(schema: Doc): (doc: unknown) => boolean {
  const check = compileSchema(schema);
  return (doc) => check(doc).length === 0;
}

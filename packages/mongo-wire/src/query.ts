/**
 * mingo queries and pipelines as this server builds them: `$jsonSchema` through its own validator,
 * command-level variables (`let`), the query-level `$comment` (no effect) removed, and no
 * server-side JavaScript (`$where`, `$function`, `$accumulator`: refused, see errors.ts).
 */
import { Aggregator, ProcessingMode, Query } from 'mingo';
import { jsonSchemaValidator } from './jsonschema';
import { fail } from './errors';
import { checkExpression } from './surface';
import { Doc, isPlainObject } from './values';
import { ServerVersion } from './versions';

export function newQuery(filter: Doc, variables?: Doc | null): Query {
  let f = filter;
  if ('$comment' in f) {
    f = { ...f };
    delete f.$comment;
  }
  return new Query(
    f,
    variables
      ? { jsonSchemaValidator, scriptEnabled: false, variables }
      : { jsonSchemaValidator, scriptEnabled: false },
  );
}

export function newAggregator(
  pipeline: Doc[],
  options: {
    processingMode?: ProcessingMode;
    collectionResolver?: (name: string) => Doc[];
    variables?: Doc | null;
  } = {},
): Aggregator {
  const { variables, ...rest } = options;
  return new Aggregator(pipeline, {
    ...rest,
    jsonSchemaValidator,
    scriptEnabled: false,
    ...(variables ? { variables } : {}),
  });
}

/**
 * Command-level `let`: an object of expressions, evaluated once (constants stay as they are;
 * `$$NOW` and the like work). Names must start with a lowercase letter (MongoDB's rule); the
 * expressions' operators are checked against the announced release `v`.
 */
export function evaluateLet(letDoc: unknown, where: string, v: ServerVersion): Doc | null {
  if (letDoc === undefined || letDoc === null) return null;
  if (!isPlainObject(letDoc)) fail(14, `BSON field '${where}.let' is the wrong type, expected type 'object'`);
  checkExpression(letDoc, v);
  const names = Object.keys(letDoc);
  for (const n of names)
    if (!/^[a-z\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*$/.test(n))
      fail(16867, `'${n}' starts with an invalid character for a user variable name`);
  if (!names.length) return null;
  return newAggregator([{ $replaceWith: letDoc }]).run([{}])[0] as Doc;
}

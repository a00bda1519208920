import { REFUSED_EXPRESSIONS, REFUSED_QUERY_OPERATORS } from './operators';

/** Server-side error carrying a MongoDB error code; turned into `{ok:0, errmsg, code, codeName}`. */
export const CODE_NAMES: Record<number, string> = {
  1: 'InternalError',
  2: 'BadValue',
  9: 'FailedToParse',
  14: 'TypeMismatch',
  26: 'NamespaceNotFound',
  27: 'IndexNotFound',
  28: 'PathNotViable',
  40: 'ConflictingUpdateOperators',
  43: 'CursorNotFound',
  48: 'NamespaceExists',
  59: 'CommandNotFound',
  66: 'ImmutableField',
  67: 'CannotCreateIndex',
  72: 'InvalidOptions',
  73: 'InvalidNamespace',
  76: 'NoReplicationEnabled',
  85: 'IndexOptionsConflict',
  86: 'IndexKeySpecsConflict',
  53: 'InvalidIdField',
  115: 'CommandNotSupported',
  121: 'DocumentValidationFailure',
  168: 'InvalidPipelineOperator',
  197: 'InvalidIndexSpecificationOption',
  238: 'NotImplemented',
  11000: 'DuplicateKey',
  // Replica sets, sessions, retryable writes (replica-set.ts; failCommand error codes).
  13: 'Unauthorized',
  20: 'IllegalOperation',
  91: 'ShutdownInProgress',
  95: 'NotSecondary',
  189: 'PrimarySteppedDown',
  225: 'TransactionTooOld',
  262: 'ExceededTimeLimit',
  10107: 'NotWritablePrimary',
  11600: 'InterruptedAtShutdown',
  11602: 'InterruptedDueToReplStateChange',
  13435: 'NotPrimaryNoSecondaryOk',
  13436: 'NotPrimaryOrSecondary',
  50768: 'NotARetryableWriteCommand',
  40324: 'Location40324',
  31254: 'Location31254',
  // Blocking sorts over their memory limit (versions.ts): up to 4.2 / from 4.4.
  96: 'OperationFailed',
  292: 'QueryExceededMemoryLimitNoDiskUseAllowed',
};

export class MongoWireError extends Error {
  readonly code: number;
  readonly codeName: string;
  /** Extra fields merged into the error reply / write error (e.g. keyPattern, keyValue). */
  readonly extra: Record<string, unknown>;

  constructor(code: number, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'MongoWireError';
    this.code = code;
    this.codeName = CODE_NAMES[code] ?? 'Location' + code;
    this.extra = extra;
  }
}

export function fail(code: number, message: string, extra?: Record<string, unknown>): never {
  throw new MongoWireError(code, message, extra);
}

/** Map anything thrown while executing a command to a MongoWireError. */
export function toWireError(err: unknown): MongoWireError {
  if (err instanceof MongoWireError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/would create a conflict/i.test(message)) return new MongoWireError(40, message);
  const queryOp = /unknown (query |top level )?operator:? (\$\w+)/i.exec(message);
  if (queryOp) {
    if (REFUSED_QUERY_OPERATORS.has(queryOp[2]))
      return new MongoWireError(238, `not supported by the embedded server: query operator ${queryOp[2]}`);
    return new MongoWireError(2, `unknown ${queryOp[1] === 'top level ' ? 'top level ' : ''}operator: ${queryOp[2]}`);
  }
  const script = /^(\$where|\$function|\$accumulator)(?: operator)? requires 'scriptEnabled'/.exec(message);
  if (script)
    return new MongoWireError(238, `not supported by the embedded server: ${script[1]} (server-side JavaScript)`);
  const stage = /(?:unregistered|unknown) pipeline operator:? '?(\$\w+)/i.exec(message);
  if (stage) return new MongoWireError(40324, `Unrecognized pipeline stage name: '${stage[1]}'`);
  const expr =
    /(?:accumulator|expression operator) '(\$\w+)' is not registered|'(\$\w+)' is not a valid window operator/.exec(
      message,
    );
  if (expr) {
    const name = expr[1] ?? expr[2];
    if (REFUSED_EXPRESSIONS.has(name))
      return new MongoWireError(238, `not supported by the embedded server: expression operator ${name}`);
    return new MongoWireError(168, `Unrecognized expression '${name}'`);
  }
  // MongoDB: Location17276 "Use of undefined variable: x" (aggregation expressions, $expr, let).
  if (/^Use of undefined variable: /.test(message)) return new MongoWireError(17276, message);
  if (err instanceof Error && err.constructor && err.constructor.name === 'MingoError') {
    return new MongoWireError(2, message);
  }
  return new MongoWireError(1, message);
}

export function errorReply(err: MongoWireError): Record<string, unknown> {
  return { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName, ...err.extra };
}

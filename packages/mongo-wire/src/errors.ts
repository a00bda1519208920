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
  11000: 'DuplicateKey',
  40324: 'Location40324',
  31254: 'Location31254',
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
  if (/unknown (query |top level )?operator/i.test(message)) return new MongoWireError(2, message);
  const stage = /(?:unregistered|unknown) pipeline operator:? '?(\$\w+)/i.exec(message);
  if (stage) return new MongoWireError(40324, `Unrecognized pipeline stage name: '${stage[1]}'`);
  if (err instanceof Error && err.constructor && err.constructor.name === 'MingoError') {
    return new MongoWireError(2, message);
  }
  return new MongoWireError(1, message);
}

export function errorReply(err: MongoWireError): Record<string, unknown> {
  return { ok: 0, errmsg: err.message, code: err.code, codeName: err.codeName, ...err.extra };
}

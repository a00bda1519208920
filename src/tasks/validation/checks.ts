import { ValidateBy, ValidationOptions } from 'class-validator';

/** A property check whose message may depend on the value (one message per property). */
export function Check(
  name: string,
  test: (value: unknown) => boolean,
  message: (value: unknown, property: string) => string,
  options?: ValidationOptions,
): PropertyDecorator {
  return ValidateBy(
    {
      name,
      validator: {
        validate: (value: unknown) => test(value),
        defaultMessage: (args) => message(args?.value, args?.property ?? name),
      },
    },
    options,
  );
}

export const HEX_ID = /^[0-9a-f]{24}$/i;
const SHOWN_OFFENDERS = 5;

export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  // JSON has no Infinity or NaN (a body's `1e400` parses as Infinity): JSON.stringify would say null.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

/** `tids`: a non-empty array of 24-hex transaction ids; the message names the bad entries. */
export function IsTidList(): PropertyDecorator {
  return Check(
    'isTidList',
    (value) =>
      Array.isArray(value) && value.length > 0 && value.every((tid) => typeof tid === 'string' && HEX_ID.test(tid)),
    (value, property) => {
      if (!Array.isArray(value)) return `${property} must be an array of transaction ids (got ${describeValue(value)})`;
      if (value.length === 0) return `${property} must contain at least one transaction id`;
      const offenders: string[] = [];
      let count = 0;
      value.forEach((tid, index) => {
        if (typeof tid === 'string' && HEX_ID.test(tid)) return;
        count++;
        if (offenders.length < SHOWN_OFFENDERS) offenders.push(`${property}[${index}] = ${describeValue(tid)}`);
      });
      const more = count > offenders.length ? `, and ${count - offenders.length} more` : '';
      return (
        `${property} must contain only 24-character hex transaction ids: ` +
        `${count} invalid entr${count === 1 ? 'y' : 'ies'} (${offenders.join(', ')}${more})`
      );
    },
  );
}

/** OpenHIM's own text for a batch size <= 0 is kept; anything else that is not a positive integer is named. */
export function IsBatchSize(): PropertyDecorator {
  return Check(
    'isBatchSize',
    (value) => Number.isInteger(value) && (value as number) >= 1,
    (value, property) =>
      typeof value === 'number' && value <= 0
        ? 'Invalid batch size specified'
        : `${property} must be a positive integer (got ${describeValue(value)})`,
  );
}

export function IsStrictBoolean(): PropertyDecorator {
  return Check(
    'isStrictBoolean',
    (value) => typeof value === 'boolean',
    (value, property) => `${property} must be true or false (got ${describeValue(value)})`,
  );
}

export function IsPositiveNumber(): PropertyDecorator {
  return Check(
    'isPositiveNumber',
    (value) => typeof value === 'number' && Number.isFinite(value) && value > 0,
    (value, property) => `${property} must be a positive number (got ${describeValue(value)})`,
  );
}

/** Numeric strings (`"2"`) become numbers, as mongoose casts them in OpenHIM. */
export const toNumberIfNumeric = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;

/** A date and time with a time zone (a zone-less time would depend on the server's). */
export const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/i;

/** A real calendar date and clock time (Date.parse takes 2030-02-31 as March 3). */
export function isIsoDateTime(value: unknown): value is string {
  const match = typeof value === 'string' ? ISO_DATE_TIME.exec(value) : null;
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match
    .slice(1)
    .map((part) => Number(part ?? 0));
  const date = new Date(Date.UTC(year, month - 1, day));
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60 &&
    offsetHours < 24 &&
    offsetMinutes < 60
  );
}

export function IsIsoDateTime(): PropertyDecorator {
  return Check(
    'isIsoDateTime',
    isIsoDateTime,
    (value, property) =>
      `${property} must be an ISO 8601 date and time with a time zone, like 2026-12-03T22:00:00Z (got ${describeValue(value)})`,
  );
}

export function IsNonNegativeInteger(): PropertyDecorator {
  return Check(
    'isNonNegativeInteger',
    (value) => Number.isSafeInteger(value) && (value as number) >= 0,
    (value, property) => `${property} must be a whole number, 0 or more (got ${describeValue(value)})`,
  );
}

/** The configured ceiling of `batchSize` (MAX_BATCH_SIZE), as a limit problem of a body. */
export function batchSizeProblems(batchSize: number | undefined, config: { MAX_BATCH_SIZE: number }): string[] {
  return batchSize !== undefined && batchSize > config.MAX_BATCH_SIZE
    ? [`batchSize must be at most ${config.MAX_BATCH_SIZE} (got ${batchSize})`]
    : [];
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

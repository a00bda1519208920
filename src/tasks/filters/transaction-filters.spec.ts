import { HttpException } from '@nestjs/common';
import { Types } from 'mongoose';
import { isInvalidRegexError, MAX_REGEX_LENGTH, toTransactionQuery } from './transaction-filters';

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(HttpException);
    expect((error as HttpException).getStatus()).toBe(400);
    return (error as HttpException).getResponse() as string;
  }
  throw new Error('expected a 400');
};

describe('toTransactionQuery (bulk rerun filters)', () => {
  it('builds the query from the allowed filters', () => {
    const query = toTransactionQuery({
      channelID: '5bb777777bbb66cc5d4444aa',
      clientID: '5bb777777bbb66cc5d4444bb',
      status: 'Failed',
      'request.timestamp': '{"$gte":"2024-05-01T00:00:00Z","$lt":"2024-05-02T00:00:00Z"}',
      'request.method': 'post',
      'request.path': '/fhir/Patient',
      'request.querystring': 'id=\\d+',
      'request.host': 'localhost',
      'request.port': 5001,
      'response.status': '5xx',
    });
    expect(query).toEqual({
      channelID: new Types.ObjectId('5bb777777bbb66cc5d4444aa'),
      clientID: new Types.ObjectId('5bb777777bbb66cc5d4444bb'),
      status: 'Failed',
      'request.timestamp': { $gte: new Date('2024-05-01T00:00:00Z'), $lt: new Date('2024-05-02T00:00:00Z') },
      'request.method': 'POST',
      'request.path': /\/fhir\/Patient/i,
      'request.querystring': /id=\d+/i,
      'request.host': 'localhost',
      'request.port': '5001',
      'response.status': { $gte: 500, $lt: 600 },
    });
    expect(toTransactionQuery({ 'response.status': 404 })).toEqual({ 'response.status': 404 });
    expect(toTransactionQuery({ 'response.status': '404' })).toEqual({ 'response.status': 404 });
    expect(toTransactionQuery({})).toEqual({});
    expect(toTransactionQuery({ status: '', 'request.path': null })).toEqual({});
  });

  it('accepts the filters as a JSON string, as the console sends them', () => {
    const filters = {
      status: 'Failed',
      'request.timestamp': JSON.stringify({ $gte: '2024-05-01T00:00:00.000Z', $lte: '2024-05-01T23:59:59.999Z' }),
      childIDs: JSON.stringify({ $exists: true, $ne: [] }),
    };
    expect(toTransactionQuery(JSON.stringify(filters))).toEqual({
      status: 'Failed',
      'request.timestamp': { $gte: new Date('2024-05-01T00:00:00Z'), $lte: new Date('2024-05-01T23:59:59.999Z') },
      childIDs: { $exists: true, $ne: [] },
    });
    expect(toTransactionQuery('{}')).toEqual({});
  });

  it('treats request.path and request.querystring as case-insensitive regular expressions, as OpenHIM', () => {
    const path = toTransactionQuery({ 'request.path': '^/fhir/patient/\\d+$' })['request.path'] as RegExp;
    expect(path.test('/FHIR/Patient/12')).toBe(true);
    expect(path.test('/fhir/Patient/12/_history')).toBe(false);
    // Without metacharacters: the text anywhere in the path, as before.
    const literal = toTransactionQuery({ 'request.path': 'Patient' })['request.path'] as RegExp;
    expect(literal.test('/fhir/patient/1')).toBe(true);
    expect(literal.test('/fhir/Observation')).toBe(false);
  });

  it('childIDs: only the allowed operators and operands', () => {
    expect(toTransactionQuery({ childIDs: '{"$eq":[]}' })).toEqual({ childIDs: { $eq: [] } });
    expect(toTransactionQuery({ childIDs: { $exists: false } })).toEqual({ childIDs: { $exists: false } });
    expect(toTransactionQuery({ childIDs: { $size: 2 } })).toEqual({ childIDs: { $size: 2 } });
    expect(toTransactionQuery({ childIDs: '{"$not":{"$size":0}}' })).toEqual({ childIDs: { $not: { $size: 0 } } });
    expect(message(() => toTransactionQuery({ childIDs: '{"$where":"1"}' }))).toBe(
      'Unknown operator in childIDs: "$where" (allowed: $exists, $ne, $eq, $size, $not)',
    );
    expect(message(() => toTransactionQuery({ childIDs: { $ne: ['5bb777777bbb66cc5d4444aa'] } }))).toBe(
      'childIDs.$ne may only be [] (got ["5bb777777bbb66cc5d4444aa"])',
    );
    expect(message(() => toTransactionQuery({ childIDs: { $exists: 'yes' } }))).toBe(
      'childIDs.$exists must be true or false (got "yes")',
    );
    expect(message(() => toTransactionQuery({ childIDs: { $not: { $regex: '.' } } }))).toBe(
      'childIDs.$not may only be {"$size": n} (got {"$regex":"."})',
    );
    expect(message(() => toTransactionQuery({ childIDs: { $size: -1 } }))).toMatch(/^childIDs.\$size must be a whole/);
    expect(message(() => toTransactionQuery({ childIDs: 'yes' }))).toMatch(/^childIDs must be a JSON object like /);
    expect(message(() => toTransactionQuery({ childIDs: {} }))).toMatch(/^childIDs must be a JSON object like /);
  });

  it('properties: one key, a plain value (null: the property exists)', () => {
    expect(toTransactionQuery({ properties: { 'order-type': 'lab' } })).toEqual({ 'properties.order-type': 'lab' });
    expect(toTransactionQuery({ properties: { flagged: null } })).toEqual({ 'properties.flagged': { $exists: true } });
    expect(toTransactionQuery({ properties: { retries: 3 } })).toEqual({ 'properties.retries': 3 });
    expect(message(() => toTransactionQuery({ properties: { a: { $ne: 1 } } }))).toBe(
      'properties.a must be a string, a number, true/false or null (got {"$ne":1})',
    );
    expect(message(() => toTransactionQuery({ properties: { $where: 'x' } }))).toBe(
      'properties: "$where" is not a property name',
    );
    expect(message(() => toTransactionQuery({ properties: { 'a.$gt': 'x' } }))).toBe(
      'properties: "a.$gt" is not a property name',
    );
    expect(message(() => toTransactionQuery({ properties: { a: 1, b: 2 } }))).toMatch(
      /^properties must name exactly one property/,
    );
    expect(message(() => toTransactionQuery({ properties: 'a' }))).toMatch(/^properties must be an object/);
  });

  it('routes.* and orchestrations.*', () => {
    expect(
      toTransactionQuery({
        'routes.request.path': '/fhir',
        'routes.response.status': '4xx',
        'routes.name': 'FHIR server',
        'orchestrations.request.path': 'lookup',
        'orchestrations.response.status': 500,
        'orchestrations.name': 'Lookup',
        'orchestrations.request.querystring': 'a=1',
      }),
    ).toEqual({
      'routes.request.path': /\/fhir/i,
      'routes.response.status': { $gte: 400, $lt: 500 },
      'routes.name': 'FHIR server',
      'orchestrations.request.path': /lookup/i,
      'orchestrations.response.status': 500,
      'orchestrations.name': 'Lookup',
      'orchestrations.request.querystring': /a=1/i,
    });
    expect(message(() => toTransactionQuery({ 'routes.request.body': 'x' }))).toMatch(
      /^Unknown transaction filter "routes.request.body" \(allowed: /,
    );
    expect(message(() => toTransactionQuery({ 'routes.name': { $regex: '.' } }))).toBe(
      'routes.name must be a string (got {"$regex":"."})',
    );
  });

  it('refuses regular expressions that do not compile or are too long', () => {
    expect(message(() => toTransactionQuery({ 'request.path': '(' }))).toMatch(
      /^request.path is not a valid regular expression: Invalid regular expression/,
    );
    expect(message(() => toTransactionQuery({ 'orchestrations.request.path': '[z-a]' }))).toMatch(
      /^orchestrations.request.path is not a valid regular expression: /,
    );
    expect(toTransactionQuery({ 'request.path': 'a'.repeat(MAX_REGEX_LENGTH) })['request.path']).toBeInstanceOf(RegExp);
    expect(message(() => toTransactionQuery({ 'request.path': 'a'.repeat(MAX_REGEX_LENGTH + 1) }))).toBe(
      `request.path must be at most ${MAX_REGEX_LENGTH} characters (got ${MAX_REGEX_LENGTH + 1})`,
    );
    expect(message(() => toTransactionQuery({ 'request.querystring': { $regex: '.*' } }))).toBe(
      'request.querystring must be a regular expression as a string (got {"$regex":".*"})',
    );
  });

  it('refuses a repeated group that itself repeats (catastrophic backtracking), nothing else', () => {
    for (const pattern of ['(a+)+$', '(x*y)*', '^(/[a-z]+)+/$', '((ab)*c)+', '(a{1,5}){2,}', '(?:a+)*']) {
      expect(message(() => toTransactionQuery({ 'request.path': pattern }))).toBe(
        'request.path must not repeat a group that itself repeats, like (a+)+ (matching such an expression can take exponential time)',
      );
    }
    for (const pattern of [
      '^/fhir/Patient/.*',
      '(a+)?',
      '(ab)+',
      '(a|b)*c+',
      '[(a+)]+',
      '\\(a+\\)+',
      '/fhir/(Patient|Observation)/\\d+',
      'x{2}',
      '(a){2}b+',
    ]) {
      expect(toTransactionQuery({ 'request.path': pattern })['request.path']).toBeInstanceOf(RegExp);
    }
  });

  it('recognises MongoDB refusing a regular expression', () => {
    const server = Object.assign(new Error('Regular expression is invalid: missing terminating ]'), { code: 51091 });
    expect(isInvalidRegexError(server)).toBe(true);
    expect(isInvalidRegexError(new Error('connection reset'))).toBe(false);
  });

  it('refuses unknown keys, operators and bad values', () => {
    const bad = (filters: unknown) => () => toTransactionQuery(filters);
    expect(message(bad({ 'request.body': 'x' }))).toMatch(
      /^Unknown transaction filter "request.body" \(allowed: channelID, clientID, status, .* childIDs, properties, /,
    );
    expect(bad({ $where: '1' })).toThrow(HttpException);
    expect(bad({ channelID: { $ne: null } })).toThrow(/channelID must be a 24-character hex id/);
    expect(bad({ status: 'Bogus' })).toThrow(/status must be one of/);
    expect(bad({ 'response.status': '6xx' })).toThrow(/response.status must be a status code/);
    expect(bad({ 'request.method': 'GET /' })).toThrow(/request.method must be an HTTP method/);
    expect(bad({ 'request.port': 'http' })).toThrow('request.port must be a port number (got "http")');
    expect(bad({ 'request.host': ['a'] })).toThrow('request.host must be a string (got ["a"])');
    expect(message(bad([]))).toBe('filters must be a JSON object, or a JSON string of one');
    expect(message(bad('[]'))).toBe('filters must be a JSON object, or a JSON string of one');
    expect(message(bad('{"status":'))).toMatch(/^filters must be a JSON object, or a JSON string of one: /);
    expect(message(bad('{"__proto__":{"x":1}}'))).toBe(
      'Filter "__proto__" is not allowed (__proto__, constructor and prototype are reserved)',
    );
  });
});

import fc from 'fast-check';
import { compare } from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import {
  applyTransform,
  editsByTid,
  InvalidTransformError,
  isJsonContentType,
  ItemEdit,
  RequestParts,
  TransformResult,
  TransformSpec,
  validateEdits,
  validateTransform,
} from './request-transform';

const TID = '5bb777777bbb66cc5d4444ee';
const OTHER_TID = '5bb777777bbb66cc5d4444ef';

/** The message a validator throws (and that it throws an InvalidTransformError). */
const problem = (validate: () => unknown): string => {
  try {
    validate();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTransformError);
    return (error as Error).message;
  }
  throw new Error('expected an InvalidTransformError');
};
const transformProblem = (raw: unknown) => problem(() => validateTransform(raw));
const editsProblem = (raw: unknown, max?: number) => problem(() => validateEdits(raw, max));

const applied = (result: TransformResult) => {
  if (!result.ok) throw new Error(`expected the transform to apply, it failed: ${result.error}`);
  return result;
};
const failure = (result: TransformResult) => {
  if (result.ok) throw new Error('expected the transform to fail');
  return result.error;
};

const jsonRequest = (body: unknown, contentType = 'application/fhir+json'): RequestParts => ({
  method: 'POST',
  path: '/fhir/Patient',
  headers: { 'Content-Type': contentType, parentID: TID, taskID: OTHER_TID },
  body: JSON.stringify(body),
});

describe('applyTransform: examples', () => {
  const patient = {
    resourceType: 'Patient',
    id: 'p1',
    gender: 'M',
    birthDate: '1980-01-01',
    name: [{ family: 'Doe', given: ['John'] }],
    extension: [{ url: 'http://example.org/broken-mapping', valueString: 'x' }],
  };

  it('fixes a FHIR Patient with a 3-operation JSON Patch', () => {
    const spec = validateTransform({
      body: [
        { op: 'test', path: '/resourceType', value: 'Patient' },
        { op: 'replace', path: '/gender', value: 'male' },
        { op: 'remove', path: '/extension' },
      ],
    });
    const request = jsonRequest(patient);
    const result = applied(applyTransform(spec, undefined, request));
    expect(result.changed).toBe(true);
    expect(JSON.parse(result.request.body!)).toEqual({
      resourceType: 'Patient',
      id: 'p1',
      gender: 'male',
      birthDate: '1980-01-01',
      name: [{ family: 'Doe', given: ['John'] }],
    });
    expect(result.request).toMatchObject({ method: 'POST', path: '/fhir/Patient', headers: request.headers });
    expect(request.body).toBe(JSON.stringify(patient));
  });

  it('fails, naming the operation, when the patch does not apply, and sends nothing patched', () => {
    const spec = validateTransform({
      body: [
        { op: 'replace', path: '/gender', value: 'male' },
        { op: 'add', path: '/active', value: true },
        { op: 'test', path: '/resourceType', value: 'Patient' },
      ],
    });
    expect(failure(applyTransform(spec, undefined, jsonRequest({ ...patient, resourceType: 'Observation' })))).toBe(
      'transform.body[2] (test /resourceType) failed: Test operation failed',
    );
    expect(failure(applyTransform(spec, undefined, jsonRequest({ resourceType: 'Patient' })))).toBe(
      'transform.body[0] (replace /gender) failed: Cannot perform the operation at a path that does not exist',
    );
    const missing = validateTransform({ body: [{ op: 'add', path: '/contact/0/name', value: {} }] });
    expect(failure(applyTransform(missing, undefined, jsonRequest(patient)))).toBe(
      'transform.body[0] (add /contact/0/name) failed: Cannot perform an `add` operation at the desired path',
    );
    const moveMissing = validateTransform({ body: [{ op: 'move', from: '/nope', path: '/x' }] });
    expect(failure(applyTransform(moveMissing, undefined, jsonRequest(patient)))).toBe(
      'transform.body[0] (move /x) failed: Cannot perform the operation from a path that does not exist',
    );
    const testMissing = validateTransform({ body: [{ op: 'test', path: '/meta/source', value: 'a' }] });
    expect(failure(applyTransform(testMissing, undefined, jsonRequest(patient)))).toBe(
      'transform.body[0] (test /meta/source) failed: Test operation failed (the path does not exist)',
    );
    const outOfBounds = validateTransform({ body: [{ op: 'add', path: '/name/5', value: {} }] });
    expect(failure(applyTransform(outOfBounds, undefined, jsonRequest(patient)))).toBe(
      'transform.body[0] (add /name/5) failed: The specified index MUST NOT be greater than the number of elements in the array',
    );
  });

  it('treats inherited members (toString, valueOf) as absent', () => {
    for (const op of ['replace', 'remove', 'test'] as const) {
      const spec = validateTransform({ body: [{ op, path: '/toString', value: 1 }] });
      expect(applyTransform(spec, undefined, jsonRequest({})).ok).toBe(false);
    }
    const shadowing = validateTransform({ body: [{ op: 'test', path: '', value: { hasOwnProperty: 1 } }] });
    expect(applied(applyTransform(shadowing, undefined, jsonRequest({ hasOwnProperty: 1 }))).changed).toBe(false);
  });

  it('refuses bodies that are not JSON, and a patch without a body', () => {
    const spec = validateTransform({ body: [{ op: 'replace', path: '/a', value: 1 }] });
    const hl7 = 'MSH|^~\\&|LAB|HOSP\rPID|1||123';
    expect(failure(applyTransform(spec, undefined, { method: 'POST', path: '/', headers: {}, body: hl7 }))).toBe(
      "transform.body: the body is not JSON (Unexpected token 'M')",
    );
    expect(
      failure(
        applyTransform(spec, undefined, { method: 'POST', path: '/', headers: { 'content-type': 'x' }, body: '{}' }),
      ),
    ).toBe('transform.body: the body is not JSON (content-type "x")');
    expect(failure(applyTransform(spec, undefined, jsonRequest({ a: 0 }, 'application/hl7-v2+er7')))).toBe(
      'transform.body: the body is not JSON (content-type "application/hl7-v2+er7")',
    );
    expect(failure(applyTransform(spec, undefined, { method: 'POST', path: '/', headers: {}, body: ' ' }))).toBe(
      'transform.body: the body is not JSON (it is empty)',
    );
    expect(
      failure(applyTransform(spec, undefined, { method: 'POST', path: '/', headers: {}, body: '{"a":1} x' })),
    ).toBe('transform.body: the body is not JSON (Unexpected non-whitespace character after JSON at position 8)');
    expect(failure(applyTransform(spec, undefined, { method: 'GET', path: '/', headers: {} }))).toBe(
      'transform.body: the request has no body to patch',
    );
    // The content-type the header transform sets is the one checked.
    const relabel = validateTransform({
      body: [{ op: 'replace', path: '/a', value: 1 }],
      headers: { set: { 'content-type': 'application/json' } },
    });
    const result = applied(applyTransform(relabel, undefined, jsonRequest({ a: 0 }, 'text/plain')));
    expect(result.request.body).toBe('{"a":1}');
  });

  it('keeps the original bytes when the patch leaves the document as it was', () => {
    const body = '{ "resourceType": "Patient",\n  "gender": "male", "n": 1.50 }';
    const request = { method: 'PUT', path: '/fhir/Patient/1', headers: { 'content-type': 'application/json' }, body };
    const spec = validateTransform({
      body: [
        { op: 'test', path: '/gender', value: 'male' },
        { op: 'remove', path: '/gender' },
        { op: 'add', path: '/gender', value: 'male' },
      ],
    });
    const result = applied(applyTransform(spec, undefined, request));
    expect(result).toEqual({ ok: true, changed: false, request });
    expect(result.request).not.toBe(request);
  });

  it('fixes an HL7 v2 message with a text replacement, segment by segment (\\r)', () => {
    const message = [
      'MSH|^~\\&|LAB|OLDHOSP|EHR|NEWHOSP|20240101120000||ORU^R01|MSG0001|P|2.5',
      'PID|1||123456^^^OLDHOSP^MR||DOE^JOHN||19800101|M',
      'OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12-16|N|||F',
    ].join('\r');
    const spec = validateTransform({
      // MSH-4 (sending facility) only: OLDHOSP stays where it is an assigning authority.
      bodyReplace: { pattern: '^(MSH\\|[^|]*\\|[^|]*\\|)OLDHOSP(\\|)', replacement: '$1NEWHOSP$2', flags: 'gm' },
    });
    const request = { method: 'POST', path: '/hl7', headers: { 'content-type': 'application/hl7-v2' }, body: message };
    const result = applied(applyTransform(spec, undefined, request));
    expect(result.changed).toBe(true);
    expect(result.request.body!.split('\r')).toEqual([
      'MSH|^~\\&|LAB|NEWHOSP|EHR|NEWHOSP|20240101120000||ORU^R01|MSG0001|P|2.5',
      'PID|1||123456^^^OLDHOSP^MR||DOE^JOHN||19800101|M',
      'OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12-16|N|||F',
    ]);
    // Applied to a message already fixed, nothing changes.
    expect(applied(applyTransform(spec, undefined, result.request)).changed).toBe(false);
    // No body: nothing to replace in, nothing fails.
    const noBody = { method: 'GET', path: '/hl7', headers: {} };
    expect(applied(applyTransform(spec, undefined, noBody))).toEqual({ ok: true, changed: false, request: noBody });
  });

  it('sets and removes headers, ignoring case, keeping the spelling the request holds', () => {
    const spec = validateTransform({
      headers: { set: { 'content-type': 'application/fhir+json', 'X-Fixed-By': 'ops' }, remove: ['x-debug', 'Cookie'] },
    });
    const request: RequestParts = {
      method: 'POST',
      path: '/fhir',
      headers: {
        'Content-Type': 'application/json',
        'X-Debug': '1',
        'x-DEBUG': '2',
        Accept: ['a', 'b'],
        parentID: TID,
      },
      body: '{}',
    };
    const result = applied(applyTransform(spec, undefined, request));
    expect(result.changed).toBe(true);
    expect(result.request.headers).toEqual({
      'Content-Type': 'application/fhir+json',
      Accept: ['a', 'b'],
      parentID: TID,
      'X-Fixed-By': 'ops',
    });
    expect(result.request.headers.Accept).not.toBe(request.headers.Accept);
    // Removing what is absent and setting what is there already changes nothing.
    const idle = validateTransform({ headers: { set: { 'CONTENT-TYPE': 'application/json' }, remove: ['x-nope'] } });
    expect(
      applied(applyTransform(idle, undefined, { ...request, headers: { 'Content-Type': 'application/json' } })).changed,
    ).toBe(false);
    // A set header replaces every spelling the request holds.
    const many = validateTransform({ headers: { set: { 'x-debug': '3' } } });
    expect(applied(applyTransform(many, undefined, request)).request.headers).toEqual({
      'Content-Type': 'application/json',
      'X-Debug': '3',
      Accept: ['a', 'b'],
      parentID: TID,
    });
  });

  it('rewrites the path and query string', () => {
    const spec = validateTransform({
      path: { pattern: '^/fhir/(Patient|Observation)\\?(.*)_format=xml', replacement: '/fhir/R4/$1?$2_format=json' },
    });
    const request = { method: 'GET', path: '/fhir/Patient?name=doe&_format=xml', headers: {} };
    const result = applied(applyTransform(spec, undefined, request));
    expect(result.request.path).toBe('/fhir/R4/Patient?name=doe&_format=json');
    expect(result.changed).toBe(true);
    expect(applied(applyTransform(spec, undefined, { ...request, path: '/other' })).changed).toBe(false);

    const relative = validateTransform({ path: { pattern: '^/', replacement: '' } });
    expect(failure(applyTransform(relative, undefined, { ...request, path: '/abc' }))).toBe(
      'transform.path: the result "abc" does not start with /',
    );
    const spaces = validateTransform({ path: { pattern: '_', replacement: ' ' } });
    expect(failure(applyTransform(spaces, undefined, { ...request, path: '/a_b' }))).toBe(
      'transform.path: the result "/a b" holds characters a request path cannot (spaces, control characters, characters above U+00FF)',
    );
    const once = validateTransform({ path: { pattern: 'a', replacement: 'b', flags: 'i' } });
    expect(applied(applyTransform(once, undefined, { ...request, path: '/AAa' })).request.path).toBe('/bAa');
  });

  it("gives an edit's body and headers precedence", () => {
    const spec = validateTransform({
      body: [{ op: 'replace', path: '/gender', value: 'male' }],
      headers: { set: { 'X-Source': 'transform', 'X-Other': 'transform' } },
    });
    const edit: ItemEdit = {
      tid: TID,
      body: 'MSH|edited',
      headers: { 'x-source': 'edit', 'Content-Type': 'text/plain' },
    };
    const result = applied(applyTransform(spec, edit, jsonRequest(patient)));
    expect(result.request.body).toBe('MSH|edited');
    expect(result.request.headers).toEqual({
      'Content-Type': 'text/plain',
      parentID: TID,
      taskID: OTHER_TID,
      'X-Source': 'edit',
      'X-Other': 'transform',
    });
    // The edit's body replaces even an absent one, and needs no transform.
    const alone = applied(
      applyTransform(undefined, { tid: TID, body: '{}' }, { method: 'POST', path: '/', headers: {} }),
    );
    expect(alone).toEqual({ ok: true, changed: true, request: { method: 'POST', path: '/', headers: {}, body: '{}' } });
    // Headers only: the transform's patch still applies.
    const headersOnly = applied(applyTransform(spec, { tid: TID, headers: { 'X-A': '1' } }, jsonRequest(patient)));
    expect(JSON.parse(headersOnly.request.body!).gender).toBe('male');
    expect(headersOnly.request.headers['X-A']).toBe('1');
  });

  it('changes nothing without a transform or an edit', () => {
    const request = jsonRequest(patient);
    const result = applied(applyTransform(undefined, undefined, request));
    expect(result).toEqual({ ok: true, changed: false, request });
    expect(result.request).not.toBe(request);
  });

  it('never throws, even on a spec that skipped validation', () => {
    const request = jsonRequest(patient);
    const broken = [
      { path: { pattern: '(', replacement: '' } },
      { bodyReplace: { pattern: '[', replacement: '' } },
      { body: [{ op: 'add', path: '/__proto__/polluted', value: 1 }] },
      { body: [{ op: '_get', path: '/id' }] },
      { body: [null] },
      { body: 'nope' },
      { headers: { set: 5, remove: 'x' } },
    ] as unknown as TransformSpec[];
    for (const spec of broken) expect(applyTransform(spec, undefined, request).ok).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(applyTransform(broken[0], undefined, request)).toEqual({
      ok: false,
      error: 'transform.path: Invalid regular expression: /(/g: Unterminated group',
    });
    expect(applyTransform(broken[2], undefined, request)).toEqual({
      ok: false,
      error:
        'transform.body[0] (add /__proto__/polluted) failed: modifying __proto__ or constructor/prototype is not allowed',
    });
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['application/json; charset=utf-8', true],
    ['Application/FHIR+JSON;fhirVersion=4.0', true],
    ['application/vnd.api+json', true],
    [' application/merge-patch+json ', true],
    ['text/plain', false],
    ['application/xml', false],
    ['application/fhir+xml', false],
    ['application/jsonx', false],
    ['json', false],
    ['+json', false],
    ['', false],
    [undefined, false],
  ])('%p is JSON: %p', (contentType, expected) => {
    expect(isJsonContentType(contentType)).toBe(expected);
  });
});

describe('validateTransform', () => {
  it('returns a normalised copy (default flags stored, undefined RFC members dropped)', () => {
    const raw = {
      body: [
        { op: 'replace', path: '/a', value: { b: 1 }, comment: 'ignored (RFC 6902 section 4)' },
        { op: 'move', from: '/a', path: '/c', value: 'not a member of move' },
      ],
      headers: { set: { 'X-A': '1' } },
      path: { pattern: 'a', replacement: 'b' },
    };
    const spec = validateTransform(raw);
    expect(spec).toEqual({
      body: [
        { op: 'replace', path: '/a', value: { b: 1 } },
        { op: 'move', from: '/a', path: '/c' },
      ],
      headers: { set: { 'X-A': '1' } },
      path: { pattern: 'a', replacement: 'b', flags: 'g' },
    });
    expect(spec.headers!.set).not.toBe(raw.headers.set);
    expect(validateTransform({ bodyReplace: { pattern: 'a', replacement: '', flags: '' } }).bodyReplace!.flags).toBe(
      '',
    );
  });

  it.each<[string, unknown, string]>([
    ['not an object', [], 'transform must be an object with one or more of body, bodyReplace, headers, path (got [])'],
    ['empty', {}, 'transform must give at least one of body, bodyReplace, headers, path'],
    [
      'an unknown key',
      { body: [{ op: 'remove', path: '/a' }], bodyy: 1 },
      'Unknown key "bodyy" in transform (allowed: body, bodyReplace, headers, path)',
    ],
    [
      'both body transforms',
      { body: [{ op: 'remove', path: '/a' }], bodyReplace: { pattern: 'a', replacement: 'b' } },
      'transform may give body (a JSON Patch) or bodyReplace (a text replacement), not both: one body transform per task',
    ],
    [
      'a body that is not a patch',
      { body: { op: 'remove', path: '/a' } },
      'transform.body must be a JSON Patch: an array of operations like {"op": "replace", "path": "/status", "value": "final"} (got {"op":"remove","path":"/a"})',
    ],
    ['an empty patch', { body: [] }, 'transform.body must hold at least one operation'],
    [
      'a patch too long',
      { body: Array.from({ length: 101 }, () => ({ op: 'remove', path: '/a' })) },
      'transform.body must hold at most 100 operations (got 101)',
    ],
    [
      'an operation that is not an object',
      { body: ['remove /a'] },
      'transform.body[0] must be an operation like {"op": "replace", "path": "/status", "value": "final"} (got "remove /a")',
    ],
    [
      'an unknown op',
      {
        body: [
          { op: 'test', path: '/a', value: 1 },
          { op: 'upsert', path: '/a', value: 1 },
        ],
      },
      'transform.body[1].op must be one of add, remove, replace, move, copy, test (got "upsert")',
    ],
    [
      "the library's private op",
      { body: [{ op: '_get', path: '/a' }] },
      'transform.body[0].op must be one of add, remove, replace, move, copy, test (got "_get")',
    ],
    [
      'a missing op',
      { body: [{ path: '/a' }] },
      'transform.body[0].op must be one of add, remove, replace, move, copy, test (got undefined)',
    ],
    [
      'a path without /',
      {
        body: [
          { op: 'remove', path: '/a' },
          { op: 'remove', path: '/b' },
          { op: 'remove', path: 'c' },
        ],
      },
      'transform.body[2].path must be a JSON Pointer: "" (the whole document) or a string starting with / (got "c")',
    ],
    [
      'a path that is not a string',
      { body: [{ op: 'remove', path: 3 }] },
      'transform.body[0].path must be a JSON Pointer: "" (the whole document) or a string starting with / (got 3)',
    ],
    [
      'a missing value',
      { body: [{ op: 'add', path: '/a' }] },
      'transform.body[0].value is required by "add" (got undefined)',
    ],
    [
      'a missing from',
      { body: [{ op: 'copy', path: '/a' }] },
      'transform.body[0].from must be a JSON Pointer string: "copy" needs one (got undefined)',
    ],
    [
      'a from without /',
      { body: [{ op: 'move', path: '/a', from: 'b' }] },
      'transform.body[0].from must be a JSON Pointer: "" (the whole document) or a string starting with / (got "b")',
    ],
    [
      'a bad ~ escape',
      { body: [{ op: 'remove', path: '/a~2b' }] },
      'transform.body[0].path is not a valid JSON Pointer: write ~0 for "~" and ~1 for "/" (got "/a~2b")',
    ],
    [
      '__proto__',
      { body: [{ op: 'add', path: '/__proto__/x', value: 1 }] },
      'transform.body[0].path must not go through __proto__ or constructor/prototype (got "/__proto__/x")',
    ],
    [
      'constructor/prototype',
      { body: [{ op: 'copy', path: '/x', from: '/constructor/prototype' }] },
      'transform.body[0].from must not go through __proto__ or constructor/prototype (got "/constructor/prototype")',
    ],
    [
      'a move into itself',
      { body: [{ op: 'move', from: '/a', path: '/a/b' }] },
      'transform.body[0] cannot move a value into itself (from "/a" contains path "/a/b")',
    ],
    [
      'a replacement that is not an object',
      { bodyReplace: 'a/b' },
      'transform.bodyReplace must be an object like {"pattern": "OLD", "replacement": "NEW", "flags": "g"} (got "a/b")',
    ],
    [
      'an unknown replacement key',
      { path: { pattern: 'a', replacement: 'b', flag: 'g' } },
      'Unknown key "flag" in transform.path (allowed: pattern, replacement, flags)',
    ],
    [
      'an empty pattern',
      { bodyReplace: { pattern: '', replacement: 'b' } },
      'transform.bodyReplace.pattern must be a non-empty regular expression as a string (got "")',
    ],
    [
      'a pattern too long',
      { path: { pattern: 'a'.repeat(501), replacement: 'b' } },
      'transform.path.pattern must be at most 500 characters (got 501)',
    ],
    [
      'a pattern that does not compile',
      { bodyReplace: { pattern: '(a', replacement: 'b' } },
      'transform.bodyReplace.pattern is not a valid regular expression: Invalid regular expression: /(a/g: Unterminated group',
    ],
    [
      'a catastrophic pattern',
      { bodyReplace: { pattern: '^(\\w+\\s?)*$', replacement: 'b' } },
      'transform.bodyReplace.pattern must not repeat a group that itself repeats, like (a+)+ (matching such an expression can take exponential time)',
    ],
    [
      'an unknown flag',
      { path: { pattern: 'a', replacement: 'b', flags: 'gy' } },
      'transform.path.flags must be letters of "gimsu", each at most once (got "gy")',
    ],
    [
      'a repeated flag',
      { path: { pattern: 'a', replacement: 'b', flags: 'gig' } },
      'transform.path.flags must be letters of "gimsu", each at most once (got "gig")',
    ],
    [
      'a missing replacement',
      { path: { pattern: 'a' } },
      'transform.path.replacement must be a string (got undefined)',
    ],
    [
      'a replacement too long',
      { bodyReplace: { pattern: 'a', replacement: 'b'.repeat(10_001) } },
      'transform.bodyReplace.replacement must be at most 10000 characters (got 10001)',
    ],
    [
      'headers that are not an object',
      { headers: ['X-A'] },
      'transform.headers must be an object like {"set": {"name": "value"}, "remove": ["name"]} (got ["X-A"])',
    ],
    ['empty headers', { headers: {} }, 'transform.headers must give set, remove or both'],
    [
      'an unknown headers key',
      { headers: { add: { 'X-A': '1' } } },
      'Unknown key "add" in transform.headers (allowed: set, remove)',
    ],
    [
      'an empty set',
      { headers: { set: {} } },
      'transform.headers.set must be a non-empty object of header names and values (got {})',
    ],
    [
      'an invalid header name',
      { headers: { set: { 'X A': '1' } } },
      'transform.headers.set: "X A" is not a valid HTTP header name',
    ],
    [
      'a header value that is not a string',
      { headers: { set: { 'X-A': 1 } } },
      'transform.headers.set["X-A"] must be a string (got 1)',
    ],
    [
      'an invalid header value',
      { headers: { set: { 'X-A': 'a\r\nInjected: 1' } } },
      'transform.headers.set["X-A"] is not a valid HTTP header value: control characters such as line breaks, and characters above U+00FF, are not allowed (got "a\\r\\nInjected: 1")',
    ],
    [
      'a header value too long',
      { headers: { set: { 'X-A': 'a'.repeat(8193) } } },
      'transform.headers.set["X-A"] must be at most 8192 characters (got 8193)',
    ],
    [
      'a header set twice',
      { headers: { set: { 'X-A': '1', 'x-a': '2' } } },
      'transform.headers.set gives "X-A" and "x-a": header names do not depend on case',
    ],
    [
      "setting the rerun's own header",
      { headers: { set: { 'Content-Length': '5' } } },
      'transform.headers.set may not set "Content-Length": host, content-length, transfer-encoding, connection, parentid, taskid, clientid are the rerun\'s own headers (the service sets them on every rerun)',
    ],
    [
      "removing the rerun's own header",
      { headers: { remove: ['X-A', 'parentID'] } },
      'transform.headers.remove[1] may not remove "parentID": host, content-length, transfer-encoding, connection, parentid, taskid, clientid are the rerun\'s own headers (the service sets them on every rerun)',
    ],
    [
      'a hop-by-hop header',
      { headers: { set: { Upgrade: 'h2c' } } },
      'transform.headers.set may not set "Upgrade": keep-alive, upgrade, te, trailer, expect and proxy-* are hop-by-hop headers, which a rerun never forwards',
    ],
    [
      'a proxy header',
      { headers: { remove: ['Proxy-Authorization'] } },
      'transform.headers.remove[0] may not remove "Proxy-Authorization": keep-alive, upgrade, te, trailer, expect and proxy-* are hop-by-hop headers, which a rerun never forwards',
    ],
    [
      'remove that is not an array',
      { headers: { remove: 'X-A' } },
      'transform.headers.remove must be a non-empty array of header names (got "X-A")',
    ],
    [
      'a removed name that is not a string',
      { headers: { remove: [1] } },
      'transform.headers.remove[0] must be a header name (got 1)',
    ],
    ['a header removed twice', { headers: { remove: ['X-A', 'x-a'] } }, 'transform.headers.remove names "x-a" twice'],
    [
      'a header set and removed',
      { headers: { set: { 'X-A': '1' }, remove: ['x-a'] } },
      'transform.headers: "X-A" is both in set and in remove (give it in one of them)',
    ],
    [
      'too many headers',
      { headers: { remove: Array.from({ length: 101 }, (_, i) => `X-${i}`) } },
      'transform.headers.remove must hold at most 100 names (got 101)',
    ],
  ])('refuses %s', (_, raw, message) => {
    expect(transformProblem(raw)).toBe(message);
  });
});

describe('validateEdits', () => {
  it('returns the edits with tids in lower case, and finds them by tid', () => {
    const edits = validateEdits([
      { tid: TID.toUpperCase(), body: '{"fixed":true}' },
      { tid: OTHER_TID, headers: { 'X-A': '1' } },
    ]);
    expect(edits).toEqual([
      { tid: TID, body: '{"fixed":true}' },
      { tid: OTHER_TID, headers: { 'X-A': '1' } },
    ]);
    expect(editsByTid(edits).get(OTHER_TID)).toBe(edits[1]);
    expect(validateEdits([])).toEqual([]);
    expect(validateEdits([{ tid: TID, body: '' }])).toEqual([{ tid: TID, body: '' }]);
  });

  it.each<[string, unknown, string]>([
    [
      'not an array',
      { tid: TID },
      'edits must be an array of {tid, body?, headers?} (got {"tid":"5bb777777bbb66cc5d4444ee"})',
    ],
    [
      'an edit that is not an object',
      [TID],
      'edits[0] must be an object like {"tid": "<24-hex id>", "body": "...", "headers": {...}} (got "5bb777777bbb66cc5d4444ee")',
    ],
    [
      'an unknown key',
      [{ tid: TID, body: 'x', path: '/' }],
      'Unknown key "path" in edits[0] (allowed: tid, body, headers)',
    ],
    ['a bad tid', [{ tid: 'abc', body: 'x' }], 'edits[0].tid must be a 24-character hex transaction id (got "abc")'],
    ['a missing tid', [{ body: 'x' }], 'edits[0].tid must be a 24-character hex transaction id (got undefined)'],
    [
      'a tid twice',
      [
        { tid: TID, body: 'x' },
        { tid: OTHER_TID, body: 'y' },
        { tid: TID.toUpperCase(), body: 'z' },
      ],
      'edits[2].tid "5bb777777bbb66cc5d4444ee" is also edits[0].tid (one edit per transaction)',
    ],
    ['neither body nor headers', [{ tid: TID }], 'edits[0] must give a body, headers or both (got neither)'],
    [
      'a body that is not a string',
      [{ tid: TID, body: { a: 1 } }],
      'edits[0].body must be a string, the whole new body (got {"a":1})',
    ],
    [
      'headers that are not an object',
      [{ tid: TID, headers: 'X-A: 1' }],
      'edits[0].headers must be a non-empty object of header names and values (got "X-A: 1")',
    ],
    [
      "the rerun's own header",
      [{ tid: TID, headers: { TaskID: OTHER_TID } }],
      'edits[0].headers may not set "TaskID": host, content-length, transfer-encoding, connection, parentid, taskid, clientid are the rerun\'s own headers (the service sets them on every rerun)',
    ],
    [
      'an invalid header value',
      [{ tid: TID, headers: { 'X-A': 'é\u0100' } }],
      'edits[0].headers["X-A"] is not a valid HTTP header value: control characters such as line breaks, and characters above U+00FF, are not allowed (got "é\u0100")',
    ],
  ])('refuses %s', (_, raw, message) => {
    expect(editsProblem(raw)).toBe(message);
  });

  it('refuses more edits than allowed (1000 by default)', () => {
    const edits = (count: number) =>
      Array.from({ length: count }, (_, index) => ({ tid: index.toString(16).padStart(24, '0'), body: '' }));
    expect(validateEdits(edits(1000))).toHaveLength(1000);
    expect(editsProblem(edits(1001))).toBe('edits must hold at most 1000 edits (got 1001)');
    expect(editsProblem(edits(3), 2)).toBe('edits must hold at most 2 edits (got 3)');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const RUNS = { numRuns: 200 };

/** JSON values whose keys include pointer escapes (`/`, `~`) and inherited names, never a prototype. */
const jsonKey = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('a', 'b', 'a/b', 'm~n', '~1', '0', '1', 'toString', 'hasOwnProperty', 'constructor', ''),
);
const isSafeKey = (key: string) => key !== '__proto__' && key !== 'prototype';
const { json: jsonValue } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string(),
    ),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(jsonKey.filter(isSafeKey), tie('json'), { maxKeys: 4, noNullPrototype: true }),
  ),
}));
const jsonArray = fc.array(jsonValue, { maxLength: 4 });
const jsonObject = fc.dictionary(jsonKey.filter(isSafeKey), jsonValue, { maxKeys: 5, noNullPrototype: true });
/** Two documents of the same kind: compare() does not handle an array at the root becoming an object. */
const documentPair = fc.oneof(fc.tuple(jsonArray, jsonArray), fc.tuple(jsonObject, jsonObject));
/** JSON.stringify then parse: -0 becomes 0, as it would on the wire. */
const wire = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

const headerName = fc.oneof(
  fc.constantFrom('Content-Type', 'content-type', 'X-A', 'x-a', 'Accept', 'parentID', 'Host', 'X Bad', '__proto__'),
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,8}$/),
);
const headerText = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/fhir+json; charset=utf-8',
    'text/plain',
    'application/hl7-v2',
    'a\r\nb',
  ),
  fc.string({ maxLength: 10 }),
);
const pointer = fc.oneof(
  fc.constantFrom(
    '',
    '/a',
    '/b',
    '/a/0',
    '/b/0',
    '/b/-',
    '/x',
    '/x/y',
    '/0',
    '/-',
    '/a~1b',
    '/m~0n',
    '/toString',
    '/~2',
  ),
  fc
    .array(jsonKey, { maxLength: 3 })
    .map((keys) => keys.map((key) => `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')),
);
const rawOperation = fc.record(
  {
    op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'upsert'),
    path: pointer,
    from: pointer,
    value: jsonValue,
  },
  { requiredKeys: ['op', 'path'] },
);
const regexSource = fc.oneof(
  fc.constantFrom(
    'a',
    '^/',
    '/fhir',
    '\\d+',
    '(\\w+)=(\\w*)',
    '$',
    '^',
    '.',
    '\\r',
    'x|y',
    '(a+)+',
    '(',
    '[^|]*\\|',
    '(?<n>b)',
  ),
  fc.string({ maxLength: 5 }),
);
const rawReplace = fc.record(
  {
    pattern: regexSource,
    replacement: fc.oneof(fc.constantFrom('', '/', '$1', '$&$&', '$<n>', '/x?y=1'), fc.string({ maxLength: 5 })),
    flags: fc.constantFrom('g', 'gi', 'gm', 'gs', 'gu', '', 'i', 'y'),
  },
  { requiredKeys: ['pattern', 'replacement'] },
);
const rawTransform = fc.record(
  {
    body: fc.array(rawOperation, { minLength: 1, maxLength: 4 }),
    bodyReplace: rawReplace,
    headers: fc.record(
      {
        set: fc.dictionary(headerName, headerText, { minKeys: 1, maxKeys: 3, noNullPrototype: true }),
        remove: fc.uniqueArray(headerName, { minLength: 1, maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
    path: rawReplace,
  },
  { requiredKeys: [] },
);
/** Specs that passed validation (about half of the raw ones do). */
const validSpec = rawTransform
  .map((raw) => {
    try {
      return validateTransform(raw);
    } catch {
      return undefined;
    }
  })
  .filter((spec): spec is TransformSpec => spec !== undefined);
const validEdit = fc
  .record(
    {
      tid: fc.constant(TID),
      body: fc.string({ maxLength: 20 }),
      headers: fc.dictionary(headerName, headerText, { maxKeys: 2 }),
    },
    { requiredKeys: ['tid'] },
  )
  .map((raw) => {
    try {
      return validateEdits([raw])[0];
    } catch {
      return undefined;
    }
  });
const request: fc.Arbitrary<RequestParts> = fc.record(
  {
    method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH'),
    path: fc.oneof(fc.constantFrom('/', '/fhir/Patient?_format=xml', '/a/b?x=1'), fc.string({ maxLength: 10 })),
    headers: fc.dictionary(headerName, fc.oneof(headerText, fc.array(headerText, { maxLength: 2 })), {
      maxKeys: 4,
      noNullPrototype: true,
    }),
    body: fc.oneof(
      fc.string({ maxLength: 20 }),
      jsonValue.map((value) => JSON.stringify(value)),
      // Documents that the generated pointers (/a, /b, /a/0, /x/y...) often reach.
      fc
        .record(
          { a: jsonValue, b: fc.array(jsonValue, { maxLength: 3 }), x: fc.record({ y: jsonValue }) },
          { requiredKeys: [] },
        )
        .map((value) => JSON.stringify(value)),
    ),
  },
  { requiredKeys: ['method', 'path', 'headers'] },
);

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/** A request as a comparable value: header names and values, in any order. */
const comparable = (parts: RequestParts) => ({
  ...parts,
  headers: Object.entries(parts.headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
});

describe('applyTransform: properties', () => {
  it('never throws, for any spec that passed validation, any edit and any request', () => {
    let applied = 0;
    fc.assert(
      fc.property(validSpec, validEdit, request, (spec, edit, parts) => {
        const result = applyTransform(spec, edit, parts);
        expect(typeof result.ok).toBe('boolean');
        if (result.ok) {
          applied++;
          expect(result.request.method).toBe(parts.method);
          expect(result.request.path.startsWith('/') || result.request.path === parts.path).toBe(true);
        } else {
          expect(result.error).toMatch(/^transform(\.\w+)?(\[\d+\])?[: ]/);
          expect(result.error.length).toBeLessThan(400);
        }
      }),
      RUNS,
    );
    expect(applied).toBeGreaterThan(0);
  });

  it('never mutates its arguments, and gives frozen arguments the same answer', () => {
    fc.assert(
      fc.property(validSpec, validEdit, request, (spec, edit, parts) => {
        const before = structuredClone({ spec, edit, parts });
        const result = applyTransform(spec, edit, parts);
        expect({ spec, edit, parts }).toEqual(before);
        const frozen = applyTransform(
          deepFreeze(structuredClone(spec)),
          deepFreeze(structuredClone(edit)),
          deepFreeze(structuredClone(parts)),
        );
        expect(frozen).toEqual(result);
      }),
      RUNS,
    );
  });

  it('says changed exactly when the request that comes out differs from the one that went in', () => {
    fc.assert(
      fc.property(validSpec, validEdit, request, (spec, edit, parts) => {
        const result = applyTransform(spec, edit, parts);
        if (!result.ok) return;
        expect(result.changed).toBe(JSON.stringify(comparable(result.request)) !== JSON.stringify(comparable(parts)));
      }),
      RUNS,
    );
  });

  it('gives back the original document when a patch from compare() is followed by its inverse', () => {
    let patched = 0;
    fc.assert(
      fc.property(documentPair, ([rawDoc, rawOther]) => {
        const [doc, other] = [wire(rawDoc) as object, wire(rawOther) as object];
        const forward = compare(doc, other);
        if (forward.length === 0 || forward.length > 100) return;
        patched++;
        const original = {
          method: 'PUT',
          path: '/doc',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(doc),
        };
        const there = applied(applyTransform(validateTransform({ body: forward }), undefined, original));
        const result = JSON.parse(there.request.body!);
        expect(result).toEqual(other);
        expect(there.changed).toBe(!equalJson(doc, other));

        const inverse: Operation[] = compare(result, doc);
        if (inverse.length === 0) return;
        const back = applied(applyTransform(validateTransform({ body: inverse }), undefined, there.request));
        expect(JSON.parse(back.request.body!)).toEqual(doc);
        expect(doc).toEqual(JSON.parse(original.body));
      }),
      RUNS,
    );
    expect(patched).toBeGreaterThan(100);
  });
});

/** Deep equality of JSON values, key order aside. */
const equalJson = (a: unknown, b: unknown): boolean => {
  const sorted = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(sorted)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((key) => [key, sorted((value as Record<string, unknown>)[key])]),
          )
        : value;
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
};

describe('text replacement: time bounded by the pattern, not the body', () => {
  it('runs a backtracking pattern the validator lets through in linear time on a long body', () => {
    const spec = validateTransform({ bodyReplace: { pattern: '(a|a)*b', replacement: 'x' } });
    const body = 'a'.repeat(5000);
    const started = Date.now();
    const result = applyTransform(spec, undefined, { method: 'POST', path: '/', headers: {}, body });
    // Backtracking alone would take longer than the age of the universe on this body.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result).toEqual({ ok: true, request: { method: 'POST', path: '/', headers: {}, body }, changed: false });
  });

  it.each(['(a)\\1', '(?<x>a)\\k<x>', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b'])(
    'refuses %s, which the linear-time engine cannot run',
    (pattern) => {
      expect(() => validateTransform({ bodyReplace: { pattern, replacement: '' } })).toThrow(
        /transform\.bodyReplace\.pattern must not use backreferences .* or lookarounds/,
      );
    },
  );
});

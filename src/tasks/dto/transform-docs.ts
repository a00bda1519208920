import type { ApiPropertyOptions } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { MAX_REGEX_LENGTH } from '../../common/safe-regex';
import {
  MAX_EDITS,
  MAX_HEADER_VALUE_LENGTH,
  MAX_HEADERS,
  MAX_PATCH_OPERATIONS,
  MAX_REPLACEMENT_LENGTH,
  PATCH_OPERATIONS,
  REGEX_FLAGS,
  RERUN_OWN_HEADERS,
} from '../../rerun/transform/request-transform';

/**
 * The OpenAPI description of a task's `transform` and `edits` ("Fix, then rerun"), and the examples
 * of the request bodies. What they may say is checked by src/rerun/transform/request-transform.ts
 * (`validateTransform`, `validateEdits`); test/api/transform.e2e-spec.ts checks that every example
 * here passes those checks.
 */

const SAMPLE_TIDS = ['5bb777777bbb66cc5d4444ee', '5ceec0bb3ca344f9a30df633'];

/** A FHIR batch whose identifier system was mapped wrong: test, then fix, then tag. */
export const SAMPLE_FHIR_TRANSFORM = {
  body: [
    { op: 'test', path: '/resourceType', value: 'Patient' },
    { op: 'replace', path: '/identifier/0/system', value: 'http://moh.example.org/fhir/national-id' },
    { op: 'add', path: '/meta', value: { tag: [{ system: 'http://example.org/rerun', code: 'fixed' }] } },
  ],
};

/** An HL7 v2 batch sent with the wrong sending facility (MSH-4). */
export const SAMPLE_HL7_TRANSFORM = {
  bodyReplace: { pattern: '^(MSH\\|[^|]*\\|[^|]*\\|)OLD_FACILITY\\|', replacement: '$1NEW_FACILITY|', flags: 'gm' },
};

/** A header set and one removed, and the path moved to another version of the API. */
export const SAMPLE_HEADERS_AND_PATH_TRANSFORM = {
  headers: { set: { 'content-type': 'application/fhir+json; charset=utf-8' }, remove: ['x-legacy-token'] },
  path: { pattern: '^/fhir/r3/', replacement: '/fhir/r4/' },
};

export const SAMPLE_EDITS = [
  {
    tid: SAMPLE_TIDS[0],
    body: '{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1984-03-02"}',
    headers: { 'content-type': 'application/fhir+json' },
  },
];

/** The examples of POST /tasks's body that transform (and one preview). */
export const TRANSFORM_TASK_EXAMPLES = {
  fhirJsonPatch: {
    summary: 'Fix a FHIR batch with a JSON Patch',
    value: { tids: SAMPLE_TIDS, batchSize: 2, transform: SAMPLE_FHIR_TRANSFORM },
  },
  hl7Replacement: {
    summary: 'Fix an HL7 v2 batch with a text replacement',
    value: { tids: SAMPLE_TIDS, transform: SAMPLE_HL7_TRANSFORM },
  },
  headersAndPath: {
    summary: 'Set and remove headers, rewrite the path',
    value: { tids: SAMPLE_TIDS, transform: SAMPLE_HEADERS_AND_PATH_TRANSFORM },
  },
  singleEdit: {
    summary: 'Replace the body of one transaction (the others are rerun as they were)',
    value: { tids: SAMPLE_TIDS, edits: SAMPLE_EDITS },
  },
  preview: {
    summary: 'Preview a transform: nothing is created (200)',
    value: { tids: SAMPLE_TIDS, transform: SAMPLE_FHIR_TRANSFORM, dryRun: true, previewLimit: 2 },
  },
};

const REGEX_REPLACE_SCHEMA = (what: string): SchemaObject => ({
  type: 'object',
  required: ['pattern', 'replacement'],
  additionalProperties: false,
  properties: {
    pattern: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_REGEX_LENGTH,
      description:
        `A JavaScript regular expression applied to ${what}. A pattern that repeats a group which itself ` +
        'repeats, like (a+)+, is refused (400): matching it can take exponential time.',
    },
    replacement: {
      type: 'string',
      maxLength: MAX_REPLACEMENT_LENGTH,
      description: 'As String.prototype.replace: $1, $<name>, $& insert what the pattern matched.',
    },
    flags: {
      type: 'string',
      pattern: `^[${REGEX_FLAGS}]*$`,
      default: 'g',
      description: `Letters of ${REGEX_FLAGS}, each at most once (default g: every match).`,
    },
  },
});

const HEADER_SET_SCHEMA: SchemaObject = {
  type: 'object',
  minProperties: 1,
  maxProperties: MAX_HEADERS,
  additionalProperties: { type: 'string', maxLength: MAX_HEADER_VALUE_LENGTH },
};

/** `transform`, as a raw schema (the body's property and the task's). */
export const TRANSFORM_SCHEMA = asProperty({
  type: 'object',
  minProperties: 1,
  additionalProperties: false,
  properties: {
    body: {
      type: 'array',
      minItems: 1,
      maxItems: MAX_PATCH_OPERATIONS,
      description:
        'A JSON Patch (RFC 6902), applied in order to the JSON body; the first operation that fails (a test that ' +
        'does not hold, a path that does not exist) fails the item, unsent. A body that is not JSON (by its ' +
        'content-type or its text) fails too. The result is sent compact (JSON.stringify); a patch that changes ' +
        'nothing keeps the original bytes.',
      items: {
        type: 'object',
        required: ['op', 'path'],
        properties: {
          op: { type: 'string', enum: [...PATCH_OPERATIONS] },
          path: { type: 'string', description: 'A JSON Pointer (RFC 6901): "" or starting with /' },
          from: { type: 'string', description: 'move and copy: a JSON Pointer' },
          value: { description: 'add, replace and test: any JSON value' },
        },
      },
    },
    bodyReplace: {
      ...REGEX_REPLACE_SCHEMA('the body text (HL7 v2, XML, CSV)'),
      description: 'A text replacement in the body (not with body). A request without a body is left as it is.',
    },
    headers: {
      type: 'object',
      minProperties: 1,
      additionalProperties: false,
      description:
        `remove, then set (names ignore case; a set header keeps the spelling of the one it replaces). Neither ` +
        `may name ${RERUN_OWN_HEADERS.join(', ')} (the service sets them on every rerun) nor a hop-by-hop header.`,
      properties: {
        set: { ...HEADER_SET_SCHEMA, description: 'Header names and their new values' },
        remove: { type: 'array', minItems: 1, maxItems: MAX_HEADERS, items: { type: 'string' } },
      },
    },
    path: {
      ...REGEX_REPLACE_SCHEMA('the path and query string (`/fhir/Patient?_id=1`)'),
      description: 'A replacement on the path and query string; the result must start with /.',
    },
  },
});

/** `edits`, as a raw schema. */
export const EDITS_SCHEMA = asProperty({
  type: 'array',
  maxItems: MAX_EDITS,
  items: {
    type: 'object',
    required: ['tid'],
    additionalProperties: false,
    properties: {
      tid: { type: 'string', pattern: '^[0-9a-fA-F]{24}$', description: 'One transaction of the task' },
      body: { type: 'string', description: 'The whole new body' },
      headers: { ...HEADER_SET_SCHEMA, description: 'Header values to set (after the transform)' },
    },
  },
});

/** A raw OpenAPI schema as the options of `@ApiProperty` (which type nested schemas more narrowly). */
function asProperty(schema: SchemaObject): ApiPropertyOptions {
  return schema as ApiPropertyOptions;
}

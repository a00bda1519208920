/**
 * Every way our tasks API answers differently from OpenHIM core 4.0.5 for the same request against
 * the same database, with the reason. test/compat/differential.e2e-spec.ts sends each case of
 * differential-cases.ts to both and pins this table: a case that differs must be listed here
 * (with both status codes as observed), a case listed here must differ, and nothing else may.
 * The README's "Differences from OpenHIM" table is rendered from it (`differencesMarkdown()`).
 */
export interface Difference {
  id: string;
  /** What is sent (README column 1). */
  what: string;
  /** What OpenHIM core 4.0.5 does (README column 2). */
  openhim: string;
  /**
   * What OpenHIM 8.5 does, where it differs from 4.0.5 (README column 3; absent: as 4.0.5, or nothing
   * else is known). From core 8.5's source: it cannot run here, so this column is not measured.
   */
  openhim8?: string;
  /** What we do (README column 3). */
  ours: string;
  /** Why (README column 4). */
  reason: string;
  /** Differential case id → [OpenHIM status, our status] as observed. */
  cases: Record<string, [number, number]>;
  /** For a difference outside the tasks API's answers: the test that pins it. */
  pinnedBy?: string;
}

export const DIFFERENCES: Difference[] = [
  {
    id: 'unparseable-auth-ts',
    what: '`auth-ts` that is not a date (token computed over it)',
    openhim: '200: an unparseable time skips the time-window check, so such a token never expires',
    ours: '401 `Unauthorized`',
    reason: 'Security defect: a captured token would be replayable forever.',
    cases: { 'auth-unparseable-ts': [200, 401] },
  },
  {
    id: 'basic-auth',
    what: 'HTTP Basic credentials on the API',
    openhim: '401 (4.0.5 has token authentication only)',
    openhim8:
      "200: Basic checked against the user's bcrypt `local` passport (the sha fields when its `provider` is `token`)",
    ours: '200 when `AUTH_TYPES` includes `basic` (the default)',
    reason: 'OpenHIM ≥ 5.1 accepts Basic on its API; `AUTH_TYPES=token` gives 4.0.5 behaviour.',
    cases: { 'auth-basic': [401, 200] },
  },
  {
    id: 'optional-query',
    what: '`GET /tasks` or `GET /tasks/:id` without `filters`; `GET /tasks/:id` without `filterPage`/`filterLimit`',
    openhim: '500 (`JSON.parse(undefined)`); without paging: 200 with `transactions: []` (sliced with NaN)',
    ours: '200; `filters` defaults to `{}`, paging to page 0 of 100',
    reason: 'Defect: a plain `GET /tasks` is a reasonable request, and the task page should not be empty.',
    cases: { 'list-no-filters': [500, 200], 'get-no-query': [500, 200], 'get-no-paging': [200, 200] },
  },
  {
    id: 'strict-list-filters',
    what: '`GET /tasks` with `filters` that are not JSON, name other fields, or use other operators',
    openhim: 'not JSON: 500; anything else goes into the MongoDB query as sent (any field, any operator): 200',
    openhim8:
      'unknown fields are dropped by its schema and match everything; operators in known fields go to MongoDB as sent',
    ours: '400 naming the bad part; only `status` (or `{"$in": [...]}`), `user`, `created` (date range)',
    reason: 'Raw operators from the query string are a query-injection hole; a typo should not silently match nothing.',
    cases: { 'list-bad-json': [500, 400], 'list-operator': [200, 400], 'list-unknown-field': [200, 400] },
  },
  {
    id: 'has-errors-filter',
    what: '`GET /tasks/:id` with `filters={"hasErrors":"yes"|"no"}`',
    openhim: 'tests a field `hasErrors` that task items never have: `yes` returns nothing, `no` everything',
    ours: '`yes`: items with an `error`; `no`: items without',
    reason: 'Defect: the console\'s "has errors" filter never worked.',
    cases: { 'get-has-errors-yes': [200, 200], 'get-has-errors-no': [200, 200] },
  },
  {
    id: 'missing-task',
    what: '`GET`, `PUT`, `DELETE /tasks/:id` of a task that does not exist',
    openhim: 'GET 500 (`Cannot read properties of null`); PUT and DELETE 200 "successfully updated/deleted"',
    ours: '404 `We could not find a Task with this ID: <id>.`',
    reason: 'Defect: a client must be able to tell that nothing happened.',
    cases: { 'get-missing': [500, 404], 'update-missing': [200, 404], 'delete-missing': [200, 404] },
  },
  {
    id: 'malformed-task-id',
    what: '`GET`, `PUT`, `DELETE /tasks/abc` (not an ObjectId)',
    openhim: '500 with the mongoose CastError',
    ours: '400 `Invalid task id "abc": expected a 24-character hex id`',
    reason: 'Client error, not a server error.',
    cases: { 'get-bad-id': [500, 400], 'update-bad-id': [500, 400], 'delete-bad-id': [500, 400] },
  },
  {
    id: 'create-validation',
    what: '`POST /tasks` with `tids` missing, empty, not an array or not ids; `batchSize` not a whole number; `paused` not a boolean; a body that is not JSON',
    openhim:
      '500 with the internal error (missing tids, non-numeric batchSize, a non-id tid, a text body); 201 for `tids: []`, ' +
      '`tids` as a string (one item per character), `batchSize: 2.5`, `paused: "yes"`',
    ours: '400 naming every bad field (415 for a body that is not `application/json`); nothing is created',
    reason: 'Bad input is a 4xx that says what is wrong, never a 500 or a task that cannot run.',
    cases: {
      'create-no-tids': [500, 400],
      'create-empty-tids': [201, 400],
      'create-bad-tid': [500, 400],
      'create-tids-string': [201, 400],
      'create-batch-string': [500, 400],
      'create-batch-fraction': [201, 400],
      'create-paused-string': [201, 400],
      'create-text-body': [500, 415],
    },
  },
  {
    id: 'malformed-json',
    what: '`POST /tasks` with malformed JSON',
    openhim: '400 `Bad Request`',
    ours: "400 `Malformed JSON body: <the parser's message>`",
    reason: 'Says what is wrong.',
    cases: { 'create-malformed-json': [400, 400] },
  },
  {
    id: 'unknown-create-fields',
    what: '`POST /tasks` with a field it does not know (e.g. `bachSize`, `pause`)',
    openhim: '201: unknown fields are ignored',
    ours: '400 `Unknown field "bachSize" (allowed: tids, batchSize, paused, ratePerSecond, dryRun, previewLimit, pauseAfterFailures, startAt, autoResume, notify, transform, edits)`; nothing is created',
    reason:
      'A misspelt `batchSize` or `paused` would otherwise start a rerun other than the one asked for (at batch size 1, ' +
      'or not paused), and reruns resend health data downstream.',
    cases: { 'create-unknown-field': [201, 400] },
  },
  {
    id: 'duplicate-tids',
    what: '`POST /tasks` with a transaction id repeated',
    openhim: 'one item per entry: the transaction is rerun twice',
    ours: 'one item per distinct id (its first position); `totalTransactions` counts distinct ids',
    reason: 'A task reruns each transaction once; a repeat is a client mistake, not a request for a second rerun.',
    cases: { 'create-duplicate-tids': [201, 201] },
  },
  {
    id: 'missing-transactions',
    what: '`POST /tasks` of transactions that do not exist (not a difference: listed because it surprises)',
    openhim:
      '201, the task is created (for a non-admin, a missing transaction has no channel to refuse it); when it runs, ' +
      'each such item ends `tstatus: Failed` with an `error` saying the transaction could not be found',
    ours:
      'the same 201; when it runs, each such item ends `"tstatus": "Failed"`, `"error": "Transaction <tid> could not ' +
      'be found"`. See them with `GET /tasks/<id>?filters={"hasErrors":"yes"}` (the Quickstart shows it with curl)',
    reason:
      'Kept as OpenHIM does it: clients and the console get the answer they expect, and each item says what happened.',
    cases: {},
    pinnedBy:
      "test/engine/rerun-sending.e2e-spec.ts: records OpenHIM's outcomes (not found); the 201 is differential case create-sample",
  },
  {
    id: 'auto-retry-off',
    what: '`POST /tasks` of transactions queued for automatic retry',
    openhim: 'deletes their `autoretries` entries; leaves `autoRetry: true` and `autoRetryAttempt` on the transactions',
    ours: 'also sets `autoRetry: false, autoRetryAttempt: 0` on them',
    reason:
      "What later OpenHIM releases do: the attempt count restarts, so a failed rerun is auto-retried afresh per the channel's settings.",
    cases: { create: [201, 201] },
  },
  {
    id: 'status-changes',
    what: '`PUT /tasks/:id` with a `status` that is not a pause/resume/cancel, on a `Completed` task, or without `status`',
    openhim: '200: the body is written into the task as sent (any status string, any field)',
    ours: '400 naming the allowed changes; only `status` is applied, other echoed fields are ignored',
    reason: 'Defect: e.g. `Queued` on a completed task or `batchSize` edits mid-run corrupt the task.',
    cases: { 'update-completed': [200, 400], 'update-bogus-status': [200, 400], 'update-other-field': [200, 400] },
  },
  {
    id: 'bulk-rerun',
    what: '`POST /bulkrerun`',
    openhim: '404 (the endpoint arrived in OpenHIM 7.1)',
    openhim8:
      '200 with the same body; `filters` is a JSON string (as its console sends it), `filterLimit`/`filterPage` are ignored',
    ours: '200 `{"success":true,"message":"Tasks created for bulk rerun of transactions"}`',
    reason: 'We serve the newest tasks API; 4.0.5 is only the peer for what the versions share.',
    cases: { bulkrerun: [404, 200], 'bulkrerun-console': [404, 200] },
  },
  {
    id: 'bulk-rerun-tasks',
    what: '`POST /bulkrerun`: the tasks the matching transactions become',
    openhim: 'no bulk rerun (404)',
    openhim8:
      'tasks of 50 (`rerun.taskTransactionsLength`), newest first, read page by page in the background (transactions arriving meanwhile shift the pages)',
    ours:
      'tasks of `BULK_RERUN_TASK_SIZE` (10 000) transactions, oldest request first, created in the background after ' +
      'the answer; only transactions that exist when the request arrives (not the reruns it causes)',
    reason:
      'Items cost O(1) each here, so large tasks are cheap; rerunning in the order the transactions happened keeps ' +
      'their effects in order downstream.',
    cases: {},
    pinnedBy:
      'test/api/bulkrerun.e2e-spec.ts: splits the matching transactions into tasks, oldest first, and queues them',
  },
  {
    id: 'strict-bulk-filters',
    what:
      '`POST /bulkrerun` with `filters` naming other fields, using other operators, or holding a regular expression ' +
      'that does not compile, is over 500 characters or repeats a repeating group (`(a+)+`)',
    openhim: 'no bulk rerun (404)',
    openhim8:
      'unknown keys are dropped (they filter nothing); operators in known keys go to MongoDB as sent; any `childIDs` object passes; a regular expression that does not compile is a 500',
    ours:
      "400 naming the bad part, nothing created; only the transaction list's filter keys, `childIDs` with `$exists`, " +
      '`$eq: []`, `$ne: []`, `$size`, `$not: {$size}` only, `properties` values that are plain values',
    reason:
      'Raw operators from a request body are a query-injection hole; a typo should not silently rerun everything.',
    cases: {},
    pinnedBy: 'test/api/bulkrerun.e2e-spec.ts: 400 for ...; nothing created',
  },
  {
    id: 'task-storage',
    what: "Reading, through OpenHIM core's own API, a task this service created or adopted from core",
    openhim: "items are embedded in the task document's `transactions[]`",
    ours:
      'items live in `taskitems`, one document each; an adopted core task has its `transactions[]` emptied, so ' +
      "core's API shows `transactions: []` for these tasks (status and counters are right); read them through this API",
    reason: "Each write stays O(1) and large tasks stay far from MongoDB's 16 MiB document limit.",
    cases: {},
    pinnedBy: "test/compat/openhim-core.e2e-spec.ts: runs a task created through core's own API",
  },
  {
    id: 'rerun-retries',
    what:
      "A rerun that core's rerun port refuses, resets, does not answer, or answers 5xx without " +
      '`X-OpenHIM-TransactionID`, with no child transaction stored',
    openhim: 'recorded at once: `tstatus: Completed`, `rerunStatus: Failed`, the error',
    openhim8: 'a refused connection is recorded `tstatus: Completed` with no error and no `rerunStatus`',
    ours:
      'sent again with backoff for up to `RERUN_RETRY_WINDOW_MS` (2 min), then recorded the same way; never sent again ' +
      'once core stored a child (looked up after `RERUN_RETRY_SETTLE_MS`); `RERUN_RETRY_WINDOW_MS=0` gives 4.0.5 behaviour',
    reason: 'Tasks are created after outages: one refused connection should not fail a rerun that never happened.',
    cases: {},
    pinnedBy: 'test/engine/rerun-sending.e2e-spec.ts: a rerun that never reached core is sent again',
  },
  {
    id: 'additive-task-fields',
    what: '`GET /tasks/:id` of a task created through this service',
    openhim: "OpenHIM's task fields",
    ours:
      'also `history` (who did what, when), `pauseAfterFailures`, and `startAt` / `rerunOf` when set (the ' +
      'list shows all but `history`); clients that do not know them ignore them',
    reason: 'The operator features (README): an audit trail, auto-pause, scheduled starts, reruns of failures.',
    cases: {},
    pinnedBy: 'test/api/operator-features.e2e-spec.ts; the differential effects compare the fields both share',
  },
  {
    id: 'session-cookie-origins',
    what:
      "Core's session cookie (`koa.sess` + `koa.sess.sig`, OpenHIM 8's console) on a request that changes tasks " +
      '(`POST`, `PUT`, `DELETE`) from another website',
    openhim: 'no sessions: 401',
    openhim8:
      'accepted from any origin: its cookie is `SameSite=None` and it answers every origin with ' +
      '`Access-Control-Allow-Credentials: true`',
    ours:
      '403 unless the origin is listed in `CORS_ORIGINS` (or is this service itself); credentials are allowed to listed ' +
      'origins only; reads and token/Basic requests as before (sessions need `OPENHIM_SESSION_KEY`)',
    reason: "Otherwise any website an operator visits can create, pause or cancel reruns with the operator's session.",
    cases: {},
    pinnedBy:
      'test/api/openhim8-sessions.e2e-spec.ts: changes with a session cookie come only from the console origins',
  },
  {
    id: 'unknown-email-limit',
    what: '`GET /authenticate/:email` for emails that are not users, more than `AUTH_FAILURE_LIMIT` (20) a minute from one IP',
    openhim: '404 `Could not find user by email <email>` every time',
    ours:
      '404, counted as a failed authentication: past the limit, 429 for every request from that IP for a minute; known ' +
      'users are never limited (the documented clients ask before every request)',
    reason: 'Guessing emails finds the accounts to attack; asking again for a known one is what clients do.',
    cases: {},
    pinnedBy: 'test/api/auth-abuse.e2e-spec.ts: GET /authenticate: known users are never limited',
  },
];

/** The README table (the lead pastes it under "Differences from OpenHIM"). */
export function differencesMarkdown(): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    '| Request | OpenHIM core 4.0.5 | OpenHIM 8.5 | This service | Why |',
    '|---|---|---|---|---|',
    ...DIFFERENCES.map(
      (row) =>
        `| ${cell(row.what)} | ${cell(row.openhim)} | ${cell(row.openhim8 ?? 'as 4.0.5')} | ${cell(row.ours)} | ${cell(row.reason)} |`,
    ),
  ];
  return lines.join('\n');
}

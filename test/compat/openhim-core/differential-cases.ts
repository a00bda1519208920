import { DiffCase, TASK, TX } from './differential';

const hex = (id: { toHexString(): string }) => id.toHexString();
const q = (filters: object | string, page?: number, limit?: number) => {
  const params = new URLSearchParams();
  if (page !== undefined) params.set('filterPage', String(page));
  if (limit !== undefined) params.set('filterLimit', String(limit));
  params.set('filters', typeof filters === 'string' ? filters : JSON.stringify(filters));
  return `?${params.toString()}`;
};
const CONSOLE_PAGE = (filters: object | string = {}) => q(filters, 0, 10);
const ROOT = { as: 'root' } as const;

/**
 * The requests sent to OpenHIM core 4.0.5's tasks API and to ours against the same database state.
 * Query strings are the console's (filterPage/filterLimit/filters as a JSON string, `created` as a
 * JSON string inside it).
 */
export const CASES: DiffCase[] = [
  // --- authentication ---
  {
    id: 'auth-iso',
    title: 'token headers, auth-ts ISO 8601 (console)',
    request: { method: 'GET', path: `/tasks/${hex(TASK.queued)}${q({}, 0, 10)}`, auth: ROOT },
  },
  {
    id: 'auth-date-string',
    title: 'token headers, auth-ts as Date.toString() (docs Node client)',
    request: {
      method: 'GET',
      path: `/tasks/${hex(TASK.queued)}${q({}, 0, 10)}`,
      auth: { as: 'root', variant: 'dateString' },
    },
  },
  {
    id: 'auth-user-salt',
    title: "token headers with the user's own salt as auth-salt (docs clients)",
    request: {
      method: 'GET',
      path: `/tasks/${hex(TASK.queued)}${q({}, 0, 10)}`,
      auth: { as: 'root', variant: 'userSaltAsSalt' },
    },
  },
  {
    id: 'auth-upper-email',
    title: 'auth-username in upper case',
    request: {
      method: 'GET',
      path: `/tasks/${hex(TASK.queued)}${q({}, 0, 10)}`,
      auth: { as: 'root', variant: 'upperEmail' },
    },
  },
  {
    id: 'auth-none',
    title: 'no credentials',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { none: true } },
  },
  {
    id: 'auth-no-token',
    title: 'auth-token header missing',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'root', variant: 'noToken' } },
  },
  {
    id: 'auth-empty-salt',
    title: 'auth-salt empty',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'root', variant: 'emptySalt' } },
  },
  {
    id: 'auth-bad-token',
    title: 'wrong auth-token',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'root', variant: 'badToken' } },
  },
  {
    id: 'auth-stale-ts',
    title: 'auth-ts 60 s in the past',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'root', variant: 'staleTs' } },
  },
  {
    id: 'auth-future-ts',
    title: 'auth-ts 60 s in the future',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'root', variant: 'futureTs' } },
  },
  {
    id: 'auth-unparseable-ts',
    title: 'auth-ts that is not a date (token computed over it)',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'root', variant: 'unparseableTs' } },
  },
  {
    id: 'auth-unknown-user',
    title: 'auth-username of no user',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { unknownUser: true } },
  },
  {
    id: 'auth-basic',
    title: 'HTTP Basic with the right password',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { basic: 'root' } },
  },
  {
    id: 'auth-basic-wrong',
    title: 'HTTP Basic with a wrong password',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { basic: 'root', password: 'nope' } },
  },
  {
    id: 'authenticate-known',
    title: 'GET /authenticate/:email of a user',
    request: { method: 'GET', path: '/authenticate/rerunner@example.org', auth: { none: true } },
  },
  {
    id: 'authenticate-case',
    title: 'GET /authenticate/:email in upper case',
    request: { method: 'GET', path: '/authenticate/RERUNNER@EXAMPLE.ORG', auth: { none: true } },
  },
  {
    id: 'authenticate-unknown',
    title: 'GET /authenticate/:email of no user',
    request: { method: 'GET', path: '/authenticate/nobody@example.org', auth: { none: true } },
  },
  {
    id: 'authenticate-regex',
    title: 'GET /authenticate/:email with regex characters',
    request: { method: 'GET', path: '/authenticate/.*', auth: { none: true } },
  },

  // --- POST /tasks ---
  {
    id: 'create',
    title: 'POST /tasks {tids, batchSize}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.acl1), hex(TX.acl2)], batchSize: 2 } },
  },
  {
    id: 'create-sample',
    title: "POST /tasks with the docs' sample body (unknown tids, paused)",
    effects: true,
    request: {
      method: 'POST',
      path: '/tasks',
      auth: ROOT,
      body: {
        tids: ['5bb777777bbb66cc5d4444ee', '5ceec0bb3ca344f9a30df633', '5af732d1cbf94ba88b8f0bc0'],
        batchSize: 2,
        paused: true,
      },
    },
  },
  {
    id: 'create-paused',
    title: 'POST /tasks {paused: true}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)], paused: true } },
  },
  {
    id: 'create-default-batch',
    title: 'POST /tasks without batchSize',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)] } },
  },
  {
    id: 'create-acl-user',
    title: 'POST /tasks by a non-admin whose group is in the channel txRerunAcl',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: { as: 'rerunner' }, body: { tids: [hex(TX.noRetry)] } },
  },
  {
    id: 'create-no-acl',
    title: 'POST /tasks by a non-admin, channel without their group',
    effects: true,
    request: {
      method: 'POST',
      path: '/tasks',
      auth: { as: 'rerunner' },
      body: { tids: [hex(TX.acl1), hex(TX.noAcl)] },
    },
  },
  {
    id: 'create-viewer',
    title: 'POST /tasks by a user in no ACL',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: { as: 'viewer' }, body: { tids: [hex(TX.acl1)] } },
  },
  {
    id: 'create-disabled',
    title: 'POST /tasks with a transaction of a disabled channel',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.acl1), hex(TX.disabled)] } },
  },
  {
    id: 'create-deleted',
    title: 'POST /tasks with a transaction of a deleted channel',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.deleted)] } },
  },
  {
    id: 'create-batch-zero',
    title: 'POST /tasks {batchSize: 0}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.acl1)], batchSize: 0 } },
  },
  {
    id: 'create-batch-negative',
    title: 'POST /tasks {batchSize: -3}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.acl1)], batchSize: -3 } },
  },
  {
    id: 'create-batch-string',
    title: 'POST /tasks {batchSize: "x"}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.acl1)], batchSize: 'x' } },
  },
  {
    id: 'create-batch-numeric-string',
    title: 'POST /tasks {batchSize: "2"}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)], batchSize: '2' } },
  },
  {
    id: 'create-no-tids',
    title: 'POST /tasks {} (no tids)',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: {} },
  },
  {
    id: 'create-empty-tids',
    title: 'POST /tasks {tids: []}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [] } },
  },
  {
    id: 'create-bad-tid',
    title: 'POST /tasks {tids: ["abc"]}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: ['abc'] } },
  },
  {
    id: 'create-tids-string',
    title: 'POST /tasks {tids: "<one id>"}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: hex(TX.acl1) } },
  },
  {
    id: 'create-duplicate-tids',
    title: 'POST /tasks with a tid repeated',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry), hex(TX.noRetry)] } },
  },
  {
    id: 'create-unknown-field',
    title: 'POST /tasks with a field the API does not know',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)], bachSize: 5 } },
  },
  {
    id: 'create-no-retry',
    title: 'POST /tasks of a transaction not in the auto-retry queue',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)] } },
  },
  {
    id: 'create-batch-fraction',
    title: 'POST /tasks {batchSize: 2.5}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)], batchSize: 2.5 } },
  },
  {
    id: 'create-paused-string',
    title: 'POST /tasks {paused: "yes"}',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: { tids: [hex(TX.noRetry)], paused: 'yes' } },
  },
  {
    id: 'create-malformed-json',
    title: 'POST /tasks with malformed JSON',
    effects: true,
    request: {
      method: 'POST',
      path: '/tasks',
      auth: ROOT,
      body: '{"tids": [',
      headers: { 'content-type': 'application/json' },
    },
  },
  {
    id: 'create-text-body',
    title: 'POST /tasks with a text/plain body',
    effects: true,
    request: { method: 'POST', path: '/tasks', auth: ROOT, body: 'tids=1', headers: { 'content-type': 'text/plain' } },
  },

  // --- GET /tasks ---
  {
    id: 'list',
    title: 'GET /tasks?filterPage=0&filterLimit=10&filters={}',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: ROOT },
  },
  {
    id: 'list-status',
    title: 'GET /tasks filters={"status":"Paused"}',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE({ status: 'Paused' })}`, auth: ROOT },
  },
  {
    id: 'list-user',
    title: 'GET /tasks filters={"user":...}',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE({ user: 'rerunner@example.org' })}`, auth: ROOT },
  },
  {
    id: 'list-created',
    title: 'GET /tasks filters={"created":"{\\"$gte\\":...,\\"$lte\\":...}"} (console date range)',
    request: {
      method: 'GET',
      path: `/tasks${CONSOLE_PAGE({ created: JSON.stringify({ $gte: '2024-05-02T00:00:00+00:00', $lte: '2024-05-03T23:59:59+00:00' }) })}`,
      auth: ROOT,
    },
  },
  {
    id: 'list-page-2',
    title: 'GET /tasks?filterPage=1&filterLimit=2',
    request: { method: 'GET', path: `/tasks${q({}, 1, 2)}`, auth: ROOT },
  },
  {
    id: 'list-limit-zero',
    title: 'GET /tasks?filterPage=0&filterLimit=0',
    request: { method: 'GET', path: `/tasks${q({}, 0, 0)}`, auth: ROOT },
  },
  {
    id: 'list-large-limit',
    title: 'GET /tasks?filterPage=0&filterLimit=5000 (no maximum page size)',
    request: { method: 'GET', path: `/tasks${q({}, 0, 5000)}`, auth: ROOT },
  },
  {
    id: 'list-console-poll',
    title: 'GET /tasks?filters={} (console poll, no paging)',
    request: { method: 'GET', path: `/tasks${q({})}`, auth: ROOT },
  },
  { id: 'list-no-filters', title: 'GET /tasks (no query)', request: { method: 'GET', path: '/tasks', auth: ROOT } },
  {
    id: 'list-bad-json',
    title: 'GET /tasks filters=not-json',
    request: { method: 'GET', path: `/tasks${q('{status:', 0, 10)}`, auth: ROOT },
  },
  {
    id: 'list-operator',
    title: 'GET /tasks filters={"status":{"$ne":"Completed"}}',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE({ status: { $ne: 'Completed' } })}`, auth: ROOT },
  },
  {
    id: 'list-unknown-field',
    title: 'GET /tasks filters={"remainingTransactions":0}',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE({ remainingTransactions: 0 })}`, auth: ROOT },
  },
  {
    id: 'list-non-admin',
    title: 'GET /tasks by a non-admin',
    request: { method: 'GET', path: `/tasks${CONSOLE_PAGE()}`, auth: { as: 'rerunner' } },
  },

  // --- GET /tasks/:id ---
  {
    id: 'get',
    title: 'GET /tasks/:id?filterPage=0&filterLimit=10&filters={}',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({}, 0, 10)}`, auth: ROOT },
  },
  {
    id: 'get-page',
    title: 'GET /tasks/:id?filterPage=1&filterLimit=2',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({}, 1, 2)}`, auth: ROOT },
  },
  {
    id: 'get-tstatus',
    title: 'GET /tasks/:id filters={"tstatus":"Completed"}',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({ tstatus: 'Completed' }, 0, 10)}`, auth: ROOT },
  },
  {
    id: 'get-rerun-status',
    title: 'GET /tasks/:id filters={"rerunStatus":"Successful"}',
    request: {
      method: 'GET',
      path: `/tasks/${hex(TASK.completed)}${q({ rerunStatus: 'Successful' }, 0, 10)}`,
      auth: ROOT,
    },
  },
  {
    id: 'get-has-errors-yes',
    title: 'GET /tasks/:id filters={"hasErrors":"yes"}',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({ hasErrors: 'yes' }, 0, 10)}`, auth: ROOT },
  },
  {
    id: 'get-has-errors-no',
    title: 'GET /tasks/:id filters={"hasErrors":"no"}',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({ hasErrors: 'no' }, 0, 10)}`, auth: ROOT },
  },
  {
    id: 'get-limit-zero',
    title: 'GET /tasks/:id?filterPage=0&filterLimit=0 (progress poll)',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({}, 0, 0)}`, auth: ROOT },
  },
  {
    id: 'get-large-limit',
    title: 'GET /tasks/:id?filterPage=0&filterLimit=100000 (no maximum page size)',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({}, 0, 100000)}`, auth: ROOT },
  },
  {
    id: 'get-non-admin',
    title: 'GET /tasks/:id by a non-admin',
    request: { method: 'GET', path: `/tasks/${hex(TASK.paused)}${q({}, 0, 10)}`, auth: { as: 'viewer' } },
  },
  {
    id: 'get-no-paging',
    title: 'GET /tasks/:id?filters={} (no paging)',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}${q({})}`, auth: ROOT },
  },
  {
    id: 'get-no-query',
    title: 'GET /tasks/:id (no query)',
    request: { method: 'GET', path: `/tasks/${hex(TASK.completed)}`, auth: ROOT },
  },
  {
    id: 'get-missing',
    title: 'GET /tasks/:id of no task',
    request: { method: 'GET', path: `/tasks/${hex(TASK.missing)}${q({}, 0, 10)}`, auth: ROOT },
  },
  {
    id: 'get-bad-id',
    title: 'GET /tasks/abc',
    request: { method: 'GET', path: `/tasks/abc${q({}, 0, 10)}`, auth: ROOT },
  },

  // --- PUT /tasks/:id ---
  {
    id: 'pause',
    title: 'PUT /tasks/:id {status:"Paused"} (Queued task)',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.queued)}`, auth: ROOT, body: { status: 'Paused' } },
  },
  {
    id: 'resume',
    title: 'PUT /tasks/:id {status:"Queued"} (Paused task)',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.paused)}`, auth: ROOT, body: { status: 'Queued' } },
  },
  {
    id: 'cancel',
    title: 'PUT /tasks/:id {status:"Cancelled"} (Processing task)',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.processing)}`, auth: ROOT, body: { status: 'Cancelled' } },
  },
  {
    id: 'pause-paused',
    title: 'PUT /tasks/:id {status:"Paused"} (already Paused)',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.paused)}`, auth: ROOT, body: { status: 'Paused' } },
  },
  {
    id: 'pause-console-echo',
    title: 'PUT /tasks/:id with the task echoed back, status changed (console)',
    effects: true,
    request: {
      method: 'PUT',
      path: `/tasks/${hex(TASK.queued)}`,
      auth: ROOT,
      body: {
        _id: hex(TASK.queued),
        status: 'Paused',
        created: '2024-05-01T10:00:00.000Z',
        user: 'root@openhim.org',
        remainingTransactions: 3,
        totalTransactions: 3,
        batchSize: 1,
        __v: 0,
      },
    },
  },
  {
    id: 'update-completed',
    title: 'PUT /tasks/:id {status:"Queued"} (Completed task)',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.completed)}`, auth: ROOT, body: { status: 'Queued' } },
  },
  {
    id: 'update-bogus-status',
    title: 'PUT /tasks/:id {status:"Bogus"}',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.queued)}`, auth: ROOT, body: { status: 'Bogus' } },
  },
  {
    id: 'update-other-field',
    title: 'PUT /tasks/:id {batchSize: 5} (no status)',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.queued)}`, auth: ROOT, body: { batchSize: 5 } },
  },
  {
    id: 'update-missing',
    title: 'PUT /tasks/:id of no task',
    effects: true,
    request: { method: 'PUT', path: `/tasks/${hex(TASK.missing)}`, auth: ROOT, body: { status: 'Paused' } },
  },
  {
    id: 'update-bad-id',
    title: 'PUT /tasks/abc',
    effects: true,
    request: { method: 'PUT', path: '/tasks/abc', auth: ROOT, body: { status: 'Paused' } },
  },
  {
    id: 'update-non-admin',
    title: 'PUT /tasks/:id by a non-admin',
    effects: true,
    request: {
      method: 'PUT',
      path: `/tasks/${hex(TASK.paused)}`,
      auth: { as: 'rerunner' },
      body: { status: 'Queued' },
    },
  },

  // --- DELETE /tasks/:id ---
  {
    id: 'delete',
    title: 'DELETE /tasks/:id',
    effects: true,
    request: { method: 'DELETE', path: `/tasks/${hex(TASK.completed)}`, auth: ROOT },
  },
  {
    id: 'delete-missing',
    title: 'DELETE /tasks/:id of no task',
    effects: true,
    request: { method: 'DELETE', path: `/tasks/${hex(TASK.missing)}`, auth: ROOT },
  },
  {
    id: 'delete-bad-id',
    title: 'DELETE /tasks/abc',
    effects: true,
    request: { method: 'DELETE', path: '/tasks/abc', auth: ROOT },
  },
  {
    id: 'delete-non-admin',
    title: 'DELETE /tasks/:id by a non-admin',
    effects: true,
    request: { method: 'DELETE', path: `/tasks/${hex(TASK.completed)}`, auth: { as: 'rerunner' } },
  },

  // --- other ---
  {
    id: 'cors-preflight',
    title: 'OPTIONS /tasks preflight from a console origin',
    request: {
      method: 'OPTIONS',
      path: '/tasks',
      auth: { none: true },
      headers: { origin: 'https://console.example.org', 'access-control-request-method': 'PUT' },
    },
    // No credentials for an origin CORS_ORIGINS does not list (none here), as 4.0.5 (8.5 allows them to any origin).
    compareHeaders: ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-credentials'],
  },
  {
    id: 'bulkrerun',
    title: 'POST /bulkrerun',
    request: {
      method: 'POST',
      path: '/bulkrerun',
      auth: ROOT,
      body: { filters: { channelID: '0000000000000000000000c9' }, batchSize: 1, pauseQueue: true },
    },
  },
  {
    id: 'bulkrerun-console',
    title: "POST /bulkrerun as OpenHIM 8's console sends it (filters as a JSON string, filterLimit, filterPage)",
    request: {
      method: 'POST',
      path: '/bulkrerun',
      auth: ROOT,
      body: {
        filters: JSON.stringify({
          channelID: '0000000000000000000000c9',
          'request.timestamp': JSON.stringify({ $gte: '2024-05-01T00:00:00+00:00', $lte: '2024-05-01T23:59:59+00:00' }),
          childIDs: JSON.stringify({ $exists: true, $ne: [] }),
        }),
        filterLimit: 1000,
        filterPage: 0,
        batchSize: 1,
        pauseQueue: true,
      },
    },
  },
];

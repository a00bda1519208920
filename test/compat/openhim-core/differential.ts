import { isDeepStrictEqual } from 'node:util';
import { Db, ObjectId } from 'mongodb';
import { passwordRecord, ROOT_EMAIL, ROOT_PASSWORD, sha512 } from '../../support/openhim-auth';
import { HttpResult, request } from '../../support/http';

/**
 * The shared database state every differential case starts from: users, channels, transactions
 * (with their auto-retry entries) and tasks shaped exactly as OpenHIM core 4.0.5 stores them.
 * Fixed ids and dates, so both APIs answer about the same documents.
 */
const oid = (suffix: string) => new ObjectId(suffix.padStart(24, '0'));

export const USERS = {
  root: { email: ROOT_EMAIL, password: ROOT_PASSWORD },
  rerunner: { email: 'rerunner@example.org', password: 'rerunner-password', groups: ['rerunners'] },
  viewer: { email: 'viewer@example.org', password: 'viewer-password', groups: ['viewers'] },
} as const;
export type UserName = keyof typeof USERS;

export const CHANNEL = {
  acl: oid('c1'),
  noAcl: oid('c2'),
  disabled: oid('c3'),
  deleted: oid('c4'),
};

export const TX = {
  acl1: oid('a1'),
  acl2: oid('a2'),
  noAcl: oid('a3'),
  disabled: oid('a4'),
  deleted: oid('a5'),
  /** Not in OpenHIM's auto-retry queue. */
  noRetry: oid('a6'),
  /** A valid id that no transaction has. */
  missing: oid('a9'),
};

export const TASK = {
  queued: oid('f1'),
  paused: oid('f2'),
  completed: oid('f3'),
  processing: oid('f4'),
  /** A valid id that no task has. */
  missing: oid('f9'),
};

const item = (suffix: string, tid: ObjectId, fields: Record<string, unknown> = {}) => ({
  _id: oid(suffix),
  tid: tid.toHexString(),
  tstatus: 'Queued',
  ...fields,
});

/** Tasks as core 4.0.5's mongoose model stores them (items embedded, `__v`). */
function taskFixtures() {
  return [
    {
      _id: TASK.queued,
      status: 'Queued',
      transactions: [item('e11', TX.acl1), item('e12', TX.acl2), item('e13', TX.noAcl)],
      created: new Date('2024-05-01T10:00:00.000Z'),
      user: ROOT_EMAIL,
      remainingTransactions: 3,
      totalTransactions: 3,
      batchSize: 1,
      __v: 0,
    },
    {
      _id: TASK.paused,
      status: 'Paused',
      transactions: [
        item('e21', TX.acl1, { tstatus: 'Completed', rerunID: oid('b21').toHexString(), rerunStatus: 'Successful' }),
        item('e22', TX.acl2),
      ],
      created: new Date('2024-05-02T10:00:00.000Z'),
      user: USERS.rerunner.email,
      remainingTransactions: 1,
      totalTransactions: 2,
      batchSize: 2,
      __v: 0,
    },
    {
      _id: TASK.completed,
      status: 'Completed',
      transactions: [
        item('e31', TX.acl1, { tstatus: 'Completed', rerunID: oid('b31').toHexString(), rerunStatus: 'Successful' }),
        item('e32', TX.acl2, { tstatus: 'Completed', rerunID: oid('b32').toHexString(), rerunStatus: 'Failed' }),
        item('e33', TX.missing, {
          tstatus: 'Failed',
          error: `Transaction ${TX.missing.toHexString()} could not be found`,
        }),
      ],
      created: new Date('2024-05-03T10:00:00.000Z'),
      completedDate: new Date('2024-05-03T10:05:00.000Z'),
      user: ROOT_EMAIL,
      remainingTransactions: 0,
      totalTransactions: 3,
      batchSize: 3,
      __v: 0,
    },
    {
      _id: TASK.processing,
      status: 'Processing',
      transactions: [
        item('e41', TX.acl1, { tstatus: 'Completed', rerunID: oid('b41').toHexString(), rerunStatus: 'Successful' }),
        item('e42', TX.acl2, { tstatus: 'Processing' }),
      ],
      created: new Date('2024-05-04T10:00:00.000Z'),
      user: ROOT_EMAIL,
      remainingTransactions: 1,
      totalTransactions: 2,
      batchSize: 1,
      __v: 0,
    },
  ];
}

function transactionFixture(id: ObjectId, channelID: ObjectId, autoRetry = true) {
  const timestamp = new Date('2024-04-30T09:00:00.000Z');
  return {
    _id: id,
    status: 'Failed',
    clientID: oid('d1'),
    channelID,
    canRerun: true,
    request: {
      path: '/fhir/Patient',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      querystring: '',
      body: '{}',
      timestamp,
    },
    response: { status: 500, headers: {}, body: 'down', timestamp },
    childIDs: [],
    autoRetry,
    autoRetryAttempt: autoRetry ? 2 : 0,
    __v: 0,
  };
}

/** Users and channels: written once (core's root user stays as core created it). */
export async function seedStatic(db: Db): Promise<void> {
  for (const name of ['rerunner', 'viewer'] as const) {
    const user = USERS[name];
    await db.collection('users').insertOne({
      email: user.email,
      firstname: name,
      surname: 'Test',
      groups: [...user.groups],
      ...passwordRecord(user.password),
    });
  }
  await db.collection('channels').insertMany([
    {
      _id: CHANNEL.acl,
      name: 'ACL',
      type: 'http',
      status: 'enabled',
      txRerunAcl: ['rerunners'],
      urlPattern: '^/acl$',
      allow: ['x'],
      routes: [],
    },
    {
      _id: CHANNEL.noAcl,
      name: 'No ACL',
      type: 'http',
      txRerunAcl: [],
      urlPattern: '^/noacl$',
      allow: ['x'],
      routes: [],
    },
    {
      _id: CHANNEL.disabled,
      name: 'Disabled',
      type: 'http',
      status: 'disabled',
      txRerunAcl: ['rerunners'],
      urlPattern: '^/disabled$',
      allow: ['x'],
      routes: [],
    },
    {
      _id: CHANNEL.deleted,
      name: 'Deleted',
      type: 'http',
      status: 'deleted',
      txRerunAcl: ['rerunners'],
      urlPattern: '^/deleted$',
      allow: ['x'],
      routes: [],
    },
  ]);
}

/** Puts tasks, task items, transactions and auto-retry entries back to the fixture state. */
export async function resetState(db: Db, tasksCollection = 'tasks'): Promise<void> {
  await db.collection(tasksCollection).deleteMany({});
  await db.collection('taskitems').deleteMany({});
  await db.collection(tasksCollection).insertMany(taskFixtures());
  await db.collection('transactions').deleteMany({});
  const transactions = [
    transactionFixture(TX.acl1, CHANNEL.acl),
    transactionFixture(TX.acl2, CHANNEL.acl),
    transactionFixture(TX.noAcl, CHANNEL.noAcl),
    transactionFixture(TX.disabled, CHANNEL.disabled),
    transactionFixture(TX.deleted, CHANNEL.deleted),
    transactionFixture(TX.noRetry, CHANNEL.acl, false),
  ];
  await db.collection('transactions').insertMany(transactions);
  await db.collection('autoretries').deleteMany({});
  await db
    .collection('autoretries')
    .insertMany(
      transactions
        .filter((tx) => tx.autoRetry)
        .map((tx) => ({ transactionID: tx._id, channelID: tx.channelID, requestTimestamp: tx.request.timestamp })),
    );
}

// --- requests ---------------------------------------------------------------------------------

/** How a case authenticates: the same headers go to both APIs. */
export type AuthSpec =
  | {
      as: UserName;
      variant?:
        | 'iso'
        | 'dateString'
        | 'upperEmail'
        | 'badToken'
        | 'staleTs'
        | 'futureTs'
        | 'unparseableTs'
        | 'emptySalt'
        | 'noToken'
        | 'userSaltAsSalt';
    }
  | { unknownUser: true }
  | { basic: UserName; password?: string }
  | { none: true };

export interface DiffRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'OPTIONS';
  path: string;
  auth: AuthSpec;
  body?: string | object;
  headers?: Record<string, string>;
}

export interface DiffCase {
  id: string;
  /** What the case sends, in words (the README table names it). */
  title: string;
  request: DiffRequest;
  /** Compare the state each API leaves behind (tasks as the API shows them, transactions' retry fields). */
  effects?: boolean;
  /** Response headers to compare besides the media type. */
  compareHeaders?: string[];
}

async function userSalt(db: Db, email: string): Promise<string> {
  const user = await db.collection('users').findOne({ email });
  if (!user) throw new Error(`no user ${email}`);
  return user.passwordSalt as string;
}

/** The auth headers of a case, computed once and sent to both sides. */
export async function authHeaders(db: Db, auth: AuthSpec): Promise<Record<string, string>> {
  if ('none' in auth) return {};
  if ('unknownUser' in auth) {
    const ts = new Date().toISOString();
    return {
      'auth-username': 'nobody@example.org',
      'auth-ts': ts,
      'auth-salt': 'abc',
      'auth-token': sha512(sha512('x') + 'abc' + ts),
    };
  }
  if ('basic' in auth) {
    const user = USERS[auth.basic];
    return {
      authorization: `Basic ${Buffer.from(`${user.email}:${auth.password ?? user.password}`).toString('base64')}`,
    };
  }
  const user = USERS[auth.as];
  const storedSalt = await userSalt(db, user.email);
  const passwordHash = sha512(storedSalt + user.password);
  const now = new Date();
  let ts = now.toISOString();
  let salt = 'b0c0ffee1234';
  let email: string = user.email;
  switch (auth.variant) {
    case 'dateString':
      ts = now.toString();
      break;
    case 'upperEmail':
      email = email.toUpperCase();
      break;
    case 'staleTs':
      ts = new Date(now.getTime() - 60_000).toISOString();
      break;
    case 'futureTs':
      ts = new Date(now.getTime() + 60_000).toISOString();
      break;
    case 'unparseableTs':
      ts = 'not a date';
      break;
    case 'userSaltAsSalt':
      salt = storedSalt;
      break;
  }
  const headers: Record<string, string> = {
    'auth-username': email,
    'auth-ts': ts,
    'auth-salt': salt,
    'auth-token': sha512(passwordHash + salt + ts),
  };
  if (auth.variant === 'badToken') headers['auth-token'] = sha512('wrong' + salt + ts);
  if (auth.variant === 'emptySalt') headers['auth-salt'] = '';
  if (auth.variant === 'noToken') delete headers['auth-token'];
  return headers;
}

// --- observing --------------------------------------------------------------------------------

export interface Observed {
  status: number;
  mediaType: string;
  body: unknown;
  headers: Record<string, string>;
  effects?: unknown;
}

const FIXTURE_TASK_IDS = new Set(Object.values(TASK).map((id) => id.toHexString()));

/** Ids and times that legitimately differ between two runs of the same request. */
export function normalizeText(text: string): string {
  return text.replace(/created task with id [0-9a-f]{24}/, 'created task with id <new>');
}

/** Newly created task ids and their creation times become placeholders; fixture ids stay. */
export function normalizeValue(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((entry) => normalizeValue(entry));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const id = (value as { _id?: unknown })._id;
    const isNewTask = typeof id === 'string' && 'status' in value && !FIXTURE_TASK_IDS.has(id);
    for (const [k, v] of Object.entries(value)) {
      if (isNewTask && k === '_id') out[k] = '<new>';
      else if (isNewTask && k === 'created') out[k] = '<now>';
      else out[k] = normalizeValue(v, k);
    }
    // Items of a new task carry generated _ids.
    if (key === '' && isNewTask && Array.isArray(out.transactions)) {
      out.transactions = (out.transactions as Array<Record<string, unknown>>).map(({ _id: _ignored, ...rest }) => rest);
    }
    return out;
  }
  if (key === 'ts' && typeof value === 'string') return '<server time>';
  return value;
}

function parseBody(result: HttpResult): { mediaType: string; body: unknown } {
  const mediaType = String(result.headers['content-type'] ?? '')
    .split(';')[0]
    .trim();
  if (mediaType === 'application/json' && result.body) {
    try {
      return { mediaType, body: normalizeValue(JSON.parse(result.body)) };
    } catch {
      // fall through: compared as text
    }
  }
  return { mediaType, body: normalizeText(result.body) };
}

/** What a client sees after a mutating request: every task through the same API, and the transactions' retry state. */
/**
 * Fields our tasks carry beyond OpenHIM's (the operator features: row `additive-task-fields` of
 * differences.ts). Clients ignore them; the effects compare what both sides share.
 */
const ADDITIVE_TASK_FIELDS = ['history', 'pauseAfterFailures', 'startAt', 'rerunOf'];

function withoutAdditiveFields(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  return Object.fromEntries(Object.entries(body).filter(([key]) => !ADDITIVE_TASK_FIELDS.includes(key)));
}

async function observeEffects(db: Db, baseUrl: string, tasksCollection: string): Promise<unknown> {
  const tasks = [];
  const ids = (
    await db
      .collection(tasksCollection)
      .find({}, { projection: { _id: 1 } })
      .toArray()
  )
    .map((doc) => doc._id.toHexString())
    .sort();
  for (const id of ids) {
    const headers = await authHeaders(db, { as: 'root' });
    const answer = await request(
      `${baseUrl}/tasks/${id}?filterPage=0&filterLimit=100&filters=${encodeURIComponent('{}')}`,
      { headers },
    );
    tasks.push({ status: answer.status, task: withoutAdditiveFields(parseBody(answer).body) });
  }
  const transactions = await db
    .collection('transactions')
    .find({}, { projection: { autoRetry: 1, autoRetryAttempt: 1 } })
    .sort({ _id: 1 })
    .toArray();
  const retries = await db
    .collection('autoretries')
    .find({}, { projection: { _id: 0, transactionID: 1 } })
    .sort({ transactionID: 1 })
    .toArray();
  return { tasks, transactions, autoretries: retries.map((entry) => String(entry.transactionID)) };
}

export async function runSide(
  db: Db,
  baseUrl: string,
  testCase: DiffCase,
  headers: Record<string, string>,
  tasksCollection = 'tasks',
): Promise<Observed> {
  await resetState(db, tasksCollection);
  const { request: spec } = testCase;
  const answer = await request(`${baseUrl}${spec.path}`, {
    method: spec.method,
    headers: { ...headers, ...(spec.headers ?? {}) },
    body: spec.body,
  });
  const { mediaType, body } = parseBody(answer);
  const compared: Record<string, string> = {};
  for (const name of testCase.compareHeaders ?? []) compared[name] = String(answer.headers[name] ?? '<absent>');
  const observed: Observed = { status: answer.status, mediaType, body, headers: compared };
  if (testCase.effects) observed.effects = await observeEffects(db, baseUrl, tasksCollection);
  return observed;
}

/** Which parts of two observations differ (empty: the same). */
export function differingParts(openhim: Observed, ours: Observed): string[] {
  const parts: string[] = [];
  if (openhim.status !== ours.status) parts.push('status');
  if (openhim.mediaType !== ours.mediaType) parts.push('media type');
  if (!isDeepStrictEqual(openhim.body, ours.body)) parts.push('body');
  if (!isDeepStrictEqual(openhim.headers, ours.headers)) parts.push('headers');
  if (!isDeepStrictEqual(openhim.effects, ours.effects)) parts.push('effects');
  return parts;
}

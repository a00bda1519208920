import type { INestApplication } from '@nestjs/common';
import { getQueueToken } from '@nestjs/bull';
import type { Job, Queue } from 'bull';
import { Db, ObjectId } from 'mongodb';
import { headersFor, insertUser, ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from './openhim-auth';

/** Users of the tasks API tests: OpenHIM's root, a second admin, a user the ACLs name, and one they do not. */
export const USERS = {
  root: { email: ROOT_EMAIL, password: ROOT_PASSWORD, groups: ['admin'] },
  admin: { email: 'ops-admin@example.org', password: 'admin-password', groups: ['admin'] },
  rerunner: { email: 'rerunner@example.org', password: 'rerunner-password', groups: ['clerks', 'rerunners'] },
  viewer: { email: 'viewer@example.org', password: 'viewer-password', groups: ['viewers'] },
} as const;
export type UserName = keyof typeof USERS;

const id = (hex: string) => new ObjectId(hex);

/** Channels: one whose txRerunAcl names `rerunners`, one without ACL, one disabled, one deleted. */
export const CHANNELS = {
  acl: {
    _id: id('00000000000000000000c001'),
    name: 'Rerunnable',
    status: 'enabled',
    type: 'http',
    txRerunAcl: ['rerunners'],
  },
  noAcl: { _id: id('00000000000000000000c002'), name: 'Admins only', type: 'http', txRerunAcl: [] as string[] },
  disabled: {
    _id: id('00000000000000000000c003'),
    name: 'Disabled',
    status: 'disabled',
    type: 'http',
    txRerunAcl: ['rerunners'],
  },
  deleted: {
    _id: id('00000000000000000000c004'),
    name: 'Deleted',
    status: 'deleted',
    type: 'http',
    txRerunAcl: ['rerunners'],
  },
} as const;
export type ChannelName = keyof typeof CHANNELS;

export const CLIENT_ID = id('00000000000000000000d001');

export interface TransactionOptions {
  _id?: ObjectId;
  channel?: ChannelName | null;
  status?: string;
  timestamp?: Date;
  method?: string;
  path?: string;
  responseStatus?: number;
  autoRetry?: boolean;
}

/** An OpenHIM transaction document as core stores it. */
export function transactionDoc(options: TransactionOptions = {}) {
  const timestamp = options.timestamp ?? new Date('2024-05-01T10:00:00Z');
  return {
    _id: options._id ?? new ObjectId(),
    clientID: CLIENT_ID,
    ...(options.channel === null ? {} : { channelID: CHANNELS[options.channel ?? 'acl']._id }),
    canRerun: true,
    request: {
      host: 'localhost',
      port: '5001',
      path: options.path ?? '/fhir/Patient',
      headers: { 'content-type': 'application/json' },
      querystring: '',
      body: '{"resourceType":"Patient"}',
      method: options.method ?? 'POST',
      timestamp,
    },
    response: { status: options.responseStatus ?? 500, headers: {}, body: 'upstream down', timestamp },
    status: options.status ?? 'Failed',
    autoRetry: options.autoRetry ?? true,
    autoRetryAttempt: options.autoRetry === false ? 0 : 2,
    childIDs: [],
    __v: 0,
  };
}

export async function seedUsersAndChannels(db: Db): Promise<void> {
  for (const name of ['admin', 'rerunner', 'viewer'] as const)
    await insertUser(db, { ...USERS[name], groups: [...USERS[name].groups] });
  await db.collection('channels').insertMany(Object.values(CHANNELS).map((channel) => ({ ...channel })));
}

/** Fresh token headers (they are valid for AUTH_WINDOW_SECONDS). */
export function authAs(db: Db, user: UserName): Promise<Record<string, string>> {
  return headersFor(db, USERS[user].email, USERS[user].password);
}

/**
 * Reads every fixture user's salt once; the returned function then makes fresh token headers
 * synchronously (so supertest chains stay chains).
 */
export async function tokenSigner(db: Db): Promise<(user: UserName) => Record<string, string>> {
  const salts = new Map<UserName, string>();
  for (const name of Object.keys(USERS) as UserName[]) {
    const { email } = USERS[name];
    const passport = await db.collection('passports').findOne({ email, protocol: 'token' });
    const record = await db.collection('users').findOne({ email });
    const salt = (passport?.passwordSalt ?? record?.passwordSalt) as string | undefined;
    if (!salt) throw new Error(`No user ${email} in the test database`);
    salts.set(name, salt);
  }
  return (user) => tokenHeaders(USERS[user].email, USERS[user].password, salts.get(user)!);
}

/**
 * A task as OpenHIM core stores it: items embedded in `transactions[]`, no fields of ours.
 * `items` gives each embedded entry's state.
 */
export function legacyTaskDoc(options: {
  status?: string;
  created?: Date;
  user?: string;
  batchSize?: number;
  items: Array<{ tid: string; tstatus?: string; error?: string; rerunID?: string; rerunStatus?: string }>;
}) {
  const remaining = options.items.filter(
    (item) => !item.tstatus || item.tstatus === 'Queued' || item.tstatus === 'Processing',
  ).length;
  return {
    _id: new ObjectId(),
    status: options.status ?? 'Paused',
    transactions: options.items.map((item) => ({ _id: new ObjectId(), tstatus: 'Queued', ...item })),
    created: options.created ?? new Date('2023-01-01T00:00:00Z'),
    user: options.user ?? ROOT_EMAIL,
    remainingTransactions: remaining,
    totalTransactions: options.items.length,
    batchSize: options.batchSize ?? 1,
    __v: 0,
  };
}

/** The rerun queue of a running API (the workers do not run in these tests: jobs stay waiting). */
export function rerunQueue(app: INestApplication): Queue {
  return app.get<Queue>(getQueueToken('rerun'));
}

/** Lane job ids queued for a task, sorted. */
export async function laneJobs(app: INestApplication, taskId: string): Promise<string[]> {
  const jobs: Job[] = await rerunQueue(app).getJobs(['waiting', 'delayed', 'active', 'paused']);
  return jobs
    .filter((job) => job?.data?.taskId === taskId)
    .map((job) => String(job.id))
    .sort();
}

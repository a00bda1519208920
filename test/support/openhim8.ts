import bcryptjs from 'bcryptjs';
import Keygrip from 'keygrip';
import { randomUUID } from 'node:crypto';
import type { Db, ObjectId } from 'mongodb';

/**
 * Fixtures of OpenHIM core 8.5 as it leaves the database and the browser: koa-session cookies
 * signed by keygrip with core's `api.sessionKey`, session documents as its MongooseStore writes them,
 * users made by its console (provider `local`, a bcrypt `local` passport, no sha fields).
 */

type SessionDocument = { _id: string; data?: unknown; updatedAt?: Date };

/** Core's default `api.sessionKey` (config/default.json). */
export const CORE_DEFAULT_SESSION_KEY = 'r8q,+&1LM3)CD*zAGpx1xm{NeQhc;#';
/** Core's default `api.maxAge`. */
export const CORE_SESSION_MAX_AGE_MS = 7_200_000;

/** The `Cookie` header a browser sends after logging in at core: `koa.sess` and its signature. */
export function coreSessionCookie(sessionId: string, key = CORE_DEFAULT_SESSION_KEY): string {
  const signature = new Keygrip([key]).sign(`koa.sess=${sessionId}`);
  return `koa.sess=${sessionId}; koa.sess.sig=${signature}`;
}

/** A session document as core's store saves it after `ctx.login(user)`; returns its id. */
export async function insertCoreSession(
  db: Db,
  email: string,
  options: { expiresInMs?: number; id?: string } = {},
): Promise<string> {
  const id = options.id ?? randomUUID();
  const now = Date.now();
  await db.collection<SessionDocument>('sessions').insertOne({
    _id: id,
    data: {
      passport: { user: email },
      _expire: now + (options.expiresInMs ?? CORE_SESSION_MAX_AGE_MS),
      _maxAge: CORE_SESSION_MAX_AGE_MS,
    },
    updatedAt: new Date(now),
  });
  return id;
}

/** What core's session middleware reads back: the data while `_expire` is in the future. */
export async function coreReadsSession(db: Db, sessionId: string): Promise<{ email: string } | null> {
  const session = await db.collection<SessionDocument>('sessions').findOne({ _id: sessionId });
  const data = session?.data as { passport?: { user?: string }; _expire?: number } | undefined;
  if (!data || typeof data._expire !== 'number' || data._expire <= Date.now()) return null;
  return data.passport?.user ? { email: data.passport.user } : null;
}

/** Whether core (keygrip with its key list) accepts this `Set-Cookie` pair for the session. */
export function coreAcceptsCookies(setCookie: string[], key = CORE_DEFAULT_SESSION_KEY): string | null {
  const value = (name: string) =>
    setCookie
      .find((cookie) => cookie.startsWith(`${name}=`))
      ?.slice(name.length + 1)
      .split(';')[0];
  const id = value('koa.sess');
  const signature = value('koa.sess.sig');
  if (!id || !signature) return null;
  return new Keygrip([key]).verify(`koa.sess=${id}`, signature) ? id : null;
}

/** A user made through OpenHIM 8's console or API: `provider: 'local'` and a bcrypt `local` passport only. */
export async function insertV8User(
  db: Db,
  user: { email: string; password: string; groups: string[]; cost?: number },
): Promise<ObjectId> {
  const { insertedId } = await db.collection('users').insertOne({
    firstname: user.email.split('@')[0],
    surname: 'Eight',
    email: user.email,
    groups: user.groups,
    provider: 'local',
    settings: {},
  });
  await db.collection('passports').insertOne({
    protocol: 'local',
    email: user.email,
    user: insertedId,
    password: await bcryptjs.hash(user.password, user.cost ?? 4),
  });
  return insertedId;
}

import { createHash, randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';

export const ROOT_EMAIL = 'root@openhim.org';
export const ROOT_PASSWORD = 'openhim-password';

export const sha512 = (text: string) => createHash('sha512').update(text).digest('hex');

/** OpenHIM's stored hash: sha512(salt + password). */
export function passwordRecord(password: string, salt = randomBytes(16).toString('hex')) {
  return { passwordAlgorithm: 'sha512', passwordSalt: salt, passwordHash: sha512(salt + password) };
}

/**
 * The four token headers as OpenHIM's console computes them: token = sha512(passwordHash + salt + ts),
 * where passwordHash = sha512(userSalt + password). `salt` defaults to a random one per request.
 */
export function tokenHeaders(
  email: string,
  password: string,
  userSalt: string,
  options: { salt?: string; ts?: string } = {},
): Record<string, string> {
  const salt = options.salt ?? randomBytes(16).toString('hex');
  const ts = options.ts ?? new Date().toISOString();
  const passwordHash = sha512(userSalt + password);
  return { 'auth-username': email, 'auth-ts': ts, 'auth-salt': salt, 'auth-token': sha512(passwordHash + salt + ts) };
}

/** Inserts an OpenHIM user with legacy password fields; returns its salt. */
export async function insertUser(
  db: Db,
  user: { email: string; password: string; groups: string[] },
): Promise<{ salt: string }> {
  const record = passwordRecord(user.password);
  await db.collection('users').insertOne({
    email: user.email,
    firstname: user.email.split('@')[0],
    surname: 'Test',
    groups: user.groups,
    ...record,
  });
  return { salt: record.passwordSalt };
}

/** Token headers for a user whose salt is read from the database (as the docs' clients do). */
export async function headersFor(db: Db, email: string, password: string): Promise<Record<string, string>> {
  const user = await db.collection('users').findOne({ email });
  const passport = await db.collection('passports').findOne({ email, protocol: 'token' });
  const salt = (passport?.passwordSalt ?? user?.passwordSalt) as string | undefined;
  if (!salt) throw new Error(`No user ${email} in the test database`);
  return tokenHeaders(email, password, salt);
}

/**
 * Inserts an OpenHIM ≥ 7.2 user: the `users` document without password fields (unless `legacy`
 * fields are given) and a `token` passport carrying the sha512 fields. Returns the passport's salt.
 */
export async function insertPassportUser(
  db: Db,
  user: { email: string; password: string; groups: string[]; legacy?: Record<string, unknown> },
): Promise<{ salt: string }> {
  const { insertedId } = await db.collection('users').insertOne({
    email: user.email,
    firstname: user.email.split('@')[0],
    surname: 'Test',
    groups: user.groups,
    ...(user.legacy ?? {}),
  });
  const record = passwordRecord(user.password);
  await db.collection('passports').insertOne({ protocol: 'token', email: user.email, user: insertedId, ...record });
  return { salt: record.passwordSalt };
}

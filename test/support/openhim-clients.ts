import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha512 } from './openhim-auth';

/** The documented bash client (test/fixtures/openhim-api.sh). */
export const BASH_CLIENT = join(__dirname, '..', 'fixtures', 'openhim-api.sh');

/** The seed's sample body for `POST /tasks`. */
export const SAMPLE_TASK_BODY =
  '{"tids":["5bb777777bbb66cc5d4444ee","5ceec0bb3ca344f9a30df633","5af732d1cbf94ba88b8f0bc0"],"batchSize":2,"paused":true}';

export interface ClientResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * Runs `openhim-api.sh USER PASS <curlArgs>` as a subprocess, as an operator would. The status is
 * read from curl's `-w` output (the client passes every argument through to curl).
 */
export function runBashClient(
  user: string,
  password: string,
  curlArgs: string[],
): Promise<{ status: number; body: string }> {
  const marker = 'OPENHIM_TEST_STATUS:';
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [BASH_CLIENT, user, password, '-s', '-w', `\n${marker}%{response_code}`, ...curlArgs],
      { timeout: 20000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`bash client failed: ${error.message}\n${stderr}`));
        const at = stdout.lastIndexOf(marker);
        if (at < 0) return reject(new Error(`bash client printed no status:\n${stdout}\n${stderr}`));
        resolve({
          status: Number(stdout.slice(at + marker.length).trim()),
          body: stdout.slice(0, at).replace(/\n$/, ''),
        });
      },
    );
  });
}

/** Writes a request body to a temporary file for `curl -d @file`. */
export async function writeTempFile(content: string): Promise<string> {
  const path = join(tmpdir(), `openhim-sample-${process.pid}-${randomBytes(4).toString('hex')}.json`);
  await writeFile(path, content);
  return path;
}

/**
 * A request with node's https module (self-signed certificate accepted, as OpenHIM's clients do).
 * Header values are passed as given, so a Date object goes out as its `toString()`.
 */
export function httpsRequest(
  baseUrl: string,
  options: { method?: string; path: string; headers?: Record<string, unknown>; body?: string },
): Promise<ClientResponse> {
  const url = new URL(options.path, baseUrl);
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers as Record<string, string>,
        rejectUnauthorized: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    if (options.body !== undefined) request.write(options.body);
    request.end();
  });
}

/**
 * The docs' Node client (`genAuthHeaders`): the user's salt from GET /authenticate, the *client's*
 * clock, and a Date object as the `auth-ts` header value (node serialises it with toString()).
 */
export async function nodeClientHeaders(
  baseUrl: string,
  email: string,
  password: string,
  options: { clockOffsetMs?: number } = {},
): Promise<Record<string, unknown>> {
  const auth = await httpsRequest(baseUrl, { path: `/authenticate/${encodeURIComponent(email)}` });
  if (auth.status !== 200) throw new Error(`GET /authenticate answered ${auth.status}: ${auth.body}`);
  const { salt } = JSON.parse(auth.body) as { salt: string };
  const now = new Date(Date.now() + (options.clockOffsetMs ?? 0));
  const passhash = sha512(salt + password);
  const token = sha512(passhash + salt + now);
  return { 'auth-username': email, 'auth-ts': now, 'auth-salt': salt, 'auth-token': token };
}

/**
 * The classic console (AngularJS): it learns the server clock offset at login and sends a random hex
 * salt and `new Date(now + offset).toISOString()` with every request.
 */
export function consoleHeaders(
  email: string,
  password: string,
  userSalt: string,
  options: { clockOffsetMs?: number } = {},
): Record<string, string> {
  const salt = randomBytes(16).toString('hex');
  const ts = new Date(Date.now() + (options.clockOffsetMs ?? 0)).toISOString();
  const passwordHash = sha512(userSalt + password);
  return { 'auth-username': email, 'auth-ts': ts, 'auth-salt': salt, 'auth-token': sha512(passwordHash + salt + ts) };
}

export function basicAuthorization(email: string, password: string): string {
  return `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}`;
}

import http, { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { tokenHeaders } from './openhim-auth';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | object;
  timeoutMs?: number;
}

/** One HTTP(S) exchange, self-signed certificates accepted (OpenHIM and we ship one), no keep-alive. */
export function request(url: string, options: HttpOptions = {}): Promise<HttpResult> {
  const target = new URL(url);
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string'
        ? options.body
        : JSON.stringify(options.body);
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (
    body !== undefined &&
    typeof options.body === 'object' &&
    !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')
  ) {
    headers['content-type'] = 'application/json';
  }
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method: options.method ?? 'GET',
        headers,
        rejectUnauthorized: false,
        agent: false,
        timeout: options.timeoutMs ?? 20000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.once('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no answer in time`)));
    req.once('error', reject);
    req.end(body);
  });
}

/** Users' salts by API and email, kept as the console keeps them from login on. */
const salts = new Map<string, string>();

/**
 * Token headers for an OpenHIM-style API, computed as the console does: the user's salt from that
 * API's own `GET /authenticate/:email` (asked once, as at login: the endpoint is rate-limited per
 * client), a random per-request salt, the current time.
 */
export async function tokenAuth(baseUrl: string, email: string, password: string): Promise<Record<string, string>> {
  const key = `${baseUrl} ${email}`;
  let salt = salts.get(key);
  if (salt === undefined) {
    const answer = await request(`${baseUrl}/authenticate/${encodeURIComponent(email)}`);
    if (answer.status !== 200) throw new Error(`GET ${baseUrl}/authenticate/${email}: ${answer.status} ${answer.body}`);
    salt = (JSON.parse(answer.body) as { salt: string }).salt;
    salts.set(key, salt);
  }
  return tokenHeaders(email, password, salt);
}

/** An API call with fresh token headers (OpenHIM's window is ±10 s, so headers are made per call). */
export async function apiCall(
  baseUrl: string,
  user: { email: string; password: string },
  path: string,
  options: HttpOptions = {},
): Promise<HttpResult> {
  const auth = await tokenAuth(baseUrl, user.email, user.password);
  return request(`${baseUrl}${path}`, { ...options, headers: { ...auth, ...(options.headers ?? {}) } });
}

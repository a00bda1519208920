import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { DestinationStream, Level, LevelWithSilent, LoggerOptions } from 'pino';
import type { Options } from 'pino-http';
import type { LogFormat, LogLevel } from '../../config/app-config';

export type ServiceRole = 'api' | 'worker' | 'all';

/** LOG_LEVEL names to pino's (Nest's `verbose` is pino's `trace`). */
export function pinoLevel(level: LogLevel): Level {
  return level === 'verbose' ? 'trace' : level;
}

/**
 * Never logged, whatever the level: OpenHIM token headers, Basic credentials, cookies and any
 * password-like field of a logged object (one level deep, where pino's wildcards reach).
 * `auth-salt` is not secret, but it is half of a token and nobody needs it in a log.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers["auth-token"]',
  'req.headers["auth-salt"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'token',
  '*.token',
];
export const REDACTED = '[Redacted]';

/** An incoming x-request-id is kept when it is short and printable (it ends up in every log line). */
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
export const REQUEST_ID_HEADER = 'x-request-id';

export function requestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  const id = typeof incoming === 'string' && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader(REQUEST_ID_HEADER, id);
  return id;
}

const QUIET_PATHS = /^\/(health|metrics)(\/|\?|$)/;

/** Failures stand out; health checks and scrapes (every few seconds) only show at debug. */
export function requestLogLevel(req: IncomingMessage, res: ServerResponse, error?: Error): LevelWithSilent {
  if (error || res.statusCode >= 500) return 'error';
  if (res.statusCode >= 400) return 'warn';
  return QUIET_PATHS.test(req.url ?? '') ? 'debug' : 'info';
}

/** Request headers worth a log line; everything else (credentials included) is left out. */
const LOGGED_HEADERS = ['user-agent', 'content-type', 'content-length', 'x-forwarded-for', 'origin', 'auth-username'];

interface SerializedRequest {
  id: unknown;
  method: string;
  url: string;
  remoteAddress?: string;
  headers: Record<string, unknown>;
}

function requestSummary(req: SerializedRequest) {
  const headers = Object.fromEntries(
    LOGGED_HEADERS.filter((name) => req.headers[name] !== undefined).map((name) => [name, req.headers[name]]),
  );
  return { id: req.id, method: req.method, url: req.url, remoteAddress: req.remoteAddress, headers };
}

function pathOf(req: IncomingMessage): string {
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
}

export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
  role: ServiceRole;
}

/** pino-pretty for `LOG_FORMAT=pretty`, or for `auto` when stdout is a terminal; JSON lines otherwise. */
export function wantsPretty(format: LogFormat): boolean {
  return format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
}

/** The process logger's options and stream: one JSON object per line, or pino-pretty in a terminal. */
export function pinoOptions(settings: LogSettings): [LoggerOptions, DestinationStream] {
  const options: LoggerOptions = {
    level: pinoLevel(settings.level),
    base: { pid: process.pid, hostname: hostname(), role: settings.role },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACTED_PATHS, censor: REDACTED },
  };
  const stream = wantsPretty(settings.format) ? prettyStream() : undefined;
  if (stream) return [options, stream];
  // Level names instead of numbers, for log platforms and people reading raw lines.
  options.formatters = { level: (label) => ({ level: label }) };
  // process.stdout is synchronous on Linux (files, pipes, terminals): lines logged just before
  // process.exit are not lost, and whatever hooks stdout (tests) sees them.
  return [options, process.stdout];
}

/** What pino-http adds for HTTP requests: one line per request, request ids, levels by outcome. */
export function httpLogOptions(): Options {
  return {
    genReqId: requestId,
    serializers: {
      req: requestSummary,
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    // Lines logged while handling a request carry its id only, not the whole request again.
    quietReqLogger: true,
    customLogLevel: requestLogLevel,
    customSuccessMessage: (req, res, ms) => `${req.method} ${pathOf(req)} ${res.statusCode} ${Math.round(ms)} ms`,
    customErrorMessage: (req, res, error) => `${req.method} ${pathOf(req)} ${res.statusCode} failed: ${error.message}`,
  };
}

/** pino-http's options for a logger of its own (the service shares the process logger instead). */
export function pinoHttpOptions(settings: LogSettings): [Options, DestinationStream] {
  const [options, stream] = pinoOptions(settings);
  return [{ ...(options as Options), ...httpLogOptions() }, stream];
}

/** pino-pretty when it is installed (a dev dependency: production images log JSON). */
function prettyStream(): DestinationStream | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as (options: Record<string, unknown>) => DestinationStream;
    return pretty({
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,role,req,res,responseTime,context,reqId,taskId',
      messageFormat: '{if context}[{context}] {end}{if reqId}({reqId}) {end}{if taskId}<task {taskId}> {end}{msg}',
    });
  } catch {
    return undefined;
  }
}

import { plainToInstance, Transform } from 'class-transformer';
import {
  ArrayNotEmpty,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
  validateSync,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value)) ? Number(value) : value;
const toBool = ({ value }: { value: unknown }) => {
  if (value === undefined || value === '') return undefined;
  const text = String(value).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  return value;
};
const toList = ({ value }: { value: unknown }) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((part) => part.trim().toLowerCase())
        .filter(Boolean)
    : value;
const emptyToUndefined = ({ value }: { value: unknown }) => (value === '' ? undefined : value);
/** OpenHIM group names, comma-separated: trimmed, their case kept (OpenHIM compares groups exactly). */
const toGroups = ({ value }: { value: unknown }) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean)
    : value;

/** OpenHIM core's default `api.sessionKey`; it contains a comma, so it is never split. */
export const OPENHIM_DEFAULT_SESSION_KEY = 'r8q,+&1LM3)CD*zAGpx1xm{NeQhc;#';
const toSessionKeys = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (text === OPENHIM_DEFAULT_SESSION_KEY) return [text];
  if (text.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return value;
    }
  }
  return text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
};
const ORIGIN = /^https?:\/\/[^/\s?#]+$/;
const toOrigins = ({ value }: { value: unknown }) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((part) => part.trim().replace(/\/+$/, '').toLowerCase())
        .filter(Boolean)
    : value;

export const AUTH_TYPES = ['token', 'basic'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'verbose'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Every setting of the service, read once from the environment and validated.
 * Property names are the environment variable names.
 */
export class AppConfig {
  /** Unset: `npm start` runs the embedded MongoDB-compatible server (in memory). */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^mongodb(\+srv)?:\/\//, { message: 'MONGODB_URI must start with mongodb:// or mongodb+srv://' })
  MONGODB_URI?: string;

  /** How long a start waits for MongoDB (a writable primary) before it fails with one fatal line. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  MONGODB_CONNECT_TIMEOUT_MS = 30000;

  /** Unset: `npm start` starts a private redis-server from PATH. */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must start with redis:// or rediss://' })
  REDIS_URL?: string;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  API_PORT = 8080;

  @IsString()
  API_HOST = '0.0.0.0';

  @IsIn(['https', 'http'])
  API_PROTOCOL: 'https' | 'http' = 'https';

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  TLS_CERT_FILE?: string;

  @IsOptional()
  @Transform(emptyToUndefined)
  @IsString()
  TLS_KEY_FILE?: string;

  /**
   * Express "trust proxy": unset/false when clients connect directly; behind a reverse proxy set the
   * hop count (1) or the proxy addresses, so per-IP limits and logs see the real client IP.
   */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^(true|false|\d+|[\w.:/]+(\s*,\s*[\w.:/]+)*)$/, {
    message: 'TRUST_PROXY must be true, false, a hop count or a comma-separated list of addresses',
  })
  TRUST_PROXY?: string;

  /** OpenHIM core's rerun endpoint (core config rerun.host / rerun.httpPort). */
  @IsString()
  RERUN_HOST = 'localhost';

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(65535)
  RERUN_HTTP_PORT = 7786;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  RERUN_TIMEOUT_MS = 60000;

  /**
   * How long a rerun that provably never reached OpenHIM core (connection refused, or reset, timed
   * out or answered 5xx with no child transaction stored) keeps being sent again, with backoff.
   * 0 = one attempt, as OpenHIM core does.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RERUN_RETRY_WINDOW_MS = 120000;

  /** The first wait before such a rerun is sent again; each later wait doubles, up to 30 s. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(30000)
  RERUN_RETRY_DELAY_MS = 1000;

  /**
   * A rerun cut after it was written (reset, timed out) is looked up as core's child only after this
   * wait: longer than core can hold a request before storing it (mongoose buffers writes while its
   * MongoDB is away: 10 s by default), so that "no child" means it never reached core.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  RERUN_RETRY_SETTLE_MS = 15000;

  @Transform(toList)
  @IsIn(AUTH_TYPES, { each: true })
  AUTH_TYPES: AuthType[] = ['token', 'basic'];

  @Transform(toInt)
  @IsInt()
  @Min(1)
  AUTH_WINDOW_SECONDS = 10;

  /** How long a user record is cached for authentication (0 = no cache). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  AUTH_CACHE_MS = 5000;

  /** Failed authentications from one client IP within a minute before it gets 429 for a minute (0 = no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  AUTH_FAILURE_LIMIT = 20;

  /**
   * OpenHIM core's `api.sessionKey`: with it, core's session cookie (`koa.sess` + `koa.sess.sig`)
   * authenticates here, and `POST /authenticate/local` makes sessions core accepts. Several keys,
   * newest first, comma-separated or as a JSON array (a key containing a comma). Unset: no sessions.
   */
  @IsOptional()
  @Transform(toSessionKeys)
  @IsString({ each: true })
  @ArrayNotEmpty({ message: 'OPENHIM_SESSION_KEY must name at least one key' })
  OPENHIM_SESSION_KEY?: string[];

  /** Core's `api.maxAge`: how long a session made here lives. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  OPENHIM_SESSION_MAX_AGE_MS = 7200000;

  /** Core's `api.secureCookie`: the session cookies carry `secure`. */
  @Transform(toBool)
  @IsBoolean()
  OPENHIM_SESSION_SECURE_COOKIE = true;

  /**
   * Console origins (`https://console.example.org`): they get CORS with credentials, and only they
   * may change anything with a session cookie.
   */
  @Transform(toOrigins)
  @Matches(ORIGIN, { each: true, message: 'CORS_ORIGINS must list origins like https://console.example.org' })
  CORS_ORIGINS: string[] = [];

  /** Create OpenHIM's default root user when absent. */
  @Transform(toBool)
  @IsBoolean()
  CREATE_DEFAULT_ROOT = true;

  /** Reruns one worker process runs at once (across all tasks). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10000)
  WORKER_CONCURRENCY = 50;

  /** A worker that stops heart-beating loses its work to another worker after this long. */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  WORKER_LEASE_MS = 15000;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  SWEEP_INTERVAL_MS = 5000;

  /** A lane (one of a task's batchSize slots) yields its worker slot after this long, so every task gets turns. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  WORKER_SLICE_MS = 10000;

  /** On SIGTERM, how long in-flight reruns may take to finish before they are abandoned (and reconciled elsewhere). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  WORKER_SHUTDOWN_MS = 10000;

  /** Item outcomes and progress counters are written in batches, at most this long after they happen. */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(5000)
  WORKER_FLUSH_MS = 200;

  /** How often items answered 202 are checked for their child transaction's final status. */
  @Transform(toInt)
  @IsInt()
  @Min(50)
  RERUN_ASYNC_POLL_MS = 2000;

  /** An item answered 202 whose child transaction is not final after this long is recorded with an error. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  RERUN_ASYNC_TIMEOUT_MS = 3600000;

  @IsString()
  QUEUE_PREFIX = 'openhim-rerun';

  @IsString()
  TASKS_COLLECTION = 'tasks';

  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_TASK_TIDS = 100000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_BATCH_SIZE = 1000;

  /**
   * A task is paused by the engine when this many of its reruns end failed in a row (the downstream
   * is still down); a task's own `pauseAfterFailures` wins. 0 = never.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  AUTO_PAUSE_AFTER_FAILURES = 20;

  /** Reruns in flight to one channel across every task and worker, for channels without their own limit (0 = no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  GUARD_MAX_IN_FLIGHT = 0;

  /** Reruns started per second to one channel across every task and worker, for channels without their own (0 = no limit). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  GUARD_MAX_PER_SECOND = 0;

  /**
   * A channel's circuit breaker opens when this many reruns to it end failed in a row, across every
   * task (rerunStatus Failed or an error): its tasks are paused until a probe succeeds. 0 = no breaker.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  BREAKER_FAILURES = 20;

  /** The wait before the first probe of an open breaker; it doubles after each failed probe. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  BREAKER_BACKOFF_MS = 30000;

  /** The longest wait between two probes. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  BREAKER_BACKOFF_MAX_MS = 900000;

  // Notifications (issue 25, README "Notifications"): webhooks, and how every delivery is retried.

  /**
   * Where every notification event is POSTed, signed with WEBHOOK_SECRET: comma-separated http(s)
   * URLs. Unset: no webhooks. An entry that is not an http(s) URL, or WEBHOOK_SECRET missing or
   * shorter than 16 characters while this is set, stops the start (the secret itself is never printed).
   */
  @Transform(({ value, obj }: { value: unknown; obj: Record<string, unknown> }) => {
    if (typeof value !== 'string') return value;
    const urls = value
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((url) => {
        try {
          const parsed = new URL(url);
          return ['http:', 'https:'].includes(parsed.protocol) && parsed.hostname ? url : ` ${url}`;
        } catch {
          return ` ${url}`;
        }
      });
    const secret = obj.WEBHOOK_SECRET;
    // A marker that fails the check below, reported as the secret's problem.
    if (urls.length && (typeof secret !== 'string' || secret.length < 16)) urls.push(' WEBHOOK_SECRET');
    return urls;
  })
  @Matches(/^https?:\/\/\S+$/i, {
    each: true,
    message: ({ value }: { value: unknown }) => {
      const entries = (Array.isArray(value) ? value : [value]).map(String);
      const bad = entries.find((url) => url !== ' WEBHOOK_SECRET' && !/^https?:\/\/\S+$/i.test(url));
      return [
        ...(bad === undefined
          ? []
          : [`WEBHOOK_URLS must list http(s) URLs, comma-separated: ${JSON.stringify(bad.trim())} is not one`]),
        ...(entries.includes(' WEBHOOK_SECRET')
          ? ['WEBHOOK_SECRET must be set, to at least 16 characters, when WEBHOOK_URLS is set: it signs every webhook']
          : []),
      ].join('; ');
    },
  })
  WEBHOOK_URLS: string[] = [];

  /**
   * The HMAC-SHA256 key of the webhooks' `X-Webhook-Signature` (their receivers hold it too); at least
   * 16 characters, required with WEBHOOK_URLS (checked there, so that it is never printed).
   */
  @IsString()
  WEBHOOK_SECRET = '';

  /** OpenHIM contact groups e-mailed about every event that names none of its own (comma-separated). */
  @Transform(toGroups)
  @IsString({ each: true, message: 'NOTIFY_GROUPS must list OpenHIM contact group names, comma-separated' })
  NOTIFY_GROUPS: string[] = [];

  /** A delivery (webhook or e-mail) that keeps failing is retried until this long after its event, then given up. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  NOTIFY_RETRY_MS = 86400000;

  /** The wait before a failed delivery's first retry; it doubles after each failure, up to 5 minutes. */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(300000)
  NOTIFY_RETRY_DELAY_MS = 1000;

  /** How long one webhook request may take (connect to end of the answer) before it counts as failed. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  NOTIFY_TIMEOUT_MS = 10000;

  /** Deliveries one worker process makes at once (their own queue: they never take a rerun's place). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  NOTIFY_CONCURRENCY = 20;

  /** POST /bulkrerun splits the matching transactions into tasks of this many. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100000)
  BULK_RERUN_TASK_SIZE = 10000;

  /**
   * "Fix, then rerun": only users in one of these OpenHIM groups may create tasks that transform
   * their requests (`transform`, `edits`) or preview requests (`dryRun` with a preview): admins too
   * need one of them (the default names `admin`). Comma-separated.
   */
  @Transform(toGroups)
  @IsString({ each: true, message: 'TRANSFORM_GROUPS must list OpenHIM group names, comma-separated' })
  @ArrayNotEmpty({ message: 'TRANSFORM_GROUPS must name at least one group' })
  TRANSFORM_GROUPS: string[] = ['admin'];

  /** How long the API waits for Redis when handing a task to the queue before answering 503. */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  QUEUE_TIMEOUT_MS = 5000;

  // E-mail notifications to OpenHIM contact groups (README "Notifications"), in the shapes of OpenHIM
  // core's settings: `email.nodemailer` (SMTP_*), `email.fromAddress` (EMAIL_FROM) and `alerts`
  // (HIM_INSTANCE, CONSOLE_URL).

  /** SMTP server of the notification e-mails (core's `email.nodemailer.host`); unset: no e-mail. */
  @IsOptional()
  @Transform(emptyToUndefined)
  @Matches(/^[\w.-]+$|^\[?[\da-f:.]+\]?$/i, {
    message: 'SMTP_HOST must be a host name or an IP address (no scheme, no port: that is SMTP_PORT)',
  })
  SMTP_HOST?: string;

  /** 587 (submission: STARTTLS when the server offers it), 465 with SMTP_SECURE, or 25. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(65535)
  SMTP_PORT = 587;

  /** TLS from the first byte (port 465, core's `secure`); false: STARTTLS when the server offers it. */
  @Transform(toBool)
  @IsBoolean()
  SMTP_SECURE = false;

  /** SMTP login (core's `email.nodemailer.auth.user` / `pass`): both or neither. */
  @ValidateIf((config: AppConfig) => config.SMTP_USER !== undefined || config.SMTP_PASS !== undefined)
  @Transform(emptyToUndefined)
  @IsString({ message: 'SMTP_USER and SMTP_PASS must be set together' })
  SMTP_USER?: string;

  /** Never printed: a problem with it is reported only when it is unset. */
  @ValidateIf((config: AppConfig) => config.SMTP_USER !== undefined || config.SMTP_PASS !== undefined)
  @Transform(emptyToUndefined)
  @IsString({ message: 'SMTP_PASS and SMTP_USER must be set together' })
  SMTP_PASS?: string;

  /** The sender of the notification e-mails (core's `email.fromAddress`): required with SMTP_HOST. */
  @ValidateIf((config: AppConfig) => config.SMTP_HOST !== undefined || config.EMAIL_FROM !== undefined)
  @Transform(emptyToUndefined)
  @Matches(/^[^\s@<>][^@<>]*<[^\s@<>]+@[^\s@<>]+>$|^[^\s@<>]+@[^\s@<>]+$/, {
    message:
      'EMAIL_FROM must be set when SMTP_HOST is, to the address notification e-mails come from ' +
      "(openhim@example.org or OpenHIM <openhim@example.org>; core's email.fromAddress)",
  })
  EMAIL_FROM?: string;

  /** Names this OpenHIM in the e-mails' subjects and bodies (core's `alerts.himInstance`). */
  @IsString()
  HIM_INSTANCE = 'openhim';

  /** The OpenHIM console's address, for the links in e-mails (core's `alerts.consoleURL`); unset: no links. */
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim().replace(/\/+$/, '') : value))
  @Matches(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/i, {
    message: 'CONSOLE_URL must be an http(s) URL like https://console.example.org',
  })
  CONSOLE_URL?: string;

  /** Largest accepted JSON body (bytes or a size like 10mb). */
  @IsString()
  @Matches(/^\d+(b|kb|mb)?$/i, { message: 'BODY_LIMIT must be a size like 10mb' })
  BODY_LIMIT = '10mb';

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevel = 'info';

  /** `auto`: human-readable when stdout is a terminal, JSON lines otherwise. */
  @IsIn(LOG_FORMATS)
  LOG_FORMAT: LogFormat = 'auto';

  /** GET /metrics without credentials (Prometheus scrapers); false: admins only (Basic or token). */
  @Transform(toBool)
  @IsBoolean()
  METRICS_PUBLIC = true;

  /** Task and queue counts in /metrics are read from MongoDB/Redis at most this often. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  METRICS_CACHE_MS = 5000;

  /** Bull Board at /queues for admins (API role). */
  @Transform(toBool)
  @IsBoolean()
  QUEUE_DASHBOARD = true;

  /** The worker's own HTTP port for /metrics and /health (plain HTTP); unset: the worker serves no HTTP. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  WORKER_HTTP_PORT?: number;

  @IsString()
  WORKER_HTTP_HOST = '0.0.0.0';
}

/** Settings without a default (absent from `new AppConfig()`). */
export const OPTIONAL_SETTINGS = [
  'MONGODB_URI',
  'REDIS_URL',
  'TLS_CERT_FILE',
  'TLS_KEY_FILE',
  'TRUST_PROXY',
  'WORKER_HTTP_PORT',
  'OPENHIM_SESSION_KEY',
] as const;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Reads and validates the environment; throws one ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const known = Object.keys(new AppConfig());
  const raw: Record<string, unknown> = {};
  for (const key of [...known, ...OPTIONAL_SETTINGS]) {
    if (env[key] !== undefined && env[key] !== '') raw[key] = env[key];
  }
  const config = plainToInstance(AppConfig, raw, { exposeDefaultValues: true });
  const errors = validateSync(config, { whitelist: false, forbidUnknownValues: false });
  // One line per setting: the first failed constraint says enough.
  const problems = errors.map((error) => {
    const text = Object.values(error.constraints ?? {}).reverse()[0] ?? 'is invalid';
    const message = text.includes(error.property) ? text : `${error.property} ${text}`;
    return `${message} (got ${JSON.stringify(raw[error.property])})`;
  });
  if (config.API_PROTOCOL !== 'http' && Boolean(config.TLS_CERT_FILE) !== Boolean(config.TLS_KEY_FILE)) {
    problems.push('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

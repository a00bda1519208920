/**
 * Standalone MongoDB-compatible server.
 *
 *   node packages/mongo-wire/dist/cli.js --port <n> [--host <h>] [--dbpath <dir> [--syncdelay <seconds>]]
 *     [--replSet <name> [--replSetMember <host:port>]]
 *     [--mongodb-version <x.y>] [--max-blocking-sort-bytes <n>] [--max-aggregation-sort-bytes <n>]
 *
 * Prints exactly one line `MongoDB-compatible server listening at mongodb://HOST:PORT` on stdout
 * when ready (with --replSet: `... at mongodb://HOST:PORT/?replicaSet=NAME`); stops cleanly
 * (exit 0) on SIGTERM / SIGINT. With --dbpath the data is loaded from
 * DIR at start and saved there on stop and every --syncdelay seconds (see README.md). `--help`
 * prints the usage on stdout (exit 0).
 */
import { DEFAULT_SYNC_DELAY_SECONDS, MongoWireServer } from './server';
import { DEFAULT_MONGODB_VERSION, isMongoDBVersion, MONGODB_VERSIONS, MongoDBVersion } from './versions';

export interface CliOptions {
  /** `--help`: print the usage on stdout and exit 0. */
  help?: boolean;
  host: string;
  port: number;
  dbPath?: string;
  syncDelaySeconds?: number;
  /** `--replSet NAME`: the primary of a one-member replica set. */
  replSet?: string;
  /** `--replSetMember HOST:PORT`: the member address announced to clients. */
  replSetMember?: string;
  /** `--mongodb-version X.Y`: the MongoDB release announced and served. */
  mongodbVersion?: MongoDBVersion;
  /** `--max-blocking-sort-bytes N`: memory limit of a find / findAndModify / update blocking sort. */
  maxBlockingSortBytes?: number;
  /** `--max-aggregation-sort-bytes N`: memory limit of an aggregation `$sort`. */
  maxAggregationSortBytes?: number;
}

export const USAGE = `usage: npm run mongo-server -- [--port <n>] [--host <h>] [--dbpath <dir> [--syncdelay <seconds>]]
                                 [--replSet <name> [--replSetMember <host:port>]]
                                 [--mongodb-version <x.y>] [--max-blocking-sort-bytes <n>]
                                 [--max-aggregation-sort-bytes <n>]
       (or: node packages/mongo-wire/dist/cli.js ...)

Starts the embedded MongoDB-compatible server on its own, so separate API and worker processes
and tools (mongosh, drivers) can share one. Prints one line when ready:
  MongoDB-compatible server listening at mongodb://HOST:PORT
(with --replSet: mongodb://HOST:PORT/?replicaSet=NAME) and stops on SIGTERM / SIGINT (Ctrl-C), exit 0.

  --port, -p <n>         port to listen on (default 27017; 0 = any free port)
  --host, -h <h>         address to listen on (default 127.0.0.1; also --bind_ip)
  --dbpath <dir>         load the data from <dir> at start, save it there at stop (default: in memory only)
  --syncdelay <seconds>  with --dbpath, also save every <seconds> (default ${DEFAULT_SYNC_DELAY_SECONDS}; 0 = only at stop)
  --replSet <name>       be the primary of a one-member replica set <name> (retryable writes, step-downs;
                         connect with ?replicaSet=<name>); default: a standalone
  --replSetMember <h:p>  with --replSet, the member address announced to clients (default: HOST:PORT,
                         this machine's hostname when HOST is 0.0.0.0 / ::)
  --mongodb-version <x.y>
                         the MongoDB release to announce and behave as: ${MONGODB_VERSIONS.join(', ')}
                         (default ${DEFAULT_MONGODB_VERSION}); what it lacks is refused with its errors.
                         3.6 and 4.0 only announce themselves (drivers 6.x refuse them), else act as 4.2
  --max-blocking-sort-bytes <n>
                         memory limit of a sort no index provides in find / findAndModify / update
                         (default: 33554432 up to 4.2, 104857600 from 4.4; also: setParameter)
  --max-aggregation-sort-bytes <n>
                         memory limit of an aggregation $sort no index provides (default 104857600)
  --help                 this text`;

export function parseArgs(argv: string[]): CliOptions {
  const opts: CliOptions = { host: '127.0.0.1', port: 27017 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`missing value for ${flag}`);
      return v;
    };
    if (flag === '--port' || flag === '-p') {
      const p = Number(value());
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`invalid port: ${argv[i]}`);
      opts.port = p;
    } else if (flag === '--help') {
      return { ...opts, help: true };
    } else if (flag === '--host' || flag === '--bind_ip' || flag === '-h') opts.host = value();
    else if (flag === '--dbpath') {
      const d = value();
      if (!d) throw new Error('empty --dbpath');
      opts.dbPath = d;
    } else if (flag === '--syncdelay') {
      const raw = value();
      const s = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(s) || s < 0) throw new Error(`invalid --syncdelay: ${raw}`);
      opts.syncDelaySeconds = s;
    } else if (flag === '--replSet') {
      const name = value();
      if (name.includes('/')) throw new Error(`--replSet ${name}: seed lists are not supported (a one-member set)`);
      if (!name) throw new Error('empty --replSet');
      opts.replSet = name;
    } else if (flag === '--replSetMember') {
      const m = value();
      if (!/^(\[[^\]]+\]|[^:/\s]+):\d{1,5}$/.test(m)) throw new Error(`invalid --replSetMember (host:port): ${m}`);
      opts.replSetMember = m;
    } else if (flag === '--mongodb-version') {
      const v = value();
      if (!isMongoDBVersion(v))
        throw new Error(`invalid --mongodb-version ${v}: one of ${MONGODB_VERSIONS.join(', ')}`);
      opts.mongodbVersion = v;
    } else if (flag === '--max-blocking-sort-bytes' || flag === '--max-aggregation-sort-bytes') {
      const raw = value();
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new Error(`invalid ${flag}: ${raw}`);
      if (flag === '--max-blocking-sort-bytes') opts.maxBlockingSortBytes = n;
      else opts.maxAggregationSortBytes = n;
    } else throw new Error(`unknown argument: ${a}`);
  }
  if (opts.syncDelaySeconds !== undefined && opts.dbPath === undefined) throw new Error('--syncdelay needs --dbpath');
  if (opts.replSetMember !== undefined && opts.replSet === undefined)
    throw new Error('--replSetMember needs --replSet');
  return opts;
}

export interface RunningCli {
  server: MongoWireServer;
  /** The line printed when ready. */
  line: string;
  stop(): Promise<void>;
}

/** Start a server from command-line arguments and print the ready line through `print`. */
export async function runCli(
  argv: string[],
  print: (line: string) => void = (l) => process.stdout.write(l + '\n'),
  log?: (line: string) => void,
): Promise<RunningCli> {
  const opts = parseArgs(argv);
  if (opts.help) throw new Error(USAGE);
  const server = new MongoWireServer({
    host: opts.host,
    port: opts.port,
    dbPath: opts.dbPath,
    syncDelaySeconds: opts.syncDelaySeconds ?? DEFAULT_SYNC_DELAY_SECONDS,
    replSet: opts.replSet,
    replSetMember: opts.replSetMember,
    mongodbVersion: opts.mongodbVersion,
    maxBlockingSortBytes: opts.maxBlockingSortBytes,
    maxAggregationSortBytes: opts.maxAggregationSortBytes,
    log,
  });
  await server.start();
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const line = opts.replSet
    ? `MongoDB-compatible server listening at ${server.uri()}`
    : `MongoDB-compatible server listening at mongodb://${host}:${server.port}`;
  print(line);
  return { server, line, stop: () => server.stop() };
}

/** Lifecycle messages that matter to an operator (data loaded / saved); the rest stays quiet. */
const logToStderr = (line: string): void => {
  if (/^(loaded|no snapshot|saved|periodic save failed)/.test(line)) process.stderr.write(`mongo-wire: ${line}\n`);
};

/** Why the server could not start, with what to do about it. */
export function startFailure(err: NodeJS.ErrnoException, opts: CliOptions): string {
  const where = `${opts.host}:${opts.port}`;
  if (err.code === 'EADDRINUSE')
    return `cannot listen on ${where}: port ${opts.port} is already in use by another process. Stop that process, or choose another --port (0 = any free port).`;
  if (err.code === 'EACCES')
    return `cannot listen on ${where}: permission denied (ports below 1024 need privileges). Choose a --port of 1024 or above.`;
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND')
    return `cannot listen on ${where}: ${opts.host} is not an address of this machine. Choose another --host (0.0.0.0 for all).`;
  return `could not start: ${err.message}`;
}

/**
 * Process entry: run until SIGTERM / SIGINT, then stop (saving to --dbpath) and exit 0.
 * `--help`: usage on stdout, exit 0; a bad argument: the problem and usage on stderr, exit 2;
 * a server that cannot start (port in use...): one line saying why, exit 1.
 */
export function main(argv: string[]): void {
  let opts: CliOptions;
  try {
    opts = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`mongo-wire: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  runCli(argv, undefined, logToStderr).then(
    (running) => {
      let stopping = false;
      const shutdown = (): void => {
        // A second signal while saving is ignored: exiting mid-save would only lose the new snapshot.
        if (stopping) return;
        stopping = true;
        running.stop().then(
          () => process.exit(0),
          (err: Error) => {
            process.stderr.write(`mongo-wire: stop failed: ${err.message}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', shutdown);
      process.on('SIGINT', shutdown);
    },
    (err: NodeJS.ErrnoException) => {
      process.stderr.write(`mongo-wire: ${startFailure(err, opts)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) main(process.argv.slice(2));

/**
 * Standalone in-memory MongoDB-compatible server.
 *
 *   node dist/mongo-wire/cli.js --port <n> [--host <h>]
 *
 * Prints exactly one line `MongoDB-compatible server listening at mongodb://HOST:PORT` on stdout
 * when ready; stops cleanly (exit 0) on SIGTERM / SIGINT.
 */
import { MongoWireServer } from './server';

export interface CliOptions {
  host: string;
  port: number;
}

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
    } else if (flag === '--host' || flag === '--bind_ip' || flag === '-h') opts.host = value();
    else if (flag === '--help') throw new Error('usage: cli.js --port <n> [--host <h>]');
    else throw new Error(`unknown argument: ${a}`);
  }
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
): Promise<RunningCli> {
  const opts = parseArgs(argv);
  const server = new MongoWireServer({ host: opts.host, port: opts.port });
  await server.start();
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const line = `MongoDB-compatible server listening at mongodb://${host}:${server.port}`;
  print(line);
  return { server, line, stop: () => server.stop() };
}

/** Process entry: run until SIGTERM / SIGINT, then stop and exit 0. */
export function main(argv: string[]): void {
  runCli(argv).then(
    (running) => {
      let stopping = false;
      const shutdown = (): void => {
        if (stopping) return;
        stopping = true;
        running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    },
    (err: Error) => {
      process.stderr.write(`mongo-wire: ${err.message}\n`);
      process.exit(2);
    },
  );
}

if (require.main === module) main(process.argv.slice(2));

import { createServer } from 'node:net';

/**
 * A start-up failure whose message already says what failed, with which port, file or URI, and
 * what to do about it: it is logged as is, in one line.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** Where a role listens, and the settings that choose it (named in the messages). */
export interface ListenTarget {
  host: string;
  port: number;
  portSetting: string;
  hostSetting: string;
}

/** Why listening on `target` failed, as a StartupError (or the error itself when it is not about the address). */
export function listenError(error: unknown, target: ListenTarget): Error {
  const { host, port, portSetting, hostSetting } = target;
  const code = (error as NodeJS.ErrnoException)?.code;
  const where = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return new StartupError(
        `Cannot listen on ${where}: port ${port} is already in use by another process. ` +
          `Stop that process, or set ${portSetting} to a free port (e.g. ${portSetting}=${port === 65535 ? port - 1 : port + 1}).`,
        { cause: error },
      );
    case 'EACCES':
      return new StartupError(
        `Cannot listen on ${where}: permission denied (ports below 1024 need privileges). Set ${portSetting} to a port of 1024 or above.`,
        { cause: error },
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new StartupError(
        `Cannot listen on ${where}: ${host} is not an address of this machine. Set ${hostSetting} to one of its addresses, or to 0.0.0.0 for all of them.`,
        { cause: error },
      );
    default:
      return error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * Fails fast, before anything else is started, when the port cannot be listened on (in use,
 * privileged, not an address here). Port 0 (any free port) always works.
 */
export async function checkCanListen(target: ListenTarget): Promise<void> {
  if (target.port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(listenError(error, target)));
    probe.listen({ host: target.host, port: target.port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** A connection string with its password (if any) hidden, for log lines. */
export function redactUri(uri: string): string {
  return uri.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]+):[^@/]*@/i, '$1:***@');
}

/**
 * One line for a failed start: the message of a StartupError, a MongoDB connection failure with its
 * (redacted) URI and what to check, or the error's own message for anything unexpected (with
 * `unexpected` set, so the caller logs the stack too).
 */
export function describeStartupError(
  error: unknown,
  settings: { MONGODB_URI?: string; REDIS_URL?: string } = {},
): { message: string; unexpected: boolean } {
  if (error instanceof StartupError) return { message: error.message, unexpected: false };
  const err = error instanceof Error ? error : new Error(String(error));
  if (/^Mongo/.test(err.name) && settings.MONGODB_URI) {
    return {
      message:
        `Cannot connect to MongoDB at ${redactUri(settings.MONGODB_URI)} (MONGODB_URI): ${err.message}. ` +
        'Check that MongoDB is running and reachable there, or correct MONGODB_URI.',
      unexpected: false,
    };
  }
  return { message: `Start-up failed: ${err.message}`, unexpected: true };
}

import { MongoNetworkError } from 'mongodb';

/** The parts of the driver's internal `Connection` the guard relies on (mongodb 6.20, 7.x). */
interface DriverConnection {
  id: unknown;
  address: string;
  socket?: { destroyed?: boolean };
  cleanup(error: Error): void;
}

type WriteCommand = (this: DriverConnection, ...args: unknown[]) => Promise<void>;

let installed: boolean | undefined;

/**
 * Works around a defect of the mongodb driver (6.20 and 7.x) that leaves operations pending forever, with
 * the connection they hold, after the server closed connections (a restart, an outage):
 *
 * The server closes a pooled idle connection (its FIN). Node ends the socket and destroys it once
 * both directions have ended, but the driver's `Connection` learns of it only from the socket's
 * `close` event, which comes later, in the close phase of the event loop. An operation that checks
 * the connection out in between (anything run from a timer, I/O or `setImmediate` callback in that
 * iteration) writes to the destroyed socket: `write()` returns false without an error, and the
 * driver waits for a `drain` that never comes (`close` fails only a read in progress).
 * `socketTimeoutMS` cannot fire on a destroyed socket, and `timeoutMS` (experimental) is not used here.
 * Seen for engine operations (the start gate, so every later lane of that task in the worker
 * waited behind it) and for the driver's own heartbeat (its monitor then never checks the server
 * again, so the pool, cleared by the outage, never becomes ready: every later operation of the
 * process fails).
 *
 * The guard fails a write to a destroyed socket at once with the network error the coming `close`
 * would give, closing the connection as it would: the operation fails (or is retried) like any
 * other lost connection and the connection goes back to the pool, closed. Installed once per
 * process (every operation of every client, the API's too when it runs in the same process);
 * leaves the driver alone when its internals are not the ones it knows (another driver version).
 * Returns whether it is installed.
 */
export function guardDriverWrites(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  let prototype: { writeCommand?: WriteCommand; cleanup?: unknown } | undefined;
  try {
    // Internal module of the driver: no typings, hence require.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    prototype = (require('mongodb/lib/cmap/connection') as { Connection?: { prototype: typeof prototype } }).Connection
      ?.prototype;
  } catch {
    return false;
  }
  const write = prototype?.writeCommand;
  if (!prototype || typeof write !== 'function' || typeof prototype.cleanup !== 'function') return false;
  prototype.writeCommand = function guardedWriteCommand(this: DriverConnection, ...args: unknown[]) {
    if (this.socket?.destroyed) {
      const error = new MongoNetworkError(`connection ${String(this.id)} to ${this.address} closed`);
      this.cleanup(error);
      return Promise.reject(error);
    }
    return write.apply(this, args);
  };
  installed = true;
  return true;
}

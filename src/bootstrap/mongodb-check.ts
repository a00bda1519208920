import { MongoClient, type ServerHeartbeatFailedEvent } from 'mongodb';
import { redactUri, StartupError } from './startup-errors';

/**
 * The MongoDB releases the driver we ship (mongodb 6.20, under mongoose 8) talks to, by wire version.
 * Its minimum is MongoDB 4.2, what OpenHIM 8 deployments run (Jembi's platform: a 4.2 replica set).
 * mongodb-check.spec.ts holds these against the driver's own constants.
 */
export const SUPPORTED_MONGODB = { oldest: '4.2', newest: '8.2', minWireVersion: 8, maxWireVersion: 27 } as const;

/** Wire versions of the MongoDB releases that introduced them (the handshake carries no version string). */
const RELEASE_OF_WIRE: Readonly<Record<number, string>> = {
  6: '3.6',
  7: '4.0',
  8: '4.2',
  9: '4.4',
  13: '5.0',
  17: '6.0',
  21: '7.0',
  25: '8.0',
  26: '8.1',
  27: '8.2',
};

/** "MongoDB 4.0 (wire version 7)", or the nearest release below for wire versions of in-between releases. */
export function describeWireVersion(wire: number): string {
  const known = Object.keys(RELEASE_OF_WIRE)
    .map(Number)
    .filter((version) => version <= wire);
  if (!known.length) return `a MongoDB older than 3.6 (wire version ${wire})`;
  const release = RELEASE_OF_WIRE[Math.max(...known)];
  return `MongoDB ${wire in RELEASE_OF_WIRE ? release : `newer than ${release}`} (wire version ${wire})`;
}

/** Why the server that answered `reply` cannot be used, or undefined when it can. */
export function incompatibility(reply: { minWireVersion?: number; maxWireVersion?: number }): string | undefined {
  const { minWireVersion: min = 0, maxWireVersion: max = 0 } = reply;
  const supported =
    `this service supports MongoDB ${SUPPORTED_MONGODB.oldest} to ${SUPPORTED_MONGODB.newest} ` +
    `(wire versions ${SUPPORTED_MONGODB.minWireVersion}-${SUPPORTED_MONGODB.maxWireVersion})`;
  if (max < SUPPORTED_MONGODB.minWireVersion)
    return `is ${describeWireVersion(max)}; ${supported}. Upgrade MongoDB to ${SUPPORTED_MONGODB.oldest} or later (what OpenHIM core 8 runs on)`;
  if (min > SUPPORTED_MONGODB.maxWireVersion)
    return `requires wire version ${min} or later; ${supported}. Use a MongoDB release up to ${SUPPORTED_MONGODB.newest}`;
  return undefined;
}

/** The wire versions a driver's refusal names ("reports maximum wire version 7"), if it is one. */
export function refusedWireVersions(error: Error): { minWireVersion?: number; maxWireVersion?: number } | undefined {
  if (error.name !== 'MongoCompatibilityError') return undefined;
  const max = /reports maximum wire version (\d+)/.exec(error.message);
  const min = /reports minimum wire version (\d+)/.exec(error.message);
  if (max) return { maxWireVersion: Number(max[1]) };
  if (min) return { minWireVersion: Number(min[1]), maxWireVersion: Number(min[1]) };
  return undefined;
}

/**
 * Before anything else starts: reaches MongoDB at `uri` and checks its version, so that a server too
 * old (or unreachable) fails the start at once with one line. The driver refuses an incompatible
 * server in each handshake of its monitor, and its callers only see their server selection time out.
 */
export async function checkMongoDB(uri: string, timeoutMs: number): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, maxPoolSize: 1 });
  let refuse: (error: Error) => void = () => undefined;
  const refused = new Promise<never>((_, reject) => (refuse = reject));
  client.on('serverHeartbeatFailed', (event: ServerHeartbeatFailedEvent) => {
    const versions = refusedWireVersions(event.failure);
    const why = versions && incompatibility(versions);
    if (why) refuse(new StartupError(`MongoDB at ${redactUri(uri)} (MONGODB_URI) ${why}.`));
  });
  try {
    // A write needs a primary: a replica set without one is not ready for the service either.
    await Promise.race([client.connect().then(() => client.db('admin').command({ ping: 1 })), refused]);
  } catch (error) {
    if (error instanceof StartupError) throw error;
    throw new StartupError(
      `Cannot connect to MongoDB at ${redactUri(uri)} (MONGODB_URI) within ${Math.round(timeoutMs / 1000)} s ` +
        `(MONGODB_CONNECT_TIMEOUT_MS): ${(error as Error).message}. ` +
        'Check that MongoDB is running and reachable there (for a replica set: that it has a primary), or correct MONGODB_URI.',
      { cause: error },
    );
  } finally {
    await client.close().catch(() => undefined);
  }
}

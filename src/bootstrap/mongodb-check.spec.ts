import { createServer, type Server } from 'node:net';
import { MongoWireServer } from '@openhim-rerun/mongo-wire';
import {
  checkMongoDB,
  describeWireVersion,
  incompatibility,
  refusedWireVersions,
  SUPPORTED_MONGODB,
} from './mongodb-check';
import { StartupError } from './startup-errors';

describe('MongoDB version check', () => {
  it('states the range of the driver we ship (its own constants)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const driver = require('mongodb/lib/cmap/wire_protocol/constants') as Record<string, unknown>;
    expect(SUPPORTED_MONGODB).toEqual({
      oldest: driver.MIN_SUPPORTED_SERVER_VERSION,
      newest: driver.MAX_SUPPORTED_SERVER_VERSION,
      minWireVersion: driver.MIN_SUPPORTED_WIRE_VERSION,
      maxWireVersion: driver.MAX_SUPPORTED_WIRE_VERSION,
    });
  });

  it('names releases by wire version', () => {
    expect(describeWireVersion(6)).toBe('MongoDB 3.6 (wire version 6)');
    expect(describeWireVersion(7)).toBe('MongoDB 4.0 (wire version 7)');
    expect(describeWireVersion(8)).toBe('MongoDB 4.2 (wire version 8)');
    expect(describeWireVersion(15)).toBe('MongoDB newer than 5.0 (wire version 15)');
    expect(describeWireVersion(4)).toBe('a MongoDB older than 3.6 (wire version 4)');
  });

  it('accepts 4.2 to 8.2 and refuses the rest, naming the range and what was found', () => {
    for (const max of [8, 9, 13, 17, 21, 25, 27])
      expect(incompatibility({ minWireVersion: 0, maxWireVersion: max })).toBeUndefined();
    expect(incompatibility({ minWireVersion: 0, maxWireVersion: 7 })).toBe(
      'is MongoDB 4.0 (wire version 7); this service supports MongoDB 4.2 to 8.2 (wire versions 8-27). ' +
        'Upgrade MongoDB to 4.2 or later (what OpenHIM core 8 runs on)',
    );
    expect(incompatibility({ minWireVersion: 30, maxWireVersion: 30 })).toMatch(
      /^requires wire version 30 or later; this service supports MongoDB 4.2 to 8.2/,
    );
  });

  it("reads the wire versions from the driver's refusal", () => {
    const refusal = (message: string) => Object.assign(new Error(message), { name: 'MongoCompatibilityError' });
    expect(
      refusedWireVersions(
        refusal(
          'Server at db:27017 reports maximum wire version 7, but this version of the Node.js Driver requires at least 8 (MongoDB 4.2)',
        ),
      ),
    ).toEqual({ maxWireVersion: 7 });
    expect(refusedWireVersions(refusal('Server at db:27017 reports minimum wire version 30, but ...'))).toEqual({
      minWireVersion: 30,
      maxWireVersion: 30,
    });
    expect(refusedWireVersions(new Error('Server at db:27017 reports maximum wire version 7'))).toBeUndefined();
  });

  it.each([
    ['4.0', 7],
    ['3.6', 6],
  ])('refuses a server announcing MongoDB %s at once', async (version, wire) => {
    const server = new MongoWireServer({ mongodbVersion: version as '4.0' });
    await server.start();
    const started = Date.now();
    try {
      const error = await checkMongoDB(server.uri('openhim'), 20000).catch((e: Error) => e);
      expect(error).toBeInstanceOf(StartupError);
      expect((error as Error).message).toBe(
        `MongoDB at ${server.uri('openhim')} (MONGODB_URI) is MongoDB ${version} (wire version ${wire}); this service supports ` +
          'MongoDB 4.2 to 8.2 (wire versions 8-27). Upgrade MongoDB to 4.2 or later (what OpenHIM core 8 runs on).',
      );
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await server.stop();
    }
  });

  it.each(['4.2', '8.0'])('accepts MongoDB %s, standalone and as a replica set', async (version) => {
    for (const replSet of [undefined, 'rs0']) {
      const server = new MongoWireServer({ mongodbVersion: version as '4.2', replSet });
      await server.start();
      try {
        await expect(checkMongoDB(server.uri('openhim'), 5000)).resolves.toBeUndefined();
      } finally {
        await server.stop();
      }
    }
  });

  it('fails within the timeout, naming the URI without its password, when nothing answers', async () => {
    const closed: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    const started = Date.now();
    try {
      const error = await checkMongoDB(`mongodb://app:secret@127.0.0.1:${port}/openhim`, 1000).catch((e: Error) => e);
      expect(error).toBeInstanceOf(StartupError);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^Cannot connect to MongoDB at mongodb://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/openhim \\(MONGODB_URI\\) within 1 s \\(MONGODB_CONNECT_TIMEOUT_MS\\)`,
        ),
      );
      expect((error as Error).message).not.toContain('secret');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      closed.close();
    }
  });
});

import { createServer, type Server } from 'node:net';
import { checkMongoDB, describeWireVersion, incompatibility, SUPPORTED_MONGODB } from './mongodb-check';
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

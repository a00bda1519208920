import * as net from 'node:net';
import { MongoNetworkError } from 'mongodb';
import mongoose, { Connection, Types } from 'mongoose';
import { MongoWireServer } from '@openhim-rerun/mongo-wire';
import { guardDriverWrites } from './driver-write-guard';

/**
 * The driver defect the guard works around (mongodb 6.20, and 7.x): the server closes pooled idle connections;
 * Node destroys each socket once both directions have ended, the driver's connection notices only
 * on the socket's later `close` event, and an operation that checks the connection out in between
 * waits forever for a `drain`. Operations are issued exactly there: in the check phase
 * (`setImmediate`) after the socket is destroyed, before its `close` (close phase).
 */
describe('guardDriverWrites', () => {
  let server: MongoWireServer;
  /** One client per test: the first one's pool and monitor may be left holding lost operations. */
  let conn: Connection;

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
  });

  beforeEach(async () => {
    conn = await mongoose.createConnection(server.uri('driver-write-guard')).asPromise();
  });

  afterEach(async () => {
    await conn.close(true);
  });

  afterAll(async () => {
    await server.stop();
  });

  /** Pauses the server; for every driver socket it destroys, one update issued in the window. */
  async function updatesInTheWindow(): Promise<Array<{ settled?: unknown; after?: number }>> {
    const tasks = conn.db!.collection('tasks');
    const taskId = new Types.ObjectId();
    await tasks.insertOne({ _id: taskId, nextSeq: 0 });
    // Idle connections in the pool.
    await Promise.all(Array.from({ length: 4 }, () => tasks.findOne({ _id: taskId })));
    const updates: Array<{ settled?: unknown; after?: number }> = [];
    const destroy = net.Socket.prototype.destroy;
    net.Socket.prototype.destroy = function (this: net.Socket, ...args: Parameters<net.Socket['destroy']>) {
      const first = !this.destroyed && this.remotePort === server.port;
      const result = destroy.apply(this, args);
      if (first) {
        setImmediate(() => {
          const update: { settled?: unknown; after?: number } = {};
          const issuedAt = Date.now();
          updates.push(update);
          const settle = (outcome: unknown) =>
            Object.assign(update, { settled: outcome, after: Date.now() - issuedAt });
          tasks.findOneAndUpdate({ _id: taskId }, { $inc: { nextSeq: 1 } }).then(settle, settle);
        });
      }
      return result;
    };
    try {
      await server.pause();
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      net.Socket.prototype.destroy = destroy;
      await server.resume();
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return updates;
  }

  it('without it, an operation issued on a connection the server has just closed never settles', async () => {
    const updates = await updatesInTheWindow();
    // Should a driver version fix the defect, this fails: the guard can then go.
    expect(updates.filter((update) => !('settled' in update)).length).toBeGreaterThan(0);
  }, 20000);

  it('with it, such an operation fails at once with a network error, and the next one is answered', async () => {
    expect(guardDriverWrites()).toBe(true);
    expect(guardDriverWrites()).toBe(true); // installed once

    const updates = await updatesInTheWindow();

    expect(updates.length).toBeGreaterThan(0);
    expect(updates.filter((update) => !('settled' in update))).toEqual([]);
    expect(updates.filter((update) => update.settled instanceof MongoNetworkError).length).toBeGreaterThan(0);
    for (const update of updates) expect(update.after).toBeLessThan(1000);
    await expect(conn.db!.collection('tasks').countDocuments()).resolves.toBeGreaterThan(0);
  }, 20000);
});

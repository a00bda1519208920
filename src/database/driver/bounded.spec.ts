import * as net from 'node:net';
import mongoose, { Connection, Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { Task, TaskSchema } from '../schemas';
import { MongoWireServer } from '@openhim-rerun/mongo-wire';
import { bounded, BoundExceededError, within } from './bounded';
import { TasksRepository } from '../repositories/tasks.repository';
import { collectionOf } from './collection';

const LEASE_MS = 1500;

describe('bounded', () => {
  it('settles with the operation, or with a BoundExceededError once the bound is spent, aborting the signal', async () => {
    await expect(bounded(1000, 'quick', async () => 'answer')).resolves.toBe('answer');
    await expect(within(1000, 'failing', Promise.reject(new Error('refused')))).rejects.toThrow('refused');

    let signal: AbortSignal | undefined;
    const never = bounded(50, 'tasks.gate', (options) => {
      signal = options.signal;
      return new Promise(() => undefined);
    });
    await expect(never).rejects.toThrow(new BoundExceededError('tasks.gate: no answer within 50 ms'));
    expect(signal!.aborted).toBe(true);
    expect(signal!.reason).toBeInstanceOf(BoundExceededError);
  });
});

/** A TCP proxy to the server that can stop forwarding: a frozen server, a network cut without a reset. */
async function freezableProxy(port: number) {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data: Buffer) => !frozen && upstream.write(data));
    upstream.on('data', (data: Buffer) => !frozen && client.write(data));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    uri: `mongodb://127.0.0.1:${(proxy.address() as net.AddressInfo).port}/bounded?directConnection=true`,
    freeze: () => (frozen = true),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => proxy.close(resolve));
    },
  };
}

describe('engine operations against a server that stops answering', () => {
  let server: MongoWireServer;
  let proxy: Awaited<ReturnType<typeof freezableProxy>>;
  let conn: Connection;
  let model: Model<Task>;
  let tasks: TasksRepository;

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    proxy = await freezableProxy(server.port);
    conn = await mongoose.createConnection(proxy.uri).asPromise();
    model = conn.model(Task.name, TaskSchema) as unknown as Model<Task>;
    tasks = new TasksRepository(model, Object.assign(new AppConfig(), { WORKER_LEASE_MS: LEASE_MS }));
  });

  afterAll(async () => {
    await proxy.close(); // first: the client's close would wait on the frozen connections
    await conn.close(true);
    await server.stop();
  });

  it('settle within a lease, where the driver would wait for ever', async () => {
    const taskId = new Types.ObjectId();
    await model.collection.insertOne({ _id: taskId, status: 'Processing', nextSeq: 0, leases: [] });
    expect(await tasks.load(taskId)).toMatchObject({ nextSeq: 0 });
    proxy.freeze();

    let control: string | undefined;
    collectionOf(model)
      .findOne({ _id: taskId })
      .then(
        () => (control = 'answered'),
        (error: Error) => (control = error.name),
      );
    const startedAt = Date.now();
    await expect(tasks.gate(taskId, 'lane', 10, new Date(), undefined)).rejects.toThrow(
      new BoundExceededError(`tasks.gate: no answer within ${LEASE_MS} ms`),
    );
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(LEASE_MS - 50);
    // The same read without the bound still waits (no socketTimeoutMS by default).
    expect(control).toBeUndefined();
  }, 20000);
});

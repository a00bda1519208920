import mongoose, { Connection, Model, Types } from 'mongoose';
import { MongoWireServer } from '@openhim-rerun/mongo-wire';
import { AppConfig } from '../../config/app-config';
import {
  RerunGuard,
  RerunGuardSchema,
  Task,
  TaskItem,
  TaskItemSchema,
  TaskSchema,
  Transaction,
  TransactionSchema,
} from '../../database/schemas';
import { RerunGuardsRepository } from '../../database/repositories/rerun-guards.repository';
import { TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { TasksRepository } from '../../database/repositories/tasks.repository';
import { TransactionsRepository } from '../../database/repositories/transactions.repository';
import { ChannelBreaker } from './channel-breaker.service';
import type { RerunMetrics } from '../metrics/rerun-metrics';
import type { TaskEvents } from '../task-events';

/** The breaker's counting, opening and probe hand-over against the wire server (what two workers race for). */
describe('ChannelBreaker and its rerunguards', () => {
  let server: MongoWireServer;
  let conn: Connection;
  let guards: RerunGuardsRepository;
  let tasks: TasksRepository;
  let items: TaskItemsRepository;
  let breaker: ChannelBreaker;
  let taskModel: Model<Task>;
  let itemModel: Model<TaskItem>;
  let transactionModel: Model<Transaction>;
  const opened = jest.fn();
  const events = { taskEvent: jest.fn(), channelEvent: jest.fn() };
  const config = Object.assign(new AppConfig(), {
    WORKER_LEASE_MS: 15000,
    BREAKER_FAILURES: 5,
    BREAKER_BACKOFF_MS: 1000,
  });

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    conn = await mongoose.createConnection(server.uri('channel-breaker')).asPromise();
    taskModel = conn.model(Task.name, TaskSchema) as unknown as Model<Task>;
    itemModel = conn.model(TaskItem.name, TaskItemSchema) as unknown as Model<TaskItem>;
    transactionModel = conn.model(Transaction.name, TransactionSchema) as unknown as Model<Transaction>;
    const guardModel = conn.model(RerunGuard.name, RerunGuardSchema) as unknown as Model<RerunGuard>;
    await guardModel.syncIndexes();
    guards = new RerunGuardsRepository(guardModel, config);
    tasks = new TasksRepository(taskModel, config);
    items = new TaskItemsRepository(itemModel, config);
    const transactions = new TransactionsRepository(transactionModel, config);
    breaker = new ChannelBreaker(
      config,
      guards,
      tasks,
      items,
      transactions,
      { recordBreakerOpened: opened } as unknown as RerunMetrics,
      events as unknown as TaskEvents,
    );
  });

  afterAll(async () => {
    await conn?.close();
    await server?.stop();
  });

  const failures = async (channel: Types.ObjectId) => (await guards.forChannel(channel))?.breaker?.failures;

  it('counts failures in a row across flushes; a success restarts the count from the failures after it', async () => {
    const channel = new Types.ObjectId();
    await breaker.record(new Map([[channel.toHexString(), { ended: [true, true], lastFailure: 'e1' }]]));
    expect(await failures(channel)).toBe(2);
    await breaker.record(new Map([[channel.toHexString(), { ended: [true, false, true], lastFailure: 'e2' }]]));
    expect(await failures(channel)).toBe(1);
    await breaker.record(new Map([[channel.toHexString(), { ended: [false] }]]));
    expect(await failures(channel)).toBe(0);
    expect((await guards.forChannel(channel))?.breaker?.state).not.toBe('open');
  });

  it('opens once at BREAKER_FAILURES, however many flushes race, and pauses only the runnable tasks going to the channel', async () => {
    const channel = new Types.ObjectId();
    const other = new Types.ObjectId();
    const [onChannel, elsewhere] = await transactionModel.insertMany([
      { channelID: channel, request: { timestamp: new Date() } },
      { channelID: other, request: { timestamp: new Date() } },
    ]);
    const task = async (tid: string, status: 'Queued' | 'Paused') => {
      const _id = new Types.ObjectId();
      await taskModel.collection.insertOne({ _id, status, itemsStore: 'items', totalTransactions: 1, leases: [] });
      await itemModel.collection.insertOne({ taskId: _id, seq: 0, tid, tstatus: 'Queued' });
      return _id;
    };
    const going = await task(String(onChannel._id), 'Queued');
    const notGoing = await task(String(elsewhere._id), 'Queued');
    const pausedByPerson = await task(String(onChannel._id), 'Paused');
    opened.mockClear();
    events.taskEvent.mockClear();
    events.channelEvent.mockClear();

    const flush = (n: number) =>
      breaker.record(
        new Map([[channel.toHexString(), { ended: Array(n).fill(true), lastFailure: 'OpenHIM answered 502' }]]),
      );
    await Promise.all([flush(3), flush(3), flush(3)]);

    const guard = await guards.forChannel(channel);
    expect(guard?.breaker).toMatchObject({ state: 'open', failures: 9, backoffMs: 1000, probes: 0 });
    expect(opened).toHaveBeenCalledTimes(1);
    expect(events.channelEvent).toHaveBeenCalledTimes(1);
    expect(events.channelEvent).toHaveBeenCalledWith(
      'breaker.opened',
      expect.objectContaining({ id: channel.toHexString(), failures: 9, lastError: 'OpenHIM answered 502' }),
      expect.stringContaining('circuit breaker of channel'),
    );
    expect(events.taskEvent).toHaveBeenCalledWith(
      'task.auto-paused',
      going,
      expect.objectContaining({ reason: expect.any(String) }),
    );
    expect(events.taskEvent).not.toHaveBeenCalledWith('task.auto-paused', notGoing, expect.anything());
    const after = async (id: Types.ObjectId) => taskModel.collection.findOne({ _id: id });
    expect(await after(going)).toMatchObject({ status: 'Paused', waitingFor: channel });
    expect((await after(going))?.history?.[0]).toMatchObject({
      action: 'breaker-paused',
      reason: expect.stringContaining('reruns to it failed in a row; the last: OpenHIM answered 502'),
    });
    expect(await after(notGoing)).toMatchObject({ status: 'Queued' });
    expect(await after(pausedByPerson)).not.toHaveProperty('waitingFor');
  });

  it('gives the probe to one worker at a time, doubles the back-off up to its cap, and closes for the holder only', async () => {
    const channel = new Types.ObjectId();
    await breaker.record(new Map([[channel.toHexString(), { ended: Array(5).fill(true) }]]));
    // Due now.
    await guardsCollection().updateOne({ channelID: channel }, { $set: { 'breaker.nextProbeAt': new Date(0) } });

    const until = new Date(Date.now() + 15000);
    const claims = await Promise.all(['a', 'b', 'c'].map((owner) => guards.claimProbe(channel, owner, until)));
    const winners = claims.filter(Boolean);
    expect(winners).toHaveLength(1);
    const owner = winners[0]!.breaker!.probe!.owner;
    const loser = ['a', 'b', 'c'].find((name) => name !== owner)!;
    expect(await guards.close(channel, loser)).toBe(false);

    const failed = await guards.probeFailed(channel, owner, 3000, 'rerun x Failed');
    expect(failed?.breaker).toMatchObject({ state: 'open', backoffMs: 2000, lastError: 'rerun x Failed' });
    expect(failed?.breaker?.probe).toBeUndefined();
    expect(await guards.claimProbe(channel, owner, until)).toBeNull(); // not due for 2 s

    await guardsCollection().updateOne({ channelID: channel }, { $set: { 'breaker.nextProbeAt': new Date(0) } });
    expect(await guards.claimProbe(channel, 'b', until)).not.toBeNull();
    expect((await guards.probeFailed(channel, 'b', 3000, 'again'))?.breaker?.backoffMs).toBe(3000);

    // A killed holder's probe is taken over once its hold has expired.
    await guardsCollection().updateOne({ channelID: channel }, { $set: { 'breaker.nextProbeAt': new Date(0) } });
    expect(await guards.claimProbe(channel, 'dead', new Date(Date.now() - 1))).not.toBeNull();
    expect(await guards.claimProbe(channel, 'c', until)).not.toBeNull();
    expect(await guards.close(channel, 'c')).toBe(true);
    expect((await guards.forChannel(channel))?.breaker).toEqual({ state: 'closed', failures: 0, lastError: 'again' });
  });

  function guardsCollection() {
    return conn.collection('rerunguards');
  }
});

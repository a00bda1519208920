import mongoose, { Connection, Model, Types } from 'mongoose';
import { AppConfig } from '../../config/app-config';
import { MongoWireServer } from '@openhim-rerun/mongo-wire';
import { Task, TaskItem, TaskItemSchema, TaskSchema, Transaction, TransactionSchema } from '../../database/schemas';
import { Slot } from './slot';
import { StartBatcher } from './start-batcher';
import { BoundExceededError } from '../../database/driver/bounded';
import { TaskItemsRepository } from '../../database/repositories/task-items.repository';
import { TasksRepository } from '../../database/repositories/tasks.repository';
import { TransactionsRepository } from '../../database/repositories/transactions.repository';

const LEASE_MS = 15000;
/** How long the batcher waits for a gate or a claim here (a third of the lease in the engine). */
const BOUND_MS = 300;

/** Batched gate + claim against the wire server: what each lane gets and what the documents become. */
describe('StartBatcher', () => {
  let server: MongoWireServer;
  let conn: Connection;
  let tasks: TasksRepository;
  let items: TaskItemsRepository;
  let transactions: TransactionsRepository;
  let taskModel: Model<Task>;
  let itemModel: Model<TaskItem>;
  let transactionModel: Model<Transaction>;

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    conn = await mongoose.createConnection(server.uri('start-batcher')).asPromise();
    taskModel = conn.model(Task.name, TaskSchema) as unknown as Model<Task>;
    itemModel = conn.model(TaskItem.name, TaskItemSchema) as unknown as Model<TaskItem>;
    transactionModel = conn.model(Transaction.name, TransactionSchema) as unknown as Model<Transaction>;
    await itemModel.syncIndexes();
    const config = Object.assign(new AppConfig(), { WORKER_LEASE_MS: LEASE_MS });
    tasks = new TasksRepository(taskModel, config);
    items = new TaskItemsRepository(itemModel, config);
    transactions = new TransactionsRepository(transactionModel, config);
  });

  afterAll(async () => {
    await conn.close();
    await server.stop();
  });

  /** A task of `total` items (each with its own stored transaction) and `lanes` slots holding leases. */
  async function taskWithLanes(total: number, lanes: number, nextSeq = 0) {
    const taskId = new Types.ObjectId();
    const tids = Array.from({ length: total }, () => new Types.ObjectId());
    await transactionModel.collection.insertMany(
      tids.map((_id, seq) => ({ _id, request: { method: 'GET', path: `/item/${seq}` } })),
    );
    await itemModel.collection.insertMany(
      tids.map((tid, seq) => ({ taskId, seq, tid: tid.toHexString(), tstatus: 'Queued' })),
    );
    const slots = Array.from({ length: lanes }, () => new Slot(taskId, tasks, LEASE_MS, Date.now()));
    await taskModel.collection.insertOne({
      _id: taskId,
      status: 'Queued',
      batchSize: lanes,
      totalTransactions: total,
      remainingTransactions: total,
      itemsStore: 'items',
      nextSeq,
      transactions: [],
      leases: slots.map((slot) => ({ id: slot.leaseId, owner: 'spec', until: new Date(Date.now() + 1000) })),
    });
    return { taskId, tids, slots, batcher: new StartBatcher(tasks, items, transactions, BOUND_MS) };
  }

  const itemAt = (taskId: Types.ObjectId, seq: number) => itemModel.collection.findOne({ taskId, seq });
  const taskDoc = (taskId: Types.ObjectId) => taskModel.collection.findOne({ _id: taskId });

  it('gives lanes asking together consecutive items, each claimed under its own lease', async () => {
    const { taskId, tids, slots, batcher } = await taskWithLanes(20, 5);
    const before = Date.now();

    const started = await Promise.all(slots.map((slot) => batcher.next(slot, 20, undefined)));

    expect(started.map((s) => s?.seq).sort((a, b) => a! - b!)).toEqual([0, 1, 2, 3, 4]);
    for (const [lane, s] of started.entries()) {
      expect(s!.item).toMatchObject({ seq: s!.seq, tid: tids[s!.seq].toHexString(), tstatus: 'Processing' });
      expect(s!.item!.leaseId).toBe(slots[lane].leaseId);
      expect(await itemAt(taskId, s!.seq)).toMatchObject({ tstatus: 'Processing', leaseId: slots[lane].leaseId });
      expect(slots[lane].dirty).toBe(true);
    }
    const task = await taskDoc(taskId);
    expect(task).toMatchObject({ nextSeq: 5, status: 'Processing' });
    // The gate leaves the leases to the slots' timers (a lease write per gate cost the embedded server
    // more than the rest of the gate): the leases are as they were.
    for (const lease of task!.leases as Array<{ until: Date }>) {
      expect(lease.until.getTime()).toBeLessThanOrEqual(before + 1000);
    }
    // The transaction read with the claims is the item's own.
    const original = await transactions.findOriginal(started[2]!.item!.tid);
    expect(original?.request?.path).toBe(`/item/${started[2]!.seq}`);
  });

  it('closes the gate for a lane whose lease is gone while the others go on', async () => {
    const { taskId, slots, batcher } = await taskWithLanes(20, 4);
    await tasks.release(taskId, slots[1].leaseId);

    const started = await Promise.all(slots.map((slot) => batcher.next(slot, 20, undefined)));

    expect(started[1]).toBeNull();
    expect(slots[1].dirty).toBe(false);
    expect(
      started
        .filter(Boolean)
        .map((s) => s!.seq)
        .sort((a, b) => a - b),
    ).toEqual([0, 1, 2]);
    expect((await taskDoc(taskId))!.nextSeq).toBe(3);
  });

  it('hands out the last items one each and never moves the cursor past the end', async () => {
    const { taskId, slots, batcher } = await taskWithLanes(10, 5, 8);

    const started = await Promise.all(slots.map((slot) => batcher.next(slot, 10, undefined)));

    expect(
      started
        .filter(Boolean)
        .map((s) => s!.seq)
        .sort((a, b) => a - b),
    ).toEqual([8, 9]);
    expect(started.filter((s) => s === null)).toHaveLength(3);
    expect((await taskDoc(taskId))!.nextSeq).toBe(10);
  });

  it('skips an item that is already final without touching it, and the lane is not left dirty', async () => {
    const { taskId, slots, batcher } = await taskWithLanes(10, 3);
    await itemModel.collection.updateOne({ taskId, seq: 1 }, { $set: { tstatus: 'Completed', rerunID: 'earlier' } });

    const started = await Promise.all(slots.map((slot) => batcher.next(slot, 10, undefined)));

    const skipped = started.findIndex((s) => s?.seq === 1);
    expect(started[skipped]!.item).toBeNull();
    expect(slots[skipped].dirty).toBe(false);
    expect(await itemAt(taskId, 1)).toMatchObject({ tstatus: 'Completed', rerunID: 'earlier' });
    expect(
      started
        .filter((s) => s?.item)
        .map((s) => s!.seq)
        .sort((a, b) => a - b),
    ).toEqual([0, 2]);
  });

  it('does not start anything for a paused task', async () => {
    const { taskId, slots, batcher } = await taskWithLanes(10, 3);
    await taskModel.collection.updateOne({ _id: taskId }, { $set: { status: 'Paused' } });

    const started = await Promise.all(slots.map((slot) => batcher.next(slot, 10, undefined)));

    expect(started).toEqual([null, null, null]);
    expect(await itemModel.collection.countDocuments({ taskId, tstatus: 'Queued' })).toBe(10);
    expect((await taskDoc(taskId))!.nextSeq).toBe(0);
  });

  /**
   * An answer that never comes (the driver loses one issued on a connection the server has just
   * closed: bounded.ts) holds neither the lanes waiting on it nor the lanes after them.
   */
  describe('an answer that never comes', () => {
    type Outcome<T> = { value: T } | { error: unknown } | 'pending';

    /** The promise's outcome, or 'pending' when it has none after `ms`. */
    async function outcome<T>(promise: Promise<T>, ms = 5000): Promise<Outcome<T>> {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          promise.then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          ),
          new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms))),
        ]);
      } finally {
        clearTimeout(timer);
      }
    }

    /** `repository` whose `method` never answers its first call, after doing its write when `applied`. */
    function answersFirstCallNever<T extends object>(repository: T, method: keyof T, applied: boolean): T {
      const real = (repository[method] as (...args: unknown[]) => Promise<unknown>).bind(repository);
      let calls = 0;
      return Object.assign(Object.create(repository) as T, {
        [method]: (...args: unknown[]) => {
          if (calls++ > 0) return real(...args);
          if (applied) void real(...args);
          return new Promise(() => undefined);
        },
      });
    }

    const seqsOf = (outcomes: Array<Outcome<unknown>>) =>
      outcomes.map((o) => (o !== 'pending' && 'value' in o ? (o.value as { seq: number }).seq : o)).sort();

    it('a gate: its lanes get an error within the bound and the next lanes are gated at once', async () => {
      const { taskId, slots } = await taskWithLanes(10, 3);
      const batcher = new StartBatcher(answersFirstCallNever(tasks, 'gateMany', false), items, transactions, BOUND_MS);

      const lost = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));

      expect(lost).toEqual(slots.map(() => ({ error: expect.any(BoundExceededError) })));
      for (const slot of slots) expect(slot.dirty).toBe(false); // nothing was claimed for them
      const next = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));
      expect(seqsOf(next)).toEqual([0, 1, 2]);
      expect((await taskDoc(taskId))!.nextSeq).toBe(3);
    });

    it('a gate that moved the cursor: the next lanes go on after it, its items stay Queued below the cursor', async () => {
      const { taskId, slots } = await taskWithLanes(10, 3);
      const batcher = new StartBatcher(answersFirstCallNever(tasks, 'gateMany', true), items, transactions, BOUND_MS);

      const lost = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));
      const next = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));

      expect(lost).toEqual(slots.map(() => ({ error: expect.any(BoundExceededError) })));
      expect(seqsOf(next)).toEqual([3, 4, 5]);
      expect((await taskDoc(taskId))!.nextSeq).toBe(6);
      // What a worker dying between gate and claim leaves: the finish of the task runs them.
      for (const seq of [0, 1, 2]) expect(await itemAt(taskId, seq)).toMatchObject({ tstatus: 'Queued' });
    });

    it('a claim: its slots stay dirty (they expire, the items are reconciled) and the next lanes claim theirs', async () => {
      const { taskId, slots } = await taskWithLanes(10, 3);
      const batcher = new StartBatcher(tasks, answersFirstCallNever(items, 'claimMany', true), transactions, BOUND_MS);

      const lost = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));

      expect(lost).toEqual(slots.map(() => ({ error: expect.any(BoundExceededError) })));
      for (const slot of slots) expect(slot.dirty).toBe(true);
      const claimed = await Promise.all([0, 1, 2].map((seq) => itemAt(taskId, seq)));
      expect(claimed.map((item) => item!.tstatus)).toEqual(['Processing', 'Processing', 'Processing']);
      expect(claimed.map((item) => item!.leaseId).sort()).toEqual(slots.map((slot) => slot.leaseId).sort());

      const next = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));
      expect(seqsOf(next)).toEqual([3, 4, 5]);
      for (const o of next) expect(o).toMatchObject({ value: { item: { tstatus: 'Processing' } } });
    });

    it('a read of the items ahead: the claims after it read them again', async () => {
      const { taskId, slots } = await taskWithLanes(10, 3);
      const batcher = new StartBatcher(tasks, answersFirstCallNever(items, 'bySeq', false), transactions, BOUND_MS);

      const lost = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));
      const next = await Promise.all(slots.map((slot) => outcome(batcher.next(slot, 10, undefined))));

      expect(lost).toEqual(slots.map(() => ({ error: expect.any(BoundExceededError) })));
      expect(seqsOf(next)).toEqual([3, 4, 5]);
      for (const o of next) expect(o).toMatchObject({ value: { item: { tstatus: 'Processing' } } });
      expect(await itemAt(taskId, 0)).toMatchObject({ tstatus: 'Queued' });
    });
  });
});

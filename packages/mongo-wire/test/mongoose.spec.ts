import mongoose, { Connection, Schema, Types } from 'mongoose';
import { MongoWireServer } from '../src';

/** A mongoose model round trip against the wire server. */
describe('mongo-wire: mongoose', () => {
  let server: MongoWireServer;
  let conn: Connection;
  let conn2: Connection;

  const transactionSchema = new Schema({
    tid: String,
    tstatus: { type: String, default: 'Queued' },
    rerunID: String,
    error: String,
  });
  const taskSchema = new Schema({
    status: { type: String, default: 'Queued', index: true },
    taskId: { type: Schema.Types.ObjectId, required: true },
    seq: { type: Number, required: true },
    remaining: Number,
    created: { type: Date, default: () => new Date() },
    transactions: [transactionSchema],
  });
  taskSchema.index({ taskId: 1, seq: 1 }, { unique: true });

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    [conn, conn2] = await Promise.all([
      mongoose.createConnection(server.uri('openhim')).asPromise(),
      mongoose.createConnection(server.uri('openhim')).asPromise(),
    ]);
  });

  afterAll(async () => {
    await Promise.all([conn.close(), conn2.close()]);
    await server.stop();
  });

  it('builds indexes concurrently from two connections', async () => {
    const A = conn.model('Task', taskSchema);
    const B = conn2.model('Task', taskSchema);
    await Promise.all([A.init(), B.init()]);
    await Promise.all([A.syncIndexes(), B.createIndexes()]);
    const names = (await conn.db!.collection('tasks').indexes()).map((i) => i.name);
    expect(names.sort()).toEqual(['_id_', 'status_1', 'taskId_1_seq_1']);
    expect(await A.syncIndexes()).toEqual([]);
  });

  it('saves, finds, updates, counts and deletes documents', async () => {
    const Task = conn.model('Task');
    const taskId = new Types.ObjectId();
    const t = new Task({ taskId, seq: 1, remaining: 2, transactions: [{ tid: 'a' }, { tid: 'b' }] });
    await t.save();
    const found = await Task.findById(t._id);
    expect(found?.transactions.map((x: { tid: string; tstatus: string }) => [x.tid, x.tstatus])).toEqual([
      ['a', 'Queued'],
      ['b', 'Queued'],
    ]);
    expect(found?.created).toBeInstanceOf(Date);
    expect(found?.taskId.equals(taskId)).toBe(true);

    found!.set('status', 'Processing');
    found!.transactions[0].tstatus = 'Completed';
    await found!.save();

    const updated = await Task.findOneAndUpdate(
      { _id: t._id, 'transactions.tid': 'b' },
      { $set: { 'transactions.$.tstatus': 'Failed', 'transactions.$.error': 'boom' }, $inc: { remaining: -1 } },
      { returnDocument: 'after' },
    ).lean<{ remaining: number; status: string; transactions: { tstatus: string; error?: string }[] }>();
    expect(updated?.remaining).toBe(1);
    expect(updated?.status).toBe('Processing');
    expect(updated?.transactions.map((x) => x.tstatus)).toEqual(['Completed', 'Failed']);
    expect(updated?.transactions[1].error).toBe('boom');

    await Task.create([
      { taskId, seq: 2 },
      { taskId, seq: 3, status: 'Completed' },
    ]);
    expect(await Task.countDocuments({ taskId })).toBe(3);
    expect(await Task.countDocuments({ taskId, status: 'Queued' })).toBe(1);
    expect(await Task.estimatedDocumentCount()).toBe(3);
    const page = await Task.find({ taskId }).sort({ seq: -1 }).skip(1).limit(1).lean<{ seq: number }[]>();
    expect(page.map((d) => d.seq)).toEqual([2]);
    expect((await Task.distinct('status')).sort()).toEqual(['Completed', 'Processing', 'Queued']);

    await expect(Task.create({ taskId, seq: 2 })).rejects.toMatchObject({ code: 11000, keyValue: { taskId, seq: 2 } });

    const res = await Task.deleteMany({ taskId, seq: { $gte: 2 } });
    expect(res.deletedCount).toBe(2);
    expect(await Task.countDocuments()).toBe(1);
  });

  it('reads what the other connection wrote and honours upserts', async () => {
    const A = conn.model('Task');
    const B = conn2.model('Task');
    const taskId = new Types.ObjectId();
    await A.updateOne({ taskId, seq: 42 }, { $setOnInsert: { status: 'Paused' } }, { upsert: true });
    const seen = await B.findOne({ taskId, seq: 42 }).lean<{ status: string }>();
    expect(seen?.status).toBe('Paused');
    const agg = await B.aggregate<{ _id: string; n: number }>([
      { $match: { taskId } },
      { $group: { _id: '$status', n: { $sum: 1 } } },
    ]);
    expect(agg).toEqual([{ _id: 'Paused', n: 1 }]);
  });
});

import { Collection, MongoClient, ObjectId } from 'mongodb';
import { MongoWireServer } from '../src';

/**
 * Checks that indexed lookups take the index path (documents examined), not timings.
 * Timings are printed for information only.
 */
describe('mongo-wire: index usage on a 20k-document collection', () => {
  const N = 20_000;
  const TASKS = 50;
  let server: MongoWireServer;
  let client: MongoClient;
  let coll: Collection;
  const taskIds = Array.from({ length: TASKS }, () => new ObjectId());
  const ids: ObjectId[] = [];

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    client = new MongoClient(server.uri('perf'));
    await client.connect();
    coll = client.db().collection('items');
    await coll.createIndex({ key: 1 }, { unique: true });
    await coll.createIndex({ taskId: 1, seq: 1 }, { unique: true });
    await coll.createIndex({ taskId: 1, tstatus: 1 });
    const docs = Array.from({ length: N }, (_, i) => {
      const _id = new ObjectId();
      ids.push(_id);
      return {
        _id,
        key: `k${i}`,
        taskId: taskIds[i % TASKS],
        seq: i,
        tstatus: i % 10 === 0 ? 'Processing' : 'Queued',
        n: i,
      };
    });
    const t0 = Date.now();
    await coll.insertMany(docs);
    console.log(`insertMany ${N} docs with 3 secondary indexes: ${Date.now() - t0} ms`);
  }, 60_000);

  afterAll(async () => {
    await client.close();
    await server.stop();
  });

  const examined = async (fn: () => Promise<unknown>): Promise<{ docs: number; scans: number; lookups: number }> => {
    server.resetStats();
    await fn();
    const s = server.stats;
    return { docs: s.docsExamined, scans: s.collectionScans, lookups: s.indexLookups };
  };

  it('inserts without scanning', async () => {
    const s = await examined(() => coll.insertOne({ key: 'extra', taskId: new ObjectId(), seq: -1 }));
    expect(s.docs).toBe(0);
    expect(s.scans).toBe(0);
    await coll.deleteOne({ key: 'extra' });
  });

  it('answers _id and unique-field equality from the index', async () => {
    expect(await examined(() => coll.findOne({ _id: ids[12345] }))).toEqual({ docs: 1, scans: 0, lookups: 1 });
    expect(await examined(() => coll.findOne({ key: 'k17777' }))).toEqual({ docs: 1, scans: 0, lookups: 1 });
    const r = await examined(async () =>
      expect((await coll.find({ key: { $in: ['k1', 'k2', 'k3', 'nope'] } }).toArray()).length).toBe(3),
    );
    expect(r.docs).toBe(3);
    const ids3 = await examined(async () =>
      expect(await coll.countDocuments({ _id: { $in: ids.slice(0, 3) } })).toBe(3),
    );
    expect(ids3.docs).toBeLessThanOrEqual(3);
  });

  it('uses compound indexes for full keys and leading prefixes', async () => {
    const t = taskIds[7];
    expect((await examined(() => coll.findOne({ taskId: t, seq: 7 + TASKS * 3 }))).docs).toBe(1);
    const byTask = await examined(async () =>
      expect(await coll.find({ taskId: t }).sort({ seq: -1 }).limit(5).toArray()).toHaveLength(5),
    );
    expect(byTask.docs).toBe(N / TASKS);
    const processing = await examined(async () =>
      expect(await coll.countDocuments({ taskId: taskIds[0], tstatus: 'Processing' })).toBe(N / TASKS),
    );
    expect(processing.docs).toBeLessThanOrEqual(N / TASKS);
    expect(processing.scans).toBe(0);
    const queued = await examined(() => coll.countDocuments({ taskId: taskIds[1], tstatus: 'Queued' }));
    expect(queued.docs).toBeLessThanOrEqual(N / TASKS);
    expect(queued.scans).toBe(0);
  });

  it('uses the index for findOneAndUpdate, updateOne and deleteOne', async () => {
    expect((await examined(() => coll.findOneAndUpdate({ key: 'k42' }, { $inc: { n: 1 } }))).docs).toBe(1);
    expect((await examined(() => coll.updateOne({ _id: ids[43] }, { $set: { tstatus: 'Completed' } }))).docs).toBe(1);
    expect(
      (await examined(() => coll.updateOne({ taskId: taskIds[44], seq: 44 }, { $set: { tstatus: 'Completed' } }))).docs,
    ).toBe(1);
    expect(await coll.countDocuments({ taskId: taskIds[44], tstatus: 'Completed' })).toBe(1);
    expect((await examined(() => coll.deleteOne({ key: 'k45' }))).docs).toBe(1);
    expect(await coll.findOne({ key: 'k45' })).toBeNull();
  });

  it('answers a 5000-id $in combined with other conditions from the _id index, without re-checking $in per document', async () => {
    const picked = ids.filter((_, i) => i % 4 === 2).slice(0, 5000);
    const missing = Array.from({ length: 50 }, () => new ObjectId());
    const list = [...picked, ...missing, ...picked.slice(0, 100)];
    const expectedQueued = picked.filter((id) => ids.indexOf(id) % 10 !== 0).length;
    const hex = (docs: { _id: ObjectId }[]) => docs.map((d) => d._id.toHexString()).sort();

    const t0 = Date.now();
    let found: { _id: ObjectId }[] = [];
    const nullCond = await examined(async () => {
      found = await coll.find({ _id: { $in: list }, channelID: null }).toArray();
    });
    const withStatus = await examined(async () =>
      expect(await coll.countDocuments({ _id: { $in: list }, tstatus: 'Queued' })).toBe(expectedQueued),
    );
    const withRange = await examined(async () =>
      expect(await coll.countDocuments({ _id: { $in: list }, n: { $gte: 0 }, tstatus: { $ne: 'Nope' } })).toBe(5000),
    );
    const ms = Date.now() - t0;
    expect(hex(found)).toEqual(hex(picked.map((_id) => ({ _id }))));
    for (const s of [nullCond, withStatus, withRange]) {
      expect(s.scans).toBe(0);
      expect(s.docs).toBeLessThanOrEqual(5000);
    }
    console.log(`3 queries with a 5000-id $in plus other conditions: ${ms} ms`);
    expect(ms).toBeLessThan(5000);
  });

  it('falls back to a collection scan for unindexed filters (the counter is real)', async () => {
    const s = await examined(() => coll.findOne({ n: -5 }));
    expect(s.scans).toBe(1);
    expect(s.docs).toBeGreaterThan(N - 10);
  });

  it('keeps indexed findOneAndUpdate fast (timing printed, not asserted)', async () => {
    const ops = 2000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ops; i++)
      await coll.findOneAndUpdate({ key: `k${(i * 7) % N}` }, { $inc: { n: 1 } }, { returnDocument: 'after' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(
      `${ops} sequential indexed findOneAndUpdate: ${ms.toFixed(0)} ms (${((ops / ms) * 1000).toFixed(0)}/s)`,
    );
    expect(ms).toBeGreaterThan(0);
  });
});

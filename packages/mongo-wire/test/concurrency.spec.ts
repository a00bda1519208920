import { MongoClient, ObjectId } from 'mongodb';
import { MongoWireServer } from '../src';

/** Atomicity of single-document writes under concurrent clients; lifecycle under load. */
describe('mongo-wire: concurrency and lifecycle', () => {
  let server: MongoWireServer;
  const clients: MongoClient[] = [];

  const connect = async (maxPoolSize = 25): Promise<MongoClient> => {
    const c = new MongoClient(server.uri('conc'), { maxPoolSize });
    await c.connect();
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
  });

  it('20 parallel findOneAndUpdate $inc on one document give the exact count', async () => {
    const a = await connect();
    const b = await connect();
    const { insertedId } = await a.db().collection('counter').insertOne({ n: 0 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b)
          .db()
          .collection('counter')
          .findOneAndUpdate({ _id: insertedId }, { $inc: { n: 1 } }, { returnDocument: 'after' }),
      ),
    );
    expect((await a.db().collection('counter').findOne({ _id: insertedId }))?.n).toBe(20);
    // every caller saw a distinct value: the read-modify-write never interleaved
    expect(results.map((r) => r?.n).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('50 concurrent conditional claims: exactly one wins', async () => {
    const clientsForClaim = await Promise.all([connect(), connect(), connect()]);
    const coll = clientsForClaim[0].db().collection('claims');
    const _id = new ObjectId();
    await coll.insertOne({ _id, state: 'free' });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        clientsForClaim[i % 3]
          .db()
          .collection('claims')
          .updateOne({ _id, state: 'free' }, { $set: { state: 'taken', by: i } }),
      ),
    );
    expect(results.filter((r) => r.modifiedCount === 1)).toHaveLength(1);
    expect(results.reduce((s, r) => s + r.matchedCount, 0)).toBe(1);
    expect((await coll.findOne({ _id }))?.state).toBe('taken');
  });

  it('concurrent upserts on one key create one document', async () => {
    const c = await connect();
    const coll = c.db().collection('leases');
    await coll.createIndex({ key: 1 }, { unique: true });
    const results = await Promise.all(
      Array.from({ length: 30 }, () => coll.updateOne({ key: 'lock' }, { $inc: { hits: 1 } }, { upsert: true })),
    );
    expect(results.filter((r) => r.upsertedCount === 1)).toHaveLength(1);
    expect(await coll.countDocuments({ key: 'lock' })).toBe(1);
    expect((await coll.findOne({ key: 'lock' }))?.hits).toBe(30);
  });

  it('creates the same indexes concurrently from several connections', async () => {
    const cs = await Promise.all([connect(2), connect(2), connect(2)]);
    const res = await Promise.all(
      cs.map((c) =>
        c
          .db()
          .collection('shared_idx')
          .createIndexes([{ key: { taskId: 1, seq: 1 }, unique: true }, { key: { status: 1 } }]),
      ),
    );
    for (const names of res) expect(names).toEqual(['taskId_1_seq_1', 'status_1']);
    expect((await cs[0].db().collection('shared_idx').indexes()).map((i) => i.name)).toEqual([
      '_id_',
      'taskId_1_seq_1',
      'status_1',
    ]);
  });

  it('many clients inserting in parallel all land, with unique _ids', async () => {
    const cs = await Promise.all(Array.from({ length: 5 }, () => connect(10)));
    await Promise.all(
      cs.flatMap((c, ci) => Array.from({ length: 40 }, (_, i) => c.db().collection('par').insertOne({ ci, i }))),
    );
    expect(await cs[0].db().collection('par').countDocuments()).toBe(200);
    expect(await cs[0].db().collection('par').countDocuments({ ci: 3 })).toBe(40);
  });

  it('pause() drops connections and resume() serves the same data on the same port', async () => {
    const c = await connect(2);
    await c.db().collection('survive').insertOne({ k: 1 });
    const port = server.port;
    await server.pause();
    expect(server.connectionCount).toBe(0);
    await server.resume();
    expect(server.port).toBe(port);
    const fresh = await connect(2);
    expect(await fresh.db().collection('survive').countDocuments({ k: 1 })).toBe(1);
    // the old client reconnects by itself
    expect(await c.db().collection('survive').countDocuments({ k: 1 })).toBe(1);
  });

  it('stop() is idempotent and a second server can be started and stopped', async () => {
    const other = new MongoWireServer();
    await other.start();
    const c = new MongoClient(other.uri('x'), { serverSelectionTimeoutMS: 2000 });
    await c.connect();
    await c.db().command({ ping: 1 });
    await other.stop();
    await other.stop();
    await c.close();
  });
});

import { Collection, Document, MongoClient, ObjectId } from 'mongodb';
import { filterKey } from '../src/engine';
import { MongoWireServer } from '../src';

/** Compiled filters are cached by value: a repeated filter must behave exactly like a fresh one. */
describe('mongo-wire: compiled filter cache', () => {
  let server: MongoWireServer;
  let client: MongoClient;
  let coll: Collection<Document>;

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    client = new MongoClient(server.uri('cache'));
    await client.connect();
  });
  beforeEach(async () => {
    coll = client.db().collection(`c${Math.random().toString(36).slice(2)}`);
  });
  afterAll(async () => {
    await client.close();
    await server.stop();
  });

  it('keeps filters that differ only in value types, key order or nesting apart', () => {
    const keys = [
      { a: { $gt: 1 } },
      { a: { $gt: '1' } },
      { a: { $gt: true } },
      { a: { $gt: new Date(1) } },
      { a: { $gt: null } },
      { a: { $gt: undefined } },
      { a: { $gt: [1] } },
      { a: { $gt: { 1: 1 } } },
      { a: { $gte: 1 } },
      { a: { $gt: 1 }, b: { $lt: 2 } },
      { b: { $lt: 2 }, a: { $gt: 1 } },
      { a: { $gt: 1, b: 2 } },
      { a: { $in: [1, 2] } },
      { a: { $in: [12] } },
      { a: { $in: ['1,', 2] } },
      { a: { $gt: new ObjectId('0123456789abcdef01234567') } },
      { a: { $regex: 'x', $options: 'i' } },
      { a: /x/i },
      { a: /x/ },
    ].map((f) => filterKey(f));
    expect(keys.every((k) => typeof k === 'string')).toBe(true);
    expect(new Set(keys).size).toBe(keys.length);
    expect(filterKey({ a: { $gt: 1 } })).toBe(keys[0]);
  });

  it('does not cache time- or script-dependent filters', () => {
    expect(filterKey({ $expr: { $lt: ['$t', '$$NOW'] } })).toBeNull();
    expect(filterKey({ a: 1, $or: [{ $expr: { $eq: ['$a', 1] } }] })).toBeNull();
    expect(filterKey({ a: { $in: Array.from({ length: 5000 }, (_, i) => `value-${i}`) } })).toBeNull();
  });

  it('answers repeated comparison filters by value type (MongoDB type bracketing)', async () => {
    await coll.insertMany([
      { _id: 1, a: 5 },
      { _id: 2, a: 'b' },
    ] as Document[]);
    for (let round = 0; round < 2; round++) {
      expect(await coll.find({ a: { $gt: 1 } }).toArray()).toEqual([{ _id: 1, a: 5 }]);
      expect(await coll.find({ a: { $gt: '1' } }).toArray()).toEqual([{ _id: 2, a: 'b' }]);
      expect(await coll.countDocuments({ a: { $gt: 6 } })).toBe(0);
    }
  });

  it('resolves positional updates on leases with several conditions on the array', async () => {
    const now = new Date();
    await coll.insertOne({
      _id: 1,
      leases: [
        { id: 'a', until: new Date(0) },
        { id: 'b', until: new Date(0) },
        { id: 'b', until: new Date(now.getTime() + 60_000) },
      ],
    } as Document);
    for (let round = 0; round < 2; round++) {
      const res = await coll.findOneAndUpdate(
        { _id: 1, leases: { $elemMatch: { id: 'b', until: { $gt: now } } } } as Document,
        { $inc: { 'leases.$.n': 1 } },
        { returnDocument: 'after' },
      );
      expect((res as Document).leases.map((l: Document) => l.n)).toEqual([undefined, undefined, round + 1]);
    }
    const res = await coll.findOneAndUpdate(
      { _id: 1, 'leases.id': 'b' } as Document,
      { $set: { 'leases.$.seen': true } },
      { returnDocument: 'after', projection: { 'leases.$': 1 } },
    );
    expect(res).toEqual({ _id: 1, leases: [{ id: 'b', until: new Date(0), seen: true }] });
  });
});

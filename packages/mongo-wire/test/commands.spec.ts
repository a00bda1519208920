import { Db, Decimal128, Document, Double, Int32, Long, MongoClient, MongoServerError, ObjectId } from 'mongodb';
import { MongoWireServer } from '../src';

/** Commands and reply shapes through the official driver, over TCP. */
describe('mongo-wire: commands through the mongodb driver', () => {
  let server: MongoWireServer;
  let client: MongoClient;
  let db: Db;

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    client = new MongoClient(server.uri('t'));
    await client.connect();
    db = client.db('t');
  });

  afterAll(async () => {
    await client.close();
    await server.stop();
  });

  const serverError = async (p: Promise<unknown>): Promise<MongoServerError> => {
    try {
      await p;
    } catch (e) {
      return e as MongoServerError;
    }
    throw new Error('expected a server error');
  };

  describe('lifecycle and handshake', () => {
    it('builds the uri with and without a database', () => {
      expect(server.uri('openhim')).toBe(`mongodb://127.0.0.1:${server.port}/openhim?directConnection=true`);
      expect(server.uri()).toBe(`mongodb://127.0.0.1:${server.port}/?directConnection=true`);
      expect(server.port).toBeGreaterThan(0);
    });

    it('answers hello / ismaster / ping / buildInfo / getParameter / serverStatus', async () => {
      const admin = db.admin();
      const hello = await admin.command({ hello: 1 });
      expect(hello).toMatchObject({
        ok: 1,
        isWritablePrimary: true,
        helloOk: true,
        minWireVersion: 0,
        maxWireVersion: 25, // MongoDB 8.0, the default announced version (versions.spec.ts: the others)
        logicalSessionTimeoutMinutes: 30,
        maxBsonObjectSize: 16777216,
      });
      expect(hello.topologyVersion).toBeUndefined();
      expect(hello.localTime).toBeInstanceOf(Date);
      expect((await admin.command({ ismaster: 1 })).ismaster).toBe(true);
      expect((await admin.command({ isMaster: 1 })).ismaster).toBe(true);
      expect(await admin.command({ ping: 1 })).toEqual({ ok: 1 });
      const build = await admin.command({ buildInfo: 1 });
      expect(build.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(build.versionArray).toHaveLength(4);
      expect(
        (await admin.command({ getParameter: 1, featureCompatibilityVersion: 1 })).featureCompatibilityVersion,
      ).toEqual({ version: '8.0' });
      const status = await admin.command({ serverStatus: 1 });
      expect(status.ok).toBe(1);
      expect(status.connections.current).toBeGreaterThan(0);
    });

    it('rejects unknown commands with 59 CommandNotFound', async () => {
      const err = await serverError(db.command({ frobnicate: 1 }));
      expect(err).toBeInstanceOf(MongoServerError);
      expect(err.code).toBe(59);
      expect(err.codeName).toBe('CommandNotFound');
      expect(err.message).toContain('frobnicate');
    });

    it('accepts session and transaction commands', async () => {
      expect((await db.admin().command({ endSessions: [] })).ok).toBe(1);
      const session = client.startSession();
      try {
        await session.withTransaction(async () => {
          await db.collection('txn').insertOne({ a: 1 }, { session });
        });
      } finally {
        await session.endSession();
      }
      expect(await db.collection('txn').countDocuments()).toBe(1);
      expect((await db.admin().command({ abortTransaction: 1 })).ok).toBe(1);
      expect((await db.admin().command({ commitTransaction: 1 })).ok).toBe(1);
    });
  });

  describe('collections and databases', () => {
    it('create answers 48 NamespaceExists the second time', async () => {
      expect(await db.command({ create: 'created' })).toEqual({ ok: 1 });
      const err = await serverError(db.command({ create: 'created' }));
      expect(err.code).toBe(48);
      expect(err.codeName).toBe('NamespaceExists');
    });

    it('listCollections filters by name and supports nameOnly', async () => {
      await db.collection('lc_a').insertOne({});
      await db.collection('lc_b').insertOne({});
      const all = await db.listCollections().toArray();
      expect(all.map((c) => c.name)).toEqual(expect.arrayContaining(['lc_a', 'lc_b']));
      const one = await db.listCollections({ name: 'lc_a' }).toArray();
      expect(one).toHaveLength(1);
      expect(one[0]).toMatchObject({
        name: 'lc_a',
        type: 'collection',
        options: {},
        info: { readOnly: false },
        idIndex: { name: '_id_' },
      });
      const names = await db.listCollections({ name: { $in: ['lc_a', 'lc_b'] } }, { nameOnly: true }).toArray();
      expect(names).toEqual([
        { name: 'lc_a', type: 'collection' },
        { name: 'lc_b', type: 'collection' },
      ]);
    });

    it('lists, drops databases and collections', async () => {
      const other = client.db('other_db');
      await other.collection('x').insertOne({ a: 1 });
      const { databases } = await db.admin().listDatabases();
      expect(databases.map((d) => d.name)).toEqual(expect.arrayContaining(['t', 'other_db']));
      expect(await other.collection('x').drop()).toBe(true);
      await other.collection('y').insertOne({ a: 1 });
      expect(await other.dropDatabase()).toBe(true);
      const after = await db.admin().listDatabases({ nameOnly: true });
      expect(after.databases.map((d) => d.name)).not.toContain('other_db');
    });

    it('bounds capped collections, oldest first', async () => {
      await db.createCollection('capped', { capped: true, size: 100000, max: 3 });
      for (let i = 0; i < 5; i++) await db.collection('capped').insertOne({ i });
      const docs = await db
        .collection('capped')
        .find({}, { projection: { _id: 0 } })
        .toArray();
      expect(docs).toEqual([{ i: 2 }, { i: 3 }, { i: 4 }]);
      const info = await db.listCollections({ name: 'capped' }).toArray();
      expect((info[0] as { options?: Document }).options).toMatchObject({ capped: true, max: 3 });
    });

    it('expires documents through TTL indexes', async () => {
      const c = db.collection('ttl');
      await c.createIndex({ createdAt: 1 }, { expireAfterSeconds: 60 });
      await c.insertMany([
        { k: 'old', createdAt: new Date(Date.now() - 120_000) },
        { k: 'new', createdAt: new Date() },
        { k: 'no-date' },
      ]);
      expect(server.reapExpired()).toBe(1);
      expect((await c.find().toArray()).map((d) => d.k)).toEqual(['new', 'no-date']);
    });

    it('renames collections', async () => {
      await db.collection('ren_src').insertOne({ a: 1 });
      await db.collection('ren_src').createIndex({ a: 1 });
      await db.renameCollection('ren_src', 'ren_dst');
      expect(await db.collection('ren_dst').countDocuments()).toBe(1);
      expect((await db.collection('ren_dst').indexes()).map((i) => i.name)).toEqual(['_id_', 'a_1']);
    });
  });

  describe('insert / find / cursors', () => {
    it('keeps insertion order as the natural order and honours filter, sort, projection, skip, limit', async () => {
      const c = db.collection('people');
      await c.insertMany([
        { name: 'c', age: 30, tags: ['x'] },
        { name: 'a', age: 20, tags: ['y', 'x'] },
        { name: 'b', age: 40, tags: [] },
        { name: 'd', age: 20 },
      ]);
      expect((await c.find().toArray()).map((d) => d.name)).toEqual(['c', 'a', 'b', 'd']);
      expect((await c.find({ age: 20 }).toArray()).map((d) => d.name)).toEqual(['a', 'd']);
      expect((await c.find({ tags: 'x' }).toArray()).map((d) => d.name)).toEqual(['c', 'a']);
      expect((await c.find().sort({ age: -1, name: 1 }).toArray()).map((d) => d.name)).toEqual(['b', 'c', 'a', 'd']);
      expect((await c.find().sort({ name: 1 }).skip(1).limit(2).toArray()).map((d) => d.name)).toEqual(['b', 'c']);
      expect(await c.find({ name: 'a' }, { projection: { _id: 0, name: 1 } }).toArray()).toEqual([{ name: 'a' }]);
      const excl = await c.findOne({ name: 'a' }, { projection: { tags: 0 } });
      expect(Object.keys(excl ?? {})).toEqual(['_id', 'name', 'age']);
      expect(await c.countDocuments({ age: { $gte: 30 } })).toBe(2);
    });

    it('projects with $slice, positional field.$ and $elemMatch', async () => {
      const c = db.collection('proj');
      await c.insertOne({
        _id: 'p' as never,
        a: [1, 2, 3, 4],
        s: [
          { x: 1, y: 2 },
          { x: 2, y: 3 },
        ],
        n: 5,
        sub: { list: [1, 2, 3] },
      });
      expect(await c.findOne({}, { projection: { a: { $slice: 2 } } })).toEqual({
        _id: 'p',
        a: [1, 2],
        s: [
          { x: 1, y: 2 },
          { x: 2, y: 3 },
        ],
        n: 5,
        sub: { list: [1, 2, 3] },
      });
      expect(await c.findOne({}, { projection: { n: 1, 'sub.list': { $slice: -1 } } })).toEqual({
        _id: 'p',
        n: 5,
        sub: { list: [3] },
      });
      expect(await c.findOne({}, { projection: { a: { $slice: [1, 2] }, _id: 0, n: 1 } })).toEqual({ a: [2, 3], n: 5 });
      expect(await c.findOne({ 's.x': 2 }, { projection: { 's.$': 1 } })).toEqual({ _id: 'p', s: [{ x: 2, y: 3 }] });
      expect(await c.findOne({}, { projection: { s: { $elemMatch: { y: 2 } }, _id: 0 } })).toEqual({
        s: [{ x: 1, y: 2 }],
      });
      const mixed = await serverError(c.findOne({}, { projection: { a: 1, n: 0 } }));
      expect(mixed.code).toBe(31254);
      // the stored document is untouched by projections
      expect((await c.findOne({}))?.sub).toEqual({ list: [1, 2, 3] });
    });

    it('streams cursors larger than one batch with getMore', async () => {
      const c = db.collection('big');
      await c.insertMany(Array.from({ length: 1000 }, (_, i) => ({ i })));
      const started: string[] = [];
      const monitored = new MongoClient(server.uri(), { monitorCommands: true });
      monitored.on('commandStarted', (e) => started.push(e.commandName));
      try {
        const docs = await monitored.db('t').collection('big').find({}, { batchSize: 100 }).toArray();
        expect(docs.map((d) => d.i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
        expect(started.filter((n) => n === 'getMore').length).toBe(9);
      } finally {
        await monitored.close();
      }
    });

    it('uses 101 as the default first batch, Long cursor ids, killCursors and 43 for unknown cursors', async () => {
      const res = await db.command({ find: 'big', filter: {} }, { promoteLongs: false });
      expect(res.cursor.firstBatch).toHaveLength(101);
      expect(res.cursor.ns).toBe('t.big');
      const id = res.cursor.id as Long;
      expect(Long.isLong(id)).toBe(true);
      expect(id.isZero()).toBe(false);
      const more = await db.command({ getMore: id, collection: 'big', batchSize: 10 });
      expect(more.cursor.nextBatch.map((d: { i: number }) => d.i)).toEqual([
        101, 102, 103, 104, 105, 106, 107, 108, 109, 110,
      ]);
      const killed = await db.command({ killCursors: 'big', cursors: [id] });
      expect(killed.cursorsKilled.map(String)).toEqual([String(id)]);
      const err = await serverError(db.command({ getMore: id, collection: 'big' }));
      expect(err.code).toBe(43);
      expect(err.codeName).toBe('CursorNotFound');
      const single = await db.command({ find: 'big', filter: {}, batchSize: 5, singleBatch: true });
      expect(single.cursor.firstBatch).toHaveLength(5);
      expect(String(single.cursor.id)).toBe('0');
      const empty = await db.command({ find: 'big', filter: { i: { $lt: 3 } }, batchSize: 0 }, { promoteLongs: false });
      expect(empty.cursor.firstBatch).toEqual([]);
      const rest = await db.command({ getMore: empty.cursor.id, collection: 'big' });
      expect(rest.cursor.nextBatch.map((d: { i: number }) => d.i)).toEqual([0, 1, 2]);
      expect(rest.cursor.id).toBe(0);
      const negative = await db.command({ find: 'big', filter: {}, limit: -3 });
      expect(negative.cursor.firstBatch).toHaveLength(3);
      expect(String(negative.cursor.id)).toBe('0');
    });

    it('sorts stably: equal keys keep insertion order', async () => {
      const c = db.collection('stable');
      await c.insertMany(Array.from({ length: 300 }, (_, i) => ({ g: i % 3, i })));
      const docs = await c.find().sort({ g: 1 }).toArray();
      for (let g = 0; g < 3; g++) {
        const is = docs.filter((d) => d.g === g).map((d) => d.i);
        expect(is).toEqual([...is].sort((a, b) => a - b));
      }
      expect(docs.slice(0, 3).map((d) => d.i)).toEqual([0, 3, 6]);
      const top = await c.find().sort({ g: -1 }).limit(2).toArray();
      expect(top.map((d) => d.i)).toEqual([2, 5]);
    });

    it('orders mixed types and arrays like MongoDB, and keeps natural order through updates', async () => {
      const c = db.collection('mixed');
      await c.insertMany([
        { k: 'b', v: 'str' },
        { k: 'a', v: 5 },
        { k: 'c' },
        { k: 'd', v: null },
        { k: 'e', v: [10, 1] },
        { k: 'f', v: new Date(0) },
        { k: 'g', v: true },
      ]);
      const asc = await c.find().sort({ v: 1 }).toArray();
      expect(asc.map((d) => d.k)).toEqual(['c', 'd', 'e', 'a', 'b', 'g', 'f']);
      const desc = await c.find().sort({ v: -1 }).toArray();
      expect(desc.map((d) => d.k)).toEqual(['f', 'g', 'b', 'e', 'a', 'c', 'd']);
      await c.updateOne({ k: 'b' }, { $set: { v: 'changed', extra: 'x'.repeat(1000) } });
      expect((await c.find().toArray()).map((d) => d.k)).toEqual(['b', 'a', 'c', 'd', 'e', 'f', 'g']);
      expect((await c.find().sort({ $natural: -1 }).limit(2).toArray()).map((d) => d.k)).toEqual(['g', 'f']);
      expect(await db.command({ count: 'mixed', query: { k: { $gte: 'b' } }, skip: 1, limit: 3 })).toEqual({
        n: 3,
        ok: 1,
      });
    });

    it('matches $in with ObjectIds and date ranges', async () => {
      const c = db.collection('refs');
      const ids = [new ObjectId(), new ObjectId(), new ObjectId()];
      const base = Date.UTC(2024, 0, 1);
      await c.insertMany(ids.map((ref, i) => ({ ref, at: new Date(base + i * 86_400_000), i })));
      expect((await c.find({ ref: { $in: [ids[0], ids[2]] } }).toArray()).map((d) => d.i)).toEqual([0, 2]);
      expect((await c.find({ ref: ids[1] }).toArray()).map((d) => d.i)).toEqual([1]);
      expect((await c.find({ ref: { $gt: ids[0] } }).toArray()).map((d) => d.i)).toEqual([1, 2]);
      expect((await c.find({ ref: { $nin: [ids[1]] } }).toArray()).map((d) => d.i)).toEqual([0, 2]);
      expect((await c.find({ ref: { $ne: ids[1] }, i: { $in: [1, 2] } }).toArray()).map((d) => d.i)).toEqual([2]);
      expect(
        (await c.find({ $or: [{ ref: ids[0] }, { at: new Date(base + 2 * 86_400_000) }] }).toArray()).map((d) => d.i),
      ).toEqual([0, 2]);
      expect(await c.find({ _id: { $in: [] } }).toArray()).toEqual([]);
      const range = await c
        .find({ at: { $gte: new Date(base + 86_400_000), $lt: new Date(base + 3 * 86_400_000) } })
        .toArray();
      expect(range.map((d) => d.i)).toEqual([1, 2]);
      expect((await c.find().sort({ at: -1 }).toArray()).map((d) => d.i)).toEqual([2, 1, 0]);
      expect((await c.find().sort({ ref: 1 }).toArray()).map((d) => d.i)).toEqual([0, 1, 2]);
      const byId = await c.findOne({ ref: ids[2] });
      expect(await c.findOne({ _id: byId?._id })).toEqual(byId);
    });

    it('preserves int32 / int64 / double / decimal types', async () => {
      const c = db.collection('types');
      const big = Long.fromString('9007199254740993');
      await c.insertOne({
        _id: 1 as never,
        i: new Int32(5),
        l: Long.fromNumber(5),
        d: new Double(5),
        f: 5.5,
        big,
        dec: Decimal128.fromString('1.10'),
        nested: [{ l: Long.fromNumber(7) }],
      });
      const raw = await c.findOne({ _id: 1 as never }, { promoteValues: false });
      expect(raw?.i).toBeInstanceOf(Int32);
      expect(raw?.l).toBeInstanceOf(Long);
      expect(raw?.d).toBeInstanceOf(Double);
      expect(raw?.f).toBeInstanceOf(Double);
      expect(String(raw?.big)).toBe('9007199254740993');
      expect(raw?.dec).toBeInstanceOf(Decimal128);
      expect(String(raw?.dec)).toBe('1.10');
      expect(raw?.nested[0].l).toBeInstanceOf(Long);
      // filters compare numbers by value whatever their BSON type
      expect(await c.countDocuments({ l: 5, d: 5, i: 5 })).toBe(1);
      await c.updateOne({ _id: 1 as never }, { $inc: { l: 1, d: 1, i: 1 } });
      const after = await c.findOne({ _id: 1 as never }, { promoteValues: false });
      expect(after?.l).toBeInstanceOf(Long);
      expect(Number(after?.l)).toBe(6);
      expect(after?.d).toBeInstanceOf(Double);
      expect(Number(after?.d)).toBe(6);
      expect(after?.i).toBeInstanceOf(Int32);
      await c.updateOne({ _id: 1 as never }, { $set: { s: Long.fromNumber(3), i: new Double(2) } });
      const set = await c.findOne({ _id: 1 as never }, { promoteValues: false });
      expect(set?.s).toBeInstanceOf(Long);
      expect(set?.i).toBeInstanceOf(Double);
      const promoted = await c.findOne({ _id: 1 as never });
      expect(promoted?.l).toBe(6);
    });

    it('returns copies: documents are stored detached from what clients send and receive', async () => {
      const c = db.collection('detached');
      const doc = { _id: new ObjectId(), list: [{ a: 1 }] };
      await c.insertOne(doc);
      doc.list[0].a = 99;
      const got = await c.findOne({ _id: doc._id });
      expect(got?.list[0].a).toBe(1);
      // an open cursor does not see later in-place changes to its snapshot of a document
      await c.insertMany([{ n: 1 }, { n: 2 }, { n: 3 }]);
      const cursor = c.find({ n: { $exists: true } }, { batchSize: 1 });
      const first = await cursor.next();
      await c.updateMany({}, { $set: { touched: true } });
      const rest = await cursor.toArray();
      expect(first?.n).toBe(1);
      expect(rest).toHaveLength(2);
    });
  });

  describe('updates', () => {
    it('reports n / nModified for updateOne, updateMany and no-op sets', async () => {
      const c = db.collection('upd');
      await c.insertMany([
        { k: 1, v: 0 },
        { k: 1, v: 0 },
        { k: 2, v: 0 },
      ]);
      expect(await c.updateOne({ k: 1 }, { $set: { v: 1 } })).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
      expect(await c.updateMany({ k: 1 }, { $set: { v: 1 } })).toMatchObject({ matchedCount: 2, modifiedCount: 1 });
      expect(await c.updateMany({ k: 3 }, { $set: { v: 1 } })).toMatchObject({
        matchedCount: 0,
        modifiedCount: 0,
        upsertedCount: 0,
      });
      const raw = await db.command({ update: 'upd', updates: [{ q: { k: 2 }, u: { $inc: { v: 5 } } }] });
      expect(raw).toEqual({ n: 1, nModified: 1, ok: 1 });
    });

    it('upserts seeded from equality filters, honouring $setOnInsert', async () => {
      const c = db.collection('ups');
      const res = await c.updateOne(
        { key: 'a', 'meta.kind': 'k', n: { $gt: 1 }, tag: { $eq: 't' }, $and: [{ extra: 1 }] },
        { $set: { v: 1 }, $setOnInsert: { created: 'now' } },
        { upsert: true },
      );
      expect(res.upsertedCount).toBe(1);
      const doc = await c.findOne({ _id: res.upsertedId as ObjectId });
      expect(doc).toEqual({
        _id: res.upsertedId,
        key: 'a',
        meta: { kind: 'k' },
        tag: 't',
        extra: 1,
        v: 1,
        created: 'now',
      });
      const again = await c.updateOne(
        { key: 'a' },
        { $set: { v: 2 }, $setOnInsert: { created: 'later' } },
        { upsert: true },
      );
      expect(again).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
      expect((await c.findOne({ key: 'a' }))?.created).toBe('now');
      const raw = await db.command({
        update: 'ups',
        updates: [{ q: { _id: 'fixed' }, u: { $set: { x: 1 } }, upsert: true }],
      });
      expect(raw).toEqual({ n: 1, nModified: 0, upserted: [{ index: 0, _id: 'fixed' }], ok: 1 });
      await c.updateOne({ counter: Long.fromNumber(7), kind: 'long-seed' }, { $inc: { hits: 1 } }, { upsert: true });
      const seeded = await c.findOne({ kind: 'long-seed' }, { promoteValues: false });
      expect(seeded?.counter).toBeInstanceOf(Long);
      const replaced = await c.replaceOne({ _id: 'r1' as never, ignored: true }, { body: 1 }, { upsert: true });
      expect(replaced.upsertedId).toBe('r1');
      expect(await c.findOne({ _id: 'r1' as never })).toEqual({ _id: 'r1', body: 1 });
    });

    it('treats _id in $set like MongoDB: same value dropped, different value 66 ImmutableField', async () => {
      const c = db.collection('immutable');
      const { insertedId } = await c.insertOne({ a: 1 });
      expect(await c.updateOne({ _id: insertedId }, { $set: { _id: insertedId, a: 2 } })).toMatchObject({
        modifiedCount: 1,
      });
      const err = await serverError(c.updateOne({ _id: insertedId }, { $set: { _id: new ObjectId() } }));
      expect(err.code).toBe(66);
      const repl = await serverError(c.replaceOne({ _id: insertedId }, { _id: new ObjectId(), a: 3 }));
      expect(repl.code).toBe(66);
      const fam = await serverError(c.findOneAndUpdate({ _id: insertedId }, { $set: { _id: 5 } }));
      expect(fam.code).toBe(66);
      expect(fam.codeName).toBe('ImmutableField');
      expect(await c.findOne({ _id: insertedId })).toEqual({ _id: insertedId, a: 2 });
      // findByIdAndUpdate(id, wholeDoc) style
      const same = await c.findOneAndUpdate(
        { _id: insertedId },
        { $set: { _id: insertedId, a: 4 } },
        { returnDocument: 'after' },
      );
      expect(same).toEqual({ _id: insertedId, a: 4 });
    });

    it('writes nested paths without disturbing the previous version or sibling subdocuments', async () => {
      const c = db.collection('cow');
      const { insertedId } = await c.insertOne({ a: { b: { c: 1, d: [1, 2] }, e: { f: 'x' } }, g: [{ h: 1 }] });
      const before = await c.findOneAndUpdate(
        { _id: insertedId },
        { $set: { 'a.b.c': 2, 'a.b.k': 'new', 'x.y': 3 }, $inc: { 'a.e.n': 1 }, $unset: { 'a.b.d': '' } },
        { returnDocument: 'before' },
      );
      expect(before).toEqual({ _id: insertedId, a: { b: { c: 1, d: [1, 2] }, e: { f: 'x' } }, g: [{ h: 1 }] });
      expect(await c.findOne({ _id: insertedId })).toEqual({
        _id: insertedId,
        a: { b: { c: 2, k: 'new' }, e: { f: 'x', n: 1 } },
        g: [{ h: 1 }],
        x: { y: 3 },
      });
      await c.updateOne({ _id: insertedId }, { $set: { 'g.0.h': 5 } });
      expect(await c.countDocuments({ 'a.b.c': 2, 'g.h': 5 })).toBe(1);
    });

    it('writes through array elements (positional paths) copy-on-write', async () => {
      const c = db.collection('cow_arrays');
      const leases = [
        { id: 'a', until: 1 },
        { id: 'b', until: 2 },
      ];
      const { insertedId } = await c.insertOne({ n: 0, leases, m: [[{ x: 1 }]] });
      const before = await c.findOneAndUpdate(
        { _id: insertedId, 'leases.id': 'b' },
        { $inc: { n: 1, 'leases.$.hits': 1 }, $set: { 'leases.$.until': 9 }, $unset: { 'leases.0.until': '' } },
        { returnDocument: 'before' },
      );
      expect(before).toEqual({ _id: insertedId, n: 0, leases, m: [[{ x: 1 }]] });
      await c.updateOne({ _id: insertedId }, { $set: { 'm.0.0.x': 2, 'leases.3.id': 'd' } });
      expect(await c.findOne({ _id: insertedId })).toEqual({
        _id: insertedId,
        n: 1,
        leases: [{ id: 'a' }, { id: 'b', until: 9, hits: 1 }, null, { id: 'd' }],
        m: [[{ x: 2 }]],
      });
    });

    it('pushes single values copy-on-write, leaving modifiers and type errors to the general path', async () => {
      const c = db.collection('cow_push');
      const { insertedId } = await c.insertOne({ ids: [1], s: 'x', sub: { list: [{ a: 1 }] } });
      const before = await c.findOneAndUpdate(
        { _id: insertedId },
        { $push: { ids: 2, 'sub.list': { a: 2 }, fresh: [3], 'new.path': 'v' } } as never,
        { returnDocument: 'before' },
      );
      expect(before).toEqual({ _id: insertedId, ids: [1], s: 'x', sub: { list: [{ a: 1 }] } });
      await c.updateOne({ _id: insertedId }, { $push: { ids: { $each: [3, 4], $slice: -3 } } } as never);
      expect(await c.findOne({ _id: insertedId })).toEqual({
        _id: insertedId,
        ids: [2, 3, 4],
        s: 'x',
        sub: { list: [{ a: 1 }, { a: 2 }] },
        fresh: [[3]],
        new: { path: ['v'] },
      });
      const err = await serverError(c.updateOne({ _id: insertedId }, { $push: { s: 1 } } as never));
      expect(err.code).toBeDefined();
      expect((await c.findOne({ _id: insertedId }))?.s).toBe('x');
    });

    it('replaces documents keeping _id', async () => {
      const c = db.collection('replace');
      const { insertedId } = await c.insertOne({ a: 1, b: 2 });
      expect(await c.replaceOne({ _id: insertedId }, { c: 3 })).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
      expect(await c.findOne({ _id: insertedId })).toEqual({ _id: insertedId, c: 3 });
      expect(await c.replaceOne({ _id: insertedId }, { c: 3 })).toMatchObject({ matchedCount: 1, modifiedCount: 0 });
    });

    it('applies several positional ($) paths under one array in one update', async () => {
      const c = db.collection('positional');
      const rerunID = new ObjectId();
      const { insertedId } = await c.insertOne({
        transactions: [
          { tid: 't1', tstatus: 'Queued' },
          { tid: 't2', tstatus: 'Queued' },
          { tid: 't3', tstatus: 'Queued' },
        ],
      });
      const res = await c.updateOne(
        { _id: insertedId, 'transactions.tid': 't2' },
        {
          $set: { 'transactions.$.tstatus': 'Completed', 'transactions.$.rerunID': rerunID },
          $inc: { 'transactions.$.tries': 1 },
        },
      );
      expect(res.modifiedCount).toBe(1);
      const doc = await c.findOne({ _id: insertedId });
      expect(doc?.transactions).toEqual([
        { tid: 't1', tstatus: 'Queued' },
        { tid: 't2', tstatus: 'Completed', rerunID, tries: 1 },
        { tid: 't3', tstatus: 'Queued' },
      ]);
      await c.updateOne(
        { _id: insertedId, transactions: { $elemMatch: { tid: 't3', tstatus: 'Queued' } } },
        { $set: { 'transactions.$.tstatus': 'Failed', 'transactions.$.error': 'x' } },
      );
      expect((await c.findOne({ _id: insertedId }))?.transactions[2]).toEqual({
        tid: 't3',
        tstatus: 'Failed',
        error: 'x',
      });
      const err = await serverError(c.updateOne({ _id: insertedId }, { $set: { 'transactions.$.tstatus': 'X' } }));
      expect(err.code).toBe(2);
      const nested = await c.insertOne({ run: { items: [{ id: 1 }, { id: 2 }] } });
      await c.updateMany({ 'run.items.id': 2 }, { $set: { 'run.items.$.done': true } });
      expect((await c.findOne({ _id: nested.insertedId }))?.run.items).toEqual([{ id: 1 }, { id: 2, done: true }]);
    });

    it('applies several array-filter ($[id]) and $[] paths under one array in one update', async () => {
      const c = db.collection('arrayfilters');
      const { insertedId } = await c.insertOne({
        items: [
          { k: 'a', s: 'Q', n: 1, sub: [{ v: 1 }, { v: 2 }] },
          { k: 'b', s: 'Q', n: 2, sub: [{ v: 3 }] },
          { k: 'c', s: 'P', n: 3, sub: [] },
        ],
      });
      await c.updateOne(
        { _id: insertedId },
        { $set: { 'items.$[e].s': 'Done', 'items.$[e].by': 'me' }, $inc: { 'items.$[].n': 10 } },
        { arrayFilters: [{ 'e.s': 'Q' }] },
      );
      let doc = await c.findOne({ _id: insertedId });
      expect(doc?.items.map((i: { s: string; n: number; by?: string }) => [i.s, i.n, i.by])).toEqual([
        ['Done', 11, 'me'],
        ['Done', 12, 'me'],
        ['P', 13, undefined],
      ]);
      await c.updateOne(
        { _id: insertedId },
        { $set: { 'items.$[i].sub.$[j].hit': true } },
        { arrayFilters: [{ 'i.k': { $in: ['a', 'b'] } }, { 'j.v': { $gte: 2 } }] },
      );
      doc = await c.findOne({ _id: insertedId });
      expect(doc?.items[0].sub).toEqual([{ v: 1 }, { v: 2, hit: true }]);
      expect(doc?.items[1].sub).toEqual([{ v: 3, hit: true }]);
    });

    it('supports the usual operators and $pushAll as $push with $each', async () => {
      interface OpsDoc {
        n: number;
        arr: number[];
        set: string[];
        gone?: number;
        old?: string;
        renamed?: string;
        d: Date;
        touched?: Date;
      }
      const c = db.collection<OpsDoc>('ops');
      const { insertedId } = await c.insertOne({ n: 5, arr: [1, 2, 3], set: ['a'], gone: 1, old: 'x', d: new Date(0) });
      await c.updateOne(
        { _id: insertedId },
        {
          $mul: { n: 2 },
          $push: { arr: { $each: [9, 0], $sort: 1 } },
          $addToSet: { set: { $each: ['a', 'b'] } },
          $unset: { gone: '' },
          $rename: { old: 'renamed' },
          $max: { d: new Date(1000) },
          $currentDate: { touched: true },
        },
      );
      const doc = await c.findOne({ _id: insertedId });
      expect(doc).toMatchObject({ n: 10, arr: [0, 1, 2, 3, 9], set: ['a', 'b'], renamed: 'x', d: new Date(1000) });
      expect(doc?.gone).toBeUndefined();
      expect(doc?.touched).toBeInstanceOf(Date);
      await c.updateOne({ _id: insertedId }, { $pull: { arr: { $gte: 3 } }, $pop: { set: 1 } });
      expect(await c.findOne({ _id: insertedId }, { projection: { arr: 1, set: 1, _id: 0 } })).toEqual({
        arr: [0, 1, 2],
        set: ['a'],
      });
      const raw = await db.command({
        update: 'ops',
        updates: [{ q: { _id: insertedId }, u: { $pushAll: { arr: [7, 8] } } }],
      });
      expect(raw.nModified).toBe(1);
      expect((await c.findOne({ _id: insertedId }))?.arr).toEqual([0, 1, 2, 7, 8]);
      const bad = await serverError(db.collection('ops').updateOne({ _id: insertedId }, { $inc: { renamed: 1 } }));
      expect(bad.code).toBe(14);
      const unknown = await db.command({ update: 'ops', updates: [{ q: {}, u: { $frob: { a: 1 } } }] });
      expect(unknown.writeErrors[0]).toMatchObject({ index: 0, code: 9 });
      expect(unknown.writeErrors[0].errmsg).toContain('Unknown modifier: $frob');
    });

    it('supports pipeline updates', async () => {
      const c = db.collection('pipe');
      const { insertedId } = await c.insertOne({ a: 2, b: 3 });
      await c.updateOne({ _id: insertedId }, [{ $set: { sum: { $add: ['$a', '$b'] } } }, { $unset: 'b' }]);
      expect(await c.findOne({ _id: insertedId })).toEqual({ _id: insertedId, a: 2, sum: 5 });
    });
  });

  describe('deletes and findAndModify', () => {
    it('deletes one or many', async () => {
      const c = db.collection('del');
      await c.insertMany([{ k: 1 }, { k: 1 }, { k: 2 }, { k: 3 }]);
      expect((await c.deleteOne({ k: 1 })).deletedCount).toBe(1);
      expect((await c.deleteMany({ k: { $in: [1, 2] } })).deletedCount).toBe(2);
      expect(await db.command({ delete: 'del', deletes: [{ q: {}, limit: 0 }] })).toEqual({ n: 1, ok: 1 });
      expect(await c.countDocuments()).toBe(0);
    });

    it('findOneAndUpdate / Replace / Delete with sort, new, upsert and fields', async () => {
      const c = db.collection('fam');
      await c.insertMany([
        { q: 1, p: 3 },
        { q: 1, p: 1 },
        { q: 1, p: 2 },
      ]);
      const before = await c.findOneAndUpdate(
        { q: 1 },
        { $set: { hit: true } },
        { sort: { p: 1 }, projection: { _id: 0 } },
      );
      expect(before).toEqual({ q: 1, p: 1 });
      const after = await c.findOneAndUpdate(
        { q: 1, hit: { $exists: false } },
        { $inc: { p: 10 } },
        { sort: { p: -1 }, returnDocument: 'after', projection: { _id: 0, p: 1 } },
      );
      expect(after).toEqual({ p: 13 });
      const upserted = await c.findOneAndUpdate(
        { q: 2 },
        { $set: { p: 0 } },
        { upsert: true, returnDocument: 'after', includeResultMetadata: true },
      );
      expect(upserted.lastErrorObject).toMatchObject({ n: 1, updatedExisting: false });
      expect(upserted.lastErrorObject?.upserted).toBeInstanceOf(ObjectId);
      expect(upserted.value).toMatchObject({ q: 2, p: 0 });
      const replaced = await c.findOneAndReplace({ q: 2 }, { q: 3 }, { returnDocument: 'after' });
      expect(replaced).toMatchObject({ q: 3 });
      const deleted = await c.findOneAndDelete({ q: 3 });
      expect(deleted).toMatchObject({ q: 3 });
      expect(await c.findOneAndDelete({ q: 3 })).toBeNull();
      const raw = await db.command({ findandmodify: 'fam', query: { p: 2 }, update: { $set: { r: 1 } }, new: true });
      expect(raw.ok).toBe(1);
      expect(raw.lastErrorObject).toEqual({ n: 1, updatedExisting: true });
      expect(raw.value).toMatchObject({ p: 2, r: 1 });
      const none = await db.command({ findAndModify: 'fam', query: { p: 99 }, update: { $set: { r: 1 } } });
      expect(none).toEqual({ lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 });
      const removed = await db.command({ findAndModify: 'fam', query: { p: 2 }, remove: true });
      expect(removed.lastErrorObject).toEqual({ n: 1 });
    });
  });

  describe('aggregate, count, distinct', () => {
    beforeAll(async () => {
      await db.collection('agg').insertMany([
        { g: 'a', v: 1, tags: ['x', 'y'] },
        { g: 'b', v: 2, tags: ['y'] },
        { g: 'a', v: 3, tags: [] },
        { g: 'c', v: 4 },
      ]);
    });

    it('runs pipelines through mingo with cursor replies', async () => {
      const out = await db
        .collection('agg')
        .aggregate([
          { $match: { v: { $gte: 1 } } },
          { $group: { _id: '$g', total: { $sum: '$v' } } },
          { $sort: { total: -1, _id: 1 } },
        ])
        .toArray();
      expect(out).toEqual([
        { _id: 'a', total: 4 },
        { _id: 'c', total: 4 },
        { _id: 'b', total: 2 },
      ]);
      const raw = await db.command({
        aggregate: 'agg',
        pipeline: [{ $project: { _id: 0, g: 1 } }],
        cursor: { batchSize: 2 },
      });
      expect(raw.cursor.firstBatch).toEqual([{ g: 'a' }, { g: 'b' }]);
      expect(raw.cursor.ns).toBe('t.agg');
      await db
        .collection('agg')
        .aggregate([{ $project: { tags: 0, 'sub.a': 0 } }, { $unwind: '$g' }])
        .toArray();
      expect((await db.collection('agg').findOne({ g: 'a' }))?.tags).toEqual(['x', 'y']);
      const added = await db
        .collection('agg')
        .aggregate([{ $addFields: { 'nested.x': 1 } }])
        .toArray();
      expect(added[0].nested).toEqual({ x: 1 });
      expect((await db.collection('agg').findOne({ g: 'b' }))?.nested).toBeUndefined();
      const badStage = await serverError(
        db
          .collection('agg')
          .aggregate([{ $frob: 1 }])
          .toArray(),
      );
      expect(badStage.code).toBe(40324);
      const joined = await db
        .collection('agg')
        .aggregate([
          { $match: { g: 'b' } },
          { $lookup: { from: 'agg', localField: 'g', foreignField: 'g', as: 'same' } },
          { $project: { n: { $size: '$same' } } },
        ])
        .toArray();
      expect(joined[0].n).toBe(1);
    });

    it('counts with countDocuments, estimatedDocumentCount and count, and distinct values', async () => {
      const c = db.collection('agg');
      expect(await c.countDocuments()).toBe(4);
      expect(await c.countDocuments({ g: 'a' })).toBe(2);
      expect(await c.countDocuments({ g: 'a' }, { skip: 1 })).toBe(1);
      expect(await c.countDocuments({ g: 'zzz' })).toBe(0);
      expect(await c.estimatedDocumentCount()).toBe(4);
      expect(await db.command({ count: 'agg', query: { v: { $gt: 1 } } })).toEqual({ n: 3, ok: 1 });
      expect((await c.distinct('g')).sort()).toEqual(['a', 'b', 'c']);
      expect((await c.distinct('tags', { g: 'a' })).sort()).toEqual(['x', 'y']);
      const viaAgg = await c.aggregate([{ $match: { g: 'a' } }, { $count: 'n' }]).toArray();
      expect(viaAgg).toEqual([{ n: 2 }]);
    });

    it('writes $out', async () => {
      await db
        .collection('agg')
        .aggregate([{ $match: { g: 'a' } }, { $out: 'agg_out' }])
        .toArray();
      expect(await db.collection('agg_out').countDocuments()).toBe(2);
    });
  });

  describe('indexes', () => {
    it('creates, lists and drops indexes', async () => {
      const c = db.collection('idx');
      expect(await c.createIndex({ a: 1 })).toBe('a_1');
      expect(await c.createIndex({ b: 1, c: -1 }, { unique: true, name: 'bc' })).toBe('bc');
      const again = await db.command({ createIndexes: 'idx', indexes: [{ key: { a: 1 }, name: 'a_1' }] });
      expect(again).toMatchObject({
        numIndexesBefore: 3,
        numIndexesAfter: 3,
        note: 'all indexes already exist',
        ok: 1,
      });
      expect(await c.indexes()).toEqual([
        { v: 2, key: { _id: 1 }, name: '_id_' },
        { v: 2, key: { a: 1 }, name: 'a_1' },
        { v: 2, key: { b: 1, c: -1 }, name: 'bc', unique: true },
      ]);
      await c.dropIndex('a_1');
      expect((await c.indexes()).map((i) => i.name)).toEqual(['_id_', 'bc']);
      const missing = await serverError(c.dropIndex('nope'));
      expect(missing.code).toBe(27);
      expect(missing.codeName).toBe('IndexNotFound');
      await c.dropIndexes();
      expect((await c.indexes()).map((i) => i.name)).toEqual(['_id_']);
      const noColl = await serverError(db.collection('no_such_coll').indexes());
      expect(noColl.code).toBe(26);
      expect(noColl.codeName).toBe('NamespaceNotFound');
    });

    it('reports index conflicts with 85 / 86', async () => {
      const c = db.collection('idx_conflict');
      await c.createIndex({ a: 1 }, { name: 'a_idx' });
      const sameKey = await serverError(c.createIndex({ a: 1 }, { name: 'other' }));
      expect(sameKey.code).toBe(85);
      expect(sameKey.codeName).toBe('IndexOptionsConflict');
      const sameName = await serverError(c.createIndex({ b: 1 }, { name: 'a_idx' }));
      expect(sameName.code).toBe(86);
      expect(sameName.codeName).toBe('IndexKeySpecsConflict');
    });

    it('enforces unique indexes with MongoDB-shaped E11000 errors', async () => {
      const c = db.collection('uniq');
      await c.createIndex({ email: 1 }, { unique: true });
      await c.insertOne({ email: 'a@b.c' });
      const err = await serverError(c.insertOne({ email: 'a@b.c' }));
      expect(err.code).toBe(11000);
      expect(err.message).toBe(
        'E11000 duplicate key error collection: t.uniq index: email_1 dup key: { email: "a@b.c" }',
      );
      expect(err.keyValue).toEqual({ email: 'a@b.c' });
      expect(err.keyPattern).toEqual({ email: 1 });
      const id = new ObjectId();
      await c.insertOne({ _id: id, email: 'x' });
      const idErr = await serverError(c.insertOne({ _id: id, email: 'y' }));
      expect(idErr.message).toBe(
        `E11000 duplicate key error collection: t.uniq index: _id_ dup key: { _id: ObjectId('${id.toHexString()}') }`,
      );
      // an update into a duplicate fails without changing the document
      const upd = await serverError(c.updateOne({ _id: id }, { $set: { email: 'a@b.c', other: 1 } }));
      expect(upd.code).toBe(11000);
      expect(await c.findOne({ _id: id })).toEqual({ _id: id, email: 'x' });
      const fam = await serverError(c.findOneAndUpdate({ _id: id }, { $set: { email: 'a@b.c' } }));
      expect(fam.code).toBe(11000);
      expect(fam.codeName).toBe('DuplicateKey');
      // building a unique index over duplicates fails
      await db.collection('dups').insertMany([{ k: 1 }, { k: 1 }]);
      const build = await serverError(db.collection('dups').createIndex({ k: 1 }, { unique: true }));
      expect(build.code).toBe(11000);
      expect((await db.collection('dups').indexes()).map((i) => i.name)).toEqual(['_id_']);
    });

    it('enforces compound unique indexes and keeps secondary indexes in sync through updates and deletes', async () => {
      const c = db.collection('compound');
      await c.createIndex({ taskId: 1, seq: 1 }, { unique: true });
      await c.createIndex({ taskId: 1, tstatus: 1 });
      const taskId = new ObjectId();
      await c.insertMany(Array.from({ length: 10 }, (_, seq) => ({ taskId, seq, tstatus: 'Queued' })));
      const dup = await serverError(c.insertOne({ taskId, seq: 3 }));
      expect(dup.code).toBe(11000);
      expect(dup.message).toContain('index: taskId_1_seq_1 dup key: { taskId: ObjectId(');
      expect(dup.keyValue).toEqual({ taskId, seq: 3 });
      await c.insertOne({ taskId: new ObjectId(), seq: 3 });
      await c.updateMany({ taskId, seq: { $lt: 4 } }, { $set: { tstatus: 'Processing' } });
      expect(await c.countDocuments({ taskId, tstatus: 'Processing' })).toBe(4);
      expect(await c.countDocuments({ taskId, tstatus: 'Queued' })).toBe(6);
      await c.updateOne({ taskId, seq: 9 }, { $set: { seq: 10 } });
      expect(await c.findOne({ taskId, seq: 9 })).toBeNull();
      expect((await c.findOne({ taskId, seq: 10 }))?.tstatus).toBe('Queued');
      await c.deleteOne({ taskId, seq: 10 });
      await c.insertOne({ taskId, seq: 10, tstatus: 'again' });
      expect((await c.find({ taskId, seq: { $in: [0, 10] } }).toArray()).map((d) => d.tstatus)).toEqual([
        'Processing',
        'again',
      ]);
    });

    it('keeps indexes sharing a leading field correct after the other one is dropped', async () => {
      const c = db.collection('shared_prefix');
      await c.createIndex({ t: 1, seq: 1 }, { unique: true });
      await c.createIndex({ t: 1, s: 1 });
      await c.createIndex({ t: 1, s: 1, seq: 1 }, { name: 'three' });
      await c.insertMany(Array.from({ length: 6 }, (_, seq) => ({ t: seq % 2, seq, s: 'q' })));
      await c.dropIndex('t_1_seq_1');
      await c.insertOne({ t: 1, seq: 7, s: 'q' });
      await c.updateOne({ t: 0, seq: 0 }, { $set: { t: 1 } });
      await c.deleteOne({ t: 0, seq: 2 });
      const byT = async (t: number) =>
        (await c.find({ t }).toArray()).map((d) => d.seq).sort((a: number, b: number) => a - b);
      expect(await byT(0)).toEqual([4]);
      expect(await byT(1)).toEqual([0, 1, 3, 5, 7]);
      await c.dropIndex('t_1_s_1');
      await c.insertOne({ t: 0, seq: 8, s: 'r' });
      expect(await byT(0)).toEqual([4, 8]);
      expect(await c.countDocuments({ t: 0, s: 'q' })).toBe(1);
      const plan = await c.find({ t: 0 }).explain('executionStats');
      expect(plan.queryPlanner.winningPlan.inputStage.indexName).toBe('three');
    });

    it('honours sparse and partial unique indexes', async () => {
      const c = db.collection('sparse');
      await c.createIndex({ code: 1 }, { unique: true, sparse: true });
      await c.insertMany([{ a: 1 }, { a: 2 }, { code: 'x' }]);
      expect((await serverError(c.insertOne({ code: 'x' }))).code).toBe(11000);
      const p = db.collection('partial');
      await p.createIndex({ code: 1 }, { unique: true, partialFilterExpression: { active: true } });
      await p.insertMany([
        { code: 'x', active: false },
        { code: 'x', active: true },
      ]);
      expect((await serverError(p.insertOne({ code: 'x', active: true }))).code).toBe(11000);
      expect(await p.countDocuments({ code: 'x' })).toBe(2);
    });

    it('indexes array elements and nested paths (multikey) and keeps them in sync', async () => {
      const c = db.collection('multikey');
      await c.createIndex({ tags: 1 }, { unique: true });
      await c.createIndex({ 'a.b': 1, k: 1 });
      await c.insertMany([
        { k: 1, tags: ['x', 'y'], a: [{ b: 1 }, { b: 2 }] },
        { k: 2, tags: 'z', a: { b: 2 } },
        { k: 3, tags: [], a: null },
      ]);
      expect((await serverError(c.insertOne({ k: 4, tags: ['q', 'y'] }))).code).toBe(11000);
      expect((await c.find({ tags: 'y' }).toArray()).map((d) => d.k)).toEqual([1]);
      expect((await c.find({ 'a.b': 2 }).toArray()).map((d) => d.k)).toEqual([1, 2]);
      expect((await c.find({ 'a.b': 2, k: 2 }).toArray()).map((d) => d.k)).toEqual([2]);
      await c.updateOne({ k: 1 }, { $set: { tags: ['w'], 'a.0.b': 7 } });
      expect(await c.countDocuments({ tags: 'y' })).toBe(0);
      expect((await c.find({ 'a.b': 7 }).toArray()).map((d) => d.k)).toEqual([1]);
      await c.insertOne({ k: 5, tags: ['y'] });
      expect(await c.countDocuments({ tags: { $in: ['y', 'w', 'z'] }, k: { $gt: 1 } })).toBe(2);
    });

    it('stops ordered bulk inserts at the first error and continues unordered ones', async () => {
      const c = db.collection('bulk');
      await c.createIndex({ k: 1 }, { unique: true });
      const ordered = await db.command({ insert: 'bulk', documents: [{ k: 1 }, { k: 1 }, { k: 2 }] });
      expect(ordered.n).toBe(1);
      expect(ordered.writeErrors).toHaveLength(1);
      expect(ordered.writeErrors[0]).toMatchObject({ index: 1, code: 11000, keyPattern: { k: 1 }, keyValue: { k: 1 } });
      const unordered = await db.command({ insert: 'bulk', documents: [{ k: 1 }, { k: 3 }, { k: 4 }], ordered: false });
      expect(unordered.n).toBe(2);
      expect(unordered.writeErrors.map((e: { index: number }) => e.index)).toEqual([0]);
      const viaDriver = await c
        .insertMany([{ k: 5 }, { k: 5 }, { k: 6 }], { ordered: true })
        .catch((e: MongoServerError) => e);
      expect((viaDriver as MongoServerError).code).toBe(11000);
      expect(await c.countDocuments({ k: { $in: [5, 6] } })).toBe(1);
    });

    it('explains which index a query uses', async () => {
      const c = db.collection('compound');
      const plan = await c.find({ taskId: new ObjectId(), seq: 1 }).explain('executionStats');
      expect(plan.queryPlanner.winningPlan.inputStage.stage).toBe('IXSCAN');
      expect(plan.queryPlanner.winningPlan.inputStage.indexName).toBe('taskId_1_seq_1');
      const scan = await c.find({ tstatus: 'x' }).explain('executionStats');
      expect(scan.queryPlanner.winningPlan.stage).toBe('COLLSCAN');
    });
  });
});

/** configureFailPoint: a test-only command, registered only with enableTestCommands (as on mongod). */
describe('mongo-wire: configureFailPoint (failCommand)', () => {
  const failError = async (p: Promise<unknown>): Promise<MongoServerError> => {
    try {
      await p;
    } catch (e) {
      return e as MongoServerError;
    }
    throw new Error('expected an error');
  };

  it('is "no such command" unless the server is started with enableTestCommands', async () => {
    const server = new MongoWireServer();
    await server.start();
    const client = new MongoClient(server.uri());
    try {
      const e = await failError(
        client.db('admin').command({ configureFailPoint: 'failCommand', mode: 'alwaysOn', data: {} }),
      );
      expect(e.code).toBe(59);
    } finally {
      await client.close();
      await server.stop();
    }
  });

  describe('with enableTestCommands', () => {
    let server: MongoWireServer;
    let client: MongoClient;
    beforeAll(async () => {
      server = new MongoWireServer({ enableTestCommands: true });
      await server.start();
      client = new MongoClient(server.uri(), { retryReads: false, retryWrites: false });
      await client.connect();
      await client
        .db('fp')
        .collection('c')
        .insertOne({ _id: 1 } as Document);
    });
    afterAll(async () => {
      await client.close();
      await server.stop();
    });
    const admin = (): Db => client.db('admin');

    it('fails the listed commands `times` times with errorCode, then lets them through', async () => {
      await admin().command({
        configureFailPoint: 'failCommand',
        mode: { times: 2 },
        data: { failCommands: ['count'], errorCode: 8, errorLabels: ['X'] },
      });
      const c = client.db('fp').collection('c');
      expect(await c.findOne({})).toEqual({ _id: 1 }); // not listed
      for (let i = 0; i < 2; i++) {
        const e = await failError(c.estimatedDocumentCount());
        expect(e.code).toBe(8);
        expect(e.message).toBe("Failing command via 'failCommand' failpoint");
        expect(e.hasErrorLabel('X')).toBe(true);
      }
      expect(await c.estimatedDocumentCount()).toBe(1);
    });

    it('closes the connection with closeConnection; alwaysOn until off', async () => {
      await admin().command({
        configureFailPoint: 'failCommand',
        mode: 'alwaysOn',
        data: { failCommands: ['find'], closeConnection: true },
      });
      const c = client.db('fp').collection('c');
      for (let i = 0; i < 2; i++) expect((await failError(c.findOne({}))).name).toBe('MongoNetworkError');
      await admin().command({ configureFailPoint: 'failCommand', mode: 'off' });
      expect(await c.findOne({})).toEqual({ _id: 1 });
    });

    it('refuses other fail points, modes and data, and databases other than admin', async () => {
      const codes = async (cmd: Document, dbName = 'admin'): Promise<number | undefined> =>
        (await failError(client.db(dbName).command(cmd))).code as number | undefined;
      expect(await codes({ configureFailPoint: 'failCommand', mode: 'off' }, 'fp')).toBe(13);
      expect(await codes({ configureFailPoint: 'rsSyncApplyStop', mode: 'alwaysOn' })).toBe(115);
      expect(await codes({ configureFailPoint: 'failCommand', mode: { skip: 1 }, data: {} })).toBe(115);
      expect(
        await codes({
          configureFailPoint: 'failCommand',
          mode: 'alwaysOn',
          data: { failCommands: ['find'], blockConnection: true, blockTimeMS: 10 },
        }),
      ).toBe(115);
      expect(await codes({ configureFailPoint: 'failCommand', mode: 'alwaysOn', data: {} })).toBe(2);
    });
  });
});

import { Db, Document, MongoClient, MongoServerError } from 'mongodb';
import { MongoWireServer } from '../../src';

/**
 * Conformance: the real driver against the server over TCP, on the behaviours of MongoDB's CRUD
 * specification tests (mongodb/specifications, source/crud/tests/unified: *-let, create-null-ids,
 * aggregate-merge-errorResponse...) and the answers of MongoDB 8.0 (the default announced version;
 * the other versions: versions.spec.ts). Either the server answers as MongoDB
 * does, or it refuses with MongoDB's error shape (unknown field 40415, unknown stage 40324, unknown
 * expression 168, unknown query operator 2...) or 238 NotImplemented "not supported by the
 * embedded server: ...". Never a different answer.
 */
describe('mongo-wire conformance (driver → server over TCP)', () => {
  let server: MongoWireServer;
  let client: MongoClient;
  let db: Db;
  let n = 0;

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
    client = new MongoClient(server.uri('conformance'));
    await client.connect();
    db = client.db('conformance');
  });

  afterAll(async () => {
    await client.close();
    await server.stop();
  });

  /** A fresh collection holding `docs` (the spec tests' initialData). */
  const coll = async (docs: Document[] = [{ _id: 1 }, { _id: 2 }]) => {
    const c = db.collection<any>(`c${++n}`);
    if (docs.length) await c.insertMany(docs);
    return c;
  };
  const contents = (c: { find(f: Document): { sort(s: Document): { toArray(): Promise<Document[]> } } }) =>
    c.find({}).sort({ _id: 1 }).toArray();

  /** The server error of a rejected operation (a write error's fields included). */
  const refused = async (p: Promise<unknown>): Promise<MongoServerError> => {
    try {
      await p;
    } catch (e) {
      if (e instanceof MongoServerError) return e;
      const writeErrors = (e as { writeErrors?: unknown }).writeErrors;
      if (Array.isArray(writeErrors) && writeErrors[0]) return writeErrors[0] as MongoServerError;
      throw e;
    }
    throw new Error('expected the server to refuse');
  };
  const notSupported = async (p: Promise<unknown>, what: RegExp) => {
    const e = await refused(p);
    expect(e.code).toBe(238);
    if (e.codeName !== undefined) expect(e.codeName).toBe('NotImplemented'); // write errors carry no codeName
    expect(e.message).toMatch(/^not supported by the embedded server: /);
    expect(e.message).toMatch(what);
  };
  const command = (doc: Document) => db.command(doc);

  describe('let (command-level variables)', () => {
    it('find: $$id in $expr', async () => {
      const c = await coll([{ _id: 1 }, { _id: 2 }]);
      expect(await c.find({ $expr: { $eq: ['$_id', '$$id'] } }, { let: { id: 1 } }).toArray()).toEqual([{ _id: 1 }]);
    });

    it('aggregate: $$id in $match and in a later stage', async () => {
      const c = await coll([{ _id: 1 }, { _id: 2 }]);
      const out = await c
        .aggregate([{ $match: { $expr: { $eq: ['$_id', '$$id'] } } }, { $addFields: { x: '$$x' } }], {
          let: { id: 1, x: 'foo' },
        })
        .toArray();
      expect(out).toEqual([{ _id: 1, x: 'foo' }]);
    });

    it('updateOne: filter and pipeline update; $literal keeps a $-prefixed string (updateOne-let)', async () => {
      const c = await coll();
      const r = await c.updateOne({ $expr: { $eq: ['$_id', '$$id'] } }, [{ $set: { x: '$$x', y: '$$y' } }], {
        let: { id: 1, x: 'foo', y: { $literal: '$bar' }, rand: { $rand: {} } },
      });
      expect(r).toMatchObject({ matchedCount: 1, modifiedCount: 1, upsertedCount: 0 });
      expect(await contents(c)).toEqual([{ _id: 1, x: 'foo', y: '$bar' }, { _id: 2 }]);
    });

    it('updateMany, deleteOne, deleteMany', async () => {
      const c = await coll([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
      await c.updateMany({ $expr: { $gte: ['$_id', '$$min'] } }, [{ $set: { x: '$$x' } }], { let: { min: 2, x: 'y' } });
      expect(await contents(c)).toEqual([{ _id: 1 }, { _id: 2, x: 'y' }, { _id: 3, x: 'y' }]);
      expect((await c.deleteOne({ $expr: { $eq: ['$_id', '$$id'] } }, { let: { id: 3 } })).deletedCount).toBe(1);
      expect((await c.deleteMany({ $expr: { $lt: ['$_id', '$$id'] } }, { let: { id: 3 } })).deletedCount).toBe(2);
    });

    it('findOneAndUpdate / findOneAndReplace / findOneAndDelete (findOneAndUpdate-let)', async () => {
      const c = await coll();
      const filter = { $expr: { $eq: ['$_id', '$$id'] } };
      expect(
        await c.findOneAndUpdate(filter, [{ $set: { x: '$$x', y: '$$y' } }], {
          let: { id: 1, x: 'foo', y: { $literal: 'bar' } },
        }),
      ).toEqual({ _id: 1 });
      expect(await c.findOneAndReplace(filter, { x: 'replaced' }, { let: { id: 1 } })).toEqual({
        _id: 1,
        x: 'foo',
        y: 'bar',
      });
      expect(await c.findOneAndDelete(filter, { let: { id: 2 } })).toEqual({ _id: 2 });
      expect(await contents(c)).toEqual([{ _id: 1, x: 'replaced' }]);
    });

    it('bulkWrite updateOne with let (bulkWrite-updateOne-let)', async () => {
      const c = await coll();
      await c.bulkWrite(
        [{ updateOne: { filter: { $expr: { $eq: ['$_id', '$$id'] } }, update: [{ $set: { x: 22 } }] } }],
        {
          let: { id: 1 },
        },
      );
      expect(await contents(c)).toEqual([{ _id: 1, x: 22 }, { _id: 2 }]);
    });

    it('update statement constants (c) reach the pipeline; on an operator update they are refused', async () => {
      const c = await coll();
      await command({
        update: c.collectionName,
        updates: [{ q: { _id: 1 }, u: [{ $set: { k: '$$k' } }], c: { k: 7 } }],
      });
      expect(await contents(c)).toEqual([{ _id: 1, k: 7 }, { _id: 2 }]);
      const r = await command({
        update: c.collectionName,
        updates: [{ q: { _id: 1 }, u: { $set: { k: 1 } }, c: { k: 7 } }],
      });
      const e = r.writeErrors[0];
      expect(e.code).toBe(51198);
    });

    it('an undefined variable is still an error, and a bad variable name is refused', async () => {
      const c = await coll();
      await expect(c.find({ $expr: { $eq: ['$_id', '$$nope'] } }).toArray()).rejects.toThrow();
      expect((await refused(c.find({}, { let: { Bad: 1 } }).toArray())).code).toBe(16867);
    });

    it("an undefined variable is MongoDB's error 17276 (find, aggregate, update statement, findAndModify)", async () => {
      const c = await coll();
      const expr = { $expr: { $eq: ['$_id', '$$id'] } };
      for (const e of [
        await refused(c.find(expr).toArray()),
        await refused(c.aggregate([{ $addFields: { x: '$$x' } }]).toArray()),
        await refused(c.updateOne(expr, { $set: { x: 1 } })),
        await refused(c.bulkWrite([{ replaceOne: { filter: expr, replacement: { x: 3 } } }])),
        await refused(c.findOneAndUpdate(expr, { $set: { x: 1 } })),
      ]) {
        expect(e.code).toBe(17276);
        expect(e.message).toBe('Use of undefined variable: ' + (e.message.endsWith('x') ? 'x' : 'id'));
      }
      expect(await contents(c)).toEqual([{ _id: 1 }, { _id: 2 }]);
    });
  });

  describe('unknown fields are refused (40415), never ignored', () => {
    it('made-up update statement fields: nothing is applied', async () => {
      // `sort` (an 8.0 field) is refused so by 7.0 and older: versions.spec.ts.
      const c = await coll();
      for (const field of ['madeUp']) {
        const r = await command({
          update: c.collectionName,
          updates: [{ q: {}, u: { $set: { x: 1 } }, [field]: { _id: -1 } }],
        });
        expect(r.writeErrors[0]).toMatchObject({
          code: 40415,
          errmsg: `BSON field 'update.updates.${field}' is an unknown field.`,
        });
      }
      expect(await contents(c)).toEqual([{ _id: 1 }, { _id: 2 }]);
    });

    it('delete statements, and the top level of find / aggregate / insert / update / delete / findAndModify / count / distinct / create', async () => {
      const c = await coll();
      const r = await command({ delete: c.collectionName, deletes: [{ q: {}, limit: 1, sort: { _id: -1 } }] });
      expect(r.writeErrors[0]).toMatchObject({
        code: 40415,
        errmsg: "BSON field 'delete.deletes.sort' is an unknown field.",
      });
      const cases: Array<[string, Document]> = [
        ['find', { find: c.collectionName, bogus: 1 }],
        ['aggregate', { aggregate: c.collectionName, pipeline: [], cursor: {}, bogus: 1 }],
        ['insert', { insert: c.collectionName, documents: [{}], bogus: 1 }],
        ['update', { update: c.collectionName, updates: [], bogus: 1 }],
        ['delete', { delete: c.collectionName, deletes: [], bogus: 1 }],
        ['findAndModify', { findAndModify: c.collectionName, query: {}, remove: true, bogus: 1 }],
        ['findAndModify', { findandmodify: c.collectionName, query: {}, remove: true, bogus: 1 }],
        ['count', { count: c.collectionName, bogus: 1 }],
        ['distinct', { distinct: c.collectionName, key: 'x', bogus: 1 }],
        ['create', { create: `x${n}`, bogus: 1 }],
      ];
      for (const [name, cmd] of cases) {
        const e = await refused(command(cmd));
        expect([name, e.code, e.message]).toEqual([name, 40415, `BSON field '${name}.bogus' is an unknown field.`]);
      }
      expect(await contents(c)).toEqual([{ _id: 1 }, { _id: 2 }]);
    });

    it('unknown update operators: 9 FailedToParse', async () => {
      const c = await coll();
      const e = await refused(c.updateOne({ _id: 1 }, { $bogus: { x: 1 } } as Document));
      expect(e.code).toBe(9);
      expect(e.message).toMatch(/Unknown modifier: \$bogus/);
    });

    it('unknown commands: 59; MongoDB commands not implemented here: 115 CommandNotSupported', async () => {
      expect((await refused(command({ bogusCommand: 1 }))).code).toBe(59);
      const e = await refused(
        command({ mapReduce: 'x', map: 'function(){}', reduce: 'function(){}', out: { inline: 1 } }),
      );
      expect(e).toMatchObject({ code: 115, codeName: 'CommandNotSupported' });
      expect(e.message).toBe("not supported by the embedded server: command 'mapReduce'");
    });
  });

  describe('options that are not implemented are refused', () => {
    it('find: max, min, returnKey, showRecordId, tailable', async () => {
      const c = await coll();
      for (const [opt, value] of [
        ['max', { _id: 2 }],
        ['min', { _id: 1 }],
        ['returnKey', true],
        ['showRecordId', true],
        ['tailable', true],
      ] as const)
        await notSupported(command({ find: c.collectionName, [opt]: value }), new RegExp(`find\\.${opt}`));
    });

    it('create: views (viewOn), time series, clustered collections; collMod: views', async () => {
      const c = await coll();
      await notSupported(
        db.createCollection<any>(`v${n}`, { viewOn: c.collectionName, pipeline: [] }),
        /create\.viewOn \(views\)/,
      );
      await notSupported(db.createCollection<any>(`t${n}`, { timeseries: { timeField: 't' } }), /create\.timeseries/);
      await notSupported(
        db.createCollection<any>(`k${n}`, { clusteredIndex: { key: { _id: 1 }, unique: true } }),
        /create\.clusteredIndex/,
      );
      await notSupported(command({ collMod: c.collectionName, viewOn: 'x', pipeline: [] }), /collMod\.viewOn/);
      expect((await db.listCollections({ name: `v${n}` }).toArray()).length).toBe(0);
    });

    it('indexes: text, 2dsphere, 2d, hashed, wildcard; unknown options 197; unknown plugins 67', async () => {
      const c = await coll();
      await notSupported(c.createIndex({ a: 'text' }), /'text' index key/);
      await notSupported(c.createIndex({ a: '2dsphere' }), /'2dsphere' index key/);
      await notSupported(c.createIndex({ a: '2d' }), /'2d' index key/);
      await notSupported(c.createIndex({ a: 'hashed' }), /'hashed' index key/);
      await notSupported(c.createIndex({ '$**': 1 }), /wildcard index key/);
      await notSupported(c.createIndex({ a: 1 }, { weights: { a: 1 } }), /index option 'weights'/);
      // (the driver drops unknown options: sent as a command)
      const bogus = await refused(
        command({ createIndexes: c.collectionName, indexes: [{ key: { a: 1 }, name: 'a_1', bogus: true }] }),
      );
      expect(bogus.code).toBe(197);
      expect((await refused(c.createIndex({ a: 'bogus' } as any))).code).toBe(67);
      expect((await c.indexes()).map((i) => i.name)).toEqual(['_id_']);
    });

    it('hint: an existing index (name or key) is accepted, another one is BadValue', async () => {
      const c = await coll();
      await c.createIndex({ a: 1 });
      expect(await c.find({}, { hint: 'a_1' }).toArray()).toHaveLength(2);
      expect(await c.find({}, { hint: { a: 1 } }).toArray()).toHaveLength(2);
      expect(await c.countDocuments({}, { hint: '_id_' })).toBe(2);
      for (const p of [
        c.find({}, { hint: 'nope_1' }).toArray(),
        c.updateOne({ _id: 1 }, { $set: { x: 1 } }, { hint: { nope: 1 } }),
        c.deleteOne({ _id: 1 }, { hint: 'nope_1' }),
        c.findOneAndUpdate({ _id: 1 }, { $set: { x: 1 } }, { hint: { nope: 1 } }),
        c.aggregate([], { hint: 'nope_1' }).toArray(),
      ]) {
        const e = await refused(p);
        expect([e.code, e.message]).toEqual([2, 'hint provided does not correspond to an existing index']);
      }
      expect(await contents(c)).toEqual([{ _id: 1 }, { _id: 2 }]);
    });

    it('delete limit other than 0 / 1: 9', async () => {
      const c = await coll();
      const r = await command({ delete: c.collectionName, deletes: [{ q: {}, limit: 2 }] });
      expect(r.writeErrors[0].code).toBe(9);
    });
  });

  describe('collation', () => {
    const strength1 = { locale: 'en', strength: 1 as const };

    it('{ locale: "simple" } is accepted everywhere (binary comparison)', async () => {
      const c = await coll([
        { _id: 1, x: 'ping' },
        { _id: 2, x: 'PING' },
      ]);
      const simple = { locale: 'simple' };
      expect(await c.find({ x: 'ping' }, { collation: simple }).toArray()).toEqual([{ _id: 1, x: 'ping' }]);
      expect((await c.distinct('x', {}, { collation: simple })).sort()).toEqual(['PING', 'ping']);
      expect(await c.countDocuments({ x: 'ping' }, { collation: simple })).toBe(1);
      expect(await c.aggregate([{ $match: { x: 'ping' } }], { collation: simple }).toArray()).toHaveLength(1);
      expect((await c.updateOne({ x: 'ping' }, { $set: { y: 1 } }, { collation: simple })).modifiedCount).toBe(1);
      expect(await c.findOneAndUpdate({ x: 'PING' }, { $set: { y: 2 } }, { collation: simple })).toEqual({
        _id: 2,
        x: 'PING',
      });
      expect((await c.deleteOne({ x: 'ping' }, { collation: simple })).deletedCount).toBe(1);
      await db.createCollection<any>(`s${n}`, { collation: simple });
    });

    it('any other collation is refused on find, aggregate, distinct, count, updates, deletes, findAndModify, bulkWrite, create, createIndex', async () => {
      const c = await coll([
        { _id: 1, x: 'ping' },
        { _id: 2, x: 'PING' },
      ]);
      const what = /collation \{ locale: "en", strength: 1 \}/;
      await notSupported(c.distinct('x', {}, { collation: strength1 }), what);
      await notSupported(c.find({ x: 'ping' }, { collation: strength1 }).toArray(), what);
      await notSupported(c.aggregate([], { collation: strength1 }).toArray(), what);
      await notSupported(c.countDocuments({ x: 'ping' }, { collation: strength1 }), what);
      await notSupported(command({ count: c.collectionName, query: {}, collation: strength1 }), what);
      await notSupported(c.updateOne({ x: 'ping' }, { $set: { y: 1 } }, { collation: strength1 }), what);
      await notSupported(c.updateMany({ x: 'ping' }, { $set: { y: 1 } }, { collation: strength1 }), what);
      await notSupported(c.replaceOne({ x: 'ping' }, { y: 1 }, { collation: strength1 }), what);
      await notSupported(c.deleteOne({ x: 'ping' }, { collation: strength1 }), what);
      await notSupported(c.deleteMany({ x: 'ping' }, { collation: strength1 }), what);
      await notSupported(c.findOneAndUpdate({ x: 'ping' }, { $set: { y: 1 } }, { collation: strength1 }), what);
      await notSupported(c.findOneAndDelete({ x: 'ping' }, { collation: strength1 }), what);
      await notSupported(c.bulkWrite([{ deleteOne: { filter: { x: 'PING' }, collation: strength1 } }]), what);
      await notSupported(db.createCollection<any>(`x${n}`, { collation: strength1 }), what);
      await notSupported(c.createIndex({ x: 1 }, { collation: strength1 }), what);
      expect(await contents(c)).toEqual([
        { _id: 1, x: 'ping' },
        { _id: 2, x: 'PING' },
      ]);
    });
  });

  describe('pipeline updates', () => {
    it('$replaceRoot / $replaceWith without _id keep the original _id', async () => {
      const c = await coll([
        { _id: 1, a: { b: 1 } },
        { _id: 2, a: { b: 2 } },
      ]);
      await c.updateOne({ _id: 1 }, [{ $replaceRoot: { newRoot: '$a' } }]);
      await c.updateOne({ _id: 2 }, [{ $replaceWith: { c: '$a.b' } }]);
      expect(await contents(c)).toEqual([
        { _id: 1, b: 1 },
        { _id: 2, c: 2 },
      ]);
    });

    it('changing _id is still refused (66); stages outside the update list: 72', async () => {
      const c = await coll();
      expect((await refused(c.updateOne({ _id: 1 }, [{ $replaceWith: { _id: 5 } }]))).code).toBe(66);
      const e = await refused(c.updateOne({ _id: 1 }, [{ $match: { _id: 1 } }]));
      expect([e.code, e.message]).toEqual([72, '$match is not allowed to be used within an update']);
    });
  });

  describe('_id validity (InvalidIdField 53)', () => {
    it('$-prefixed keys inside _id, arrays and regexes are refused on insert, upsert and replace', async () => {
      const c = await coll([]);
      for (const p of [
        c.insertOne({ _id: { $bad: 1 } } as Document),
        c.insertOne({ _id: { a: { $bad: 1 } } } as Document),
        c.insertOne({ _id: [1, 2] } as Document),
        c.insertOne({ _id: /x/ } as Document),
        c.replaceOne({}, { _id: { $x: 1 } } as Document, { upsert: true }),
      ]) {
        const e = await refused(p);
        expect(e.code).toBe(53);
      }
      expect(await contents(c)).toEqual([]);
    });

    it('null _id is stored (create-null-ids), through insert and upsert', async () => {
      const c = await coll([]);
      // (the driver replaces a null _id by an ObjectId in insertOne: sent as a command)
      await command({ insert: c.collectionName, documents: [{ _id: null }] });
      expect(await contents(c)).toEqual([{ _id: null }]);
      await c.deleteMany({});
      await c.updateOne({ _id: null } as Document, { $unset: { a: '' } }, { upsert: true });
      expect(await contents(c)).toEqual([{ _id: null }]);
    });
  });

  describe('$merge', () => {
    it('duplicate key with whenMatched "fail": 11000 with keyPattern / keyValue (aggregate-merge-errorResponse)', async () => {
      const c = await coll([
        { _id: 1, x: 1 },
        { _id: 2, x: 1 },
      ]);
      const e = await refused(
        db
          .aggregate([{ $documents: [{ _id: 2, x: 1 }] }, { $merge: { into: c.collectionName, whenMatched: 'fail' } }])
          .toArray(),
      );
      expect(e.code).toBe(11000);
      expect(e.errorResponse).toMatchObject({ keyPattern: { _id: 1 }, keyValue: { _id: 2 } });
    });

    it('defaults (merge / insert), replace, keepExisting, a pipeline with $$new, discard, fail', async () => {
      const src = await coll([
        { _id: 1, a: 1 },
        { _id: 3, a: 3 },
      ]);
      const dst = await coll([
        { _id: 1, b: 1 },
        { _id: 2, b: 2 },
      ]);
      await src.aggregate([{ $merge: dst.collectionName }]).toArray();
      expect(await contents(dst)).toEqual([
        { _id: 1, b: 1, a: 1 },
        { _id: 2, b: 2 },
        { _id: 3, a: 3 },
      ]);
      await src.aggregate([{ $merge: { into: dst.collectionName, whenMatched: 'replace' } }]).toArray();
      expect((await contents(dst))[0]).toEqual({ _id: 1, a: 1 });
      await src
        .aggregate([{ $set: { a: 99 } }, { $merge: { into: dst.collectionName, whenMatched: 'keepExisting' } }])
        .toArray();
      expect((await contents(dst))[0]).toEqual({ _id: 1, a: 1 });
      await src
        .aggregate([
          { $merge: { into: dst.collectionName, whenMatched: [{ $set: { sum: { $add: ['$a', '$$new.a'] } } }] } },
        ])
        .toArray();
      expect((await contents(dst))[0]).toEqual({ _id: 1, a: 1, sum: 2 });
      await src
        .aggregate([{ $set: { _id: 7 } }, { $merge: { into: dst.collectionName, whenNotMatched: 'discard' } }])
        .toArray();
      expect(await dst.countDocuments({ _id: 7 })).toBe(0);
      const e = await refused(
        src
          .aggregate([{ $set: { _id: 8 } }, { $merge: { into: dst.collectionName, whenNotMatched: 'fail' } }])
          .toArray(),
      );
      expect(e.code).toBe(13113);
    });

    it('on fields need a unique index (51183); unknown $merge fields: 40415; $merge / $out only last (40601)', async () => {
      const src = await coll([{ _id: 1, k: 1 }]);
      const dst = await coll([]);
      expect((await refused(src.aggregate([{ $merge: { into: dst.collectionName, on: 'k' } }]).toArray())).code).toBe(
        51183,
      );
      await dst.createIndex({ k: 1 }, { unique: true });
      await src
        .aggregate([{ $project: { _id: 0, k: 1, v: 'x' } }, { $merge: { into: dst.collectionName, on: 'k' } }])
        .toArray();
      expect(await dst.find({}, { projection: { _id: 0 } }).toArray()).toEqual([{ k: 1, v: 'x' }]);
      expect((await refused(src.aggregate([{ $merge: { into: dst.collectionName, bogus: 1 } }]).toArray())).code).toBe(
        40415,
      );
      expect((await refused(src.aggregate([{ $out: 'x' }, { $match: {} }]).toArray())).code).toBe(40601);
    });
  });

  describe('stages and operators', () => {
    it('unknown stages: 40324; MongoDB stages not implemented ($listLocalSessions, $geoNear, $search...): 238, also nested', async () => {
      const c = await coll();
      const e = await refused(c.aggregate([{ $bogus: {} }]).toArray());
      expect([e.code, e.message]).toEqual([40324, "Unrecognized pipeline stage name: '$bogus'"]);
      await notSupported(
        client
          .db('admin')
          .aggregate([{ $listLocalSessions: {} }])
          .toArray(),
        /pipeline stage \$listLocalSessions/,
      );
      await notSupported(c.aggregate([{ $geoNear: { near: [0, 0], distanceField: 'd' } }]).toArray(), /\$geoNear/);
      await notSupported(c.aggregate([{ $collStats: {} }]).toArray(), /\$collStats/);
      await notSupported(c.aggregate([{ $facet: { a: [{ $search: {} }] } }]).toArray(), /\$search/);
      await notSupported(
        c.aggregate([{ $lookup: { from: 'x', pipeline: [{ $indexStats: {} }], as: 'y' } }]).toArray(),
        /\$indexStats/,
      );
    });

    it('unknown expressions: 168; MongoDB expressions not implemented ($toObjectId, $meta...): 238', async () => {
      const c = await coll();
      const e = await refused(c.aggregate([{ $project: { y: { $bogus: 1 } } }]).toArray());
      expect([e.code, e.message]).toEqual([168, "Unrecognized expression '$bogus'"]);
      await notSupported(
        c.aggregate([{ $project: { y: { $toObjectId: '$_id' } } }]).toArray(),
        /expression operator \$toObjectId/,
      );
      await notSupported(c.aggregate([{ $project: { y: { $meta: 'textScore' } } }]).toArray(), /\$meta/);
    });

    it('unknown query operators: 2 BadValue; $text, $near, $geoWithin: 238; top-level $comment is accepted', async () => {
      const c = await coll();
      const e = await refused(c.find({ _id: { $bogus: 1 } } as Document).toArray());
      expect([e.code, e.message]).toEqual([2, 'unknown operator: $bogus']);
      const top = await refused(c.find({ $bogus: 1 } as Document).toArray());
      expect([top.code, top.message]).toEqual([2, 'unknown top level operator: $bogus']);
      await notSupported(c.find({ $text: { $search: 'x' } }).toArray(), /query operator \$text/);
      await notSupported(c.find({ a: { $near: [0, 0] } } as Document).toArray(), /query operator \$near/);
      await notSupported(c.find({ a: { $geoWithin: { $center: [[0, 0], 1] } } } as Document).toArray(), /\$geoWithin/);
      expect(await c.find({ _id: 1, $comment: 'why' } as Document).toArray()).toEqual([{ _id: 1 }]);
      await notSupported(c.find({ $where: 'this._id == 1' }).toArray(), /\$where \(server-side JavaScript\)/);
      await notSupported(
        c
          .aggregate([{ $project: { y: { $function: { body: 'function () { return 1 }', args: [], lang: 'js' } } } }])
          .toArray(),
        /\$function/,
      );
    });

    it('$jsonSchema in queries', async () => {
      const c = await coll([
        { _id: 1, name: 'a', n: 1 },
        { _id: 2, n: 'x' },
      ]);
      const schema = { required: ['name'], properties: { n: { bsonType: 'int' } } };
      expect(await c.find({ $jsonSchema: schema }).toArray()).toEqual([{ _id: 1, name: 'a', n: 1 }]);
      expect(await c.find({ $nor: [{ $jsonSchema: schema }] }).toArray()).toEqual([{ _id: 2, n: 'x' }]);
      expect((await refused(c.find({ $jsonSchema: { bogusKeyword: 1 } }).toArray())).code).toBe(9);
      expect((await refused(c.find({ $jsonSchema: { format: 'email' } }).toArray())).code).toBe(9);
    });
  });

  describe('validators (createCollection / collMod: validator, validationLevel, validationAction)', () => {
    it('a query validator: 121 DocumentValidationFailure with errInfo on insert, update, replace, upsert, findAndModify', async () => {
      const name = `val${++n}`;
      const c = await db.createCollection<any>(name, { validator: { qty: { $gte: 0 } } });
      await c.insertOne({ _id: 1, qty: 1 } as Document);
      const e = await refused(c.insertOne({ _id: 2, qty: -1 } as Document));
      expect(e.code).toBe(121);
      expect(e.codeName ?? 'DocumentValidationFailure').toBe('DocumentValidationFailure');
      expect(e.errInfo).toMatchObject({ failingDocumentId: 2, details: { operatorName: 'qty' } });
      expect((await refused(c.updateOne({ _id: 1 }, { $set: { qty: -5 } }))).code).toBe(121);
      expect((await refused(c.replaceOne({ _id: 1 }, { qty: -5 }))).code).toBe(121);
      expect((await refused(c.updateOne({ _id: 9 }, { $set: { qty: -5 } }, { upsert: true }))).code).toBe(121);
      expect((await refused(c.findOneAndUpdate({ _id: 1 }, { $inc: { qty: -5 } }))).code).toBe(121);
      expect(await contents(c)).toEqual([{ _id: 1, qty: 1 }]);
      // bypassDocumentValidation
      await c.insertOne({ _id: 3, qty: -1 } as Document, { bypassDocumentValidation: true });
      expect(await c.countDocuments()).toBe(2);
      const info = await db.listCollections({ name }).toArray();
      expect((info[0] as Document).options).toMatchObject({ validator: { qty: { $gte: 0 } } });
    });

    it('$jsonSchema validators report the rules not satisfied', async () => {
      const c = await db.createCollection<any>(`val${++n}`, {
        validator: {
          $jsonSchema: {
            bsonType: 'object',
            required: ['name'],
            properties: { name: { bsonType: 'string' }, age: { bsonType: 'int', minimum: 0 } },
          },
        },
      });
      await c.insertOne({ name: 'ok', age: 3 });
      const missing = await refused(c.insertOne({ _id: 5, age: 3 } as Document));
      expect(missing.code).toBe(121);
      expect(missing.errInfo).toMatchObject({
        failingDocumentId: 5,
        details: {
          operatorName: '$jsonSchema',
          schemaRulesNotSatisfied: [{ operatorName: 'required', missingProperties: ['name'] }],
        },
      });
      const wrong = await refused(c.insertOne({ name: 'x', age: -1 }));
      expect(wrong.errInfo?.details.schemaRulesNotSatisfied[0]).toMatchObject({
        operatorName: 'properties',
        propertiesNotSatisfied: [{ propertyName: 'age' }],
      });
      expect((await refused(c.insertOne({ name: 7 }))).code).toBe(121);
    });

    it('validationLevel moderate / off, validationAction warn, collMod; bad values are refused', async () => {
      const name = `val${++n}`;
      const c = await coll([
        { _id: 1, qty: -1 },
        { _id: 2, qty: 1 },
      ]);
      await command({ collMod: c.collectionName, validator: { qty: { $gte: 0 } }, validationLevel: 'moderate' });
      await c.updateOne({ _id: 1 }, { $set: { qty: -2 } }); // invalid before: not checked
      expect((await refused(c.updateOne({ _id: 2 }, { $set: { qty: -2 } }))).code).toBe(121);
      await command({ collMod: c.collectionName, validationAction: 'warn' });
      await c.insertOne({ _id: 3, qty: -3 });
      await command({ collMod: c.collectionName, validationAction: 'error', validationLevel: 'off' });
      await c.insertOne({ _id: 4, qty: -4 });
      expect(await c.countDocuments()).toBe(4);
      expect((await refused(db.createCollection<any>(name, { validationLevel: 'bogus' } as Document))).code).toBe(2);
      expect((await refused(db.createCollection<any>(name, { validator: { a: { $bogus: 1 } } }))).code).toBe(2);
      expect((await refused(db.createCollection<any>(name, { validator: { $jsonSchema: { bogus: 1 } } }))).code).toBe(
        9,
      );
      expect(await db.listCollections({ name }).toArray()).toEqual([]);
    });

    it('$out and $merge into a validated collection are validated too', async () => {
      const src = await coll([{ _id: 1, qty: -1 }]);
      const name = `val${++n}`;
      await db.createCollection<any>(name, { validator: { qty: { $gte: 0 } } });
      expect((await refused(src.aggregate([{ $merge: name }]).toArray())).code).toBe(121);
      expect((await refused(src.aggregate([{ $out: name }]).toArray())).code).toBe(121);
      await src.aggregate([{ $out: name }], { bypassDocumentValidation: true }).toArray();
      expect(await db.collection(name).countDocuments()).toBe(1);
    });
  });
});

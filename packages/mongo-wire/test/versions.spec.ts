import * as net from 'node:net';
import { BSON } from 'bson';
import { Collection, Db, Document, MongoClient, MongoServerError } from 'mongodb';
import { MongoDBVersion, MongoWireServer } from '../src';
import { parseArgs, USAGE } from '../src/cli';

/**
 * The announced MongoDB version (versions.ts), through the real driver (mongodb 6.20): what each
 * version reports, what it refuses (each refusal fires before its version and not from it), and
 * the memory limit of blocking sorts.
 */
describe('mongo-wire: announced MongoDB versions', () => {
  const running: Array<{ server: MongoWireServer; client?: MongoClient }> = [];
  let n = 0;

  afterAll(async () => {
    for (const r of running) {
      await r.client?.close();
      await r.server.stop();
    }
  });

  /** A server announcing `version` (with more options), and a connected driver database. */
  const start = async (
    version: MongoDBVersion,
    options: ConstructorParameters<typeof MongoWireServer>[0] = {},
  ): Promise<{ server: MongoWireServer; db: Db; admin: Db }> => {
    const server = new MongoWireServer({ mongodbVersion: version, ...options });
    await server.start();
    const client = new MongoClient(server.uri('v'));
    running.push({ server, client });
    await client.connect();
    return { server, db: client.db('v'), admin: client.db('admin') };
  };

  /** One server per version, shared by the refusal tests. */
  const servers = new Map<MongoDBVersion, Promise<{ server: MongoWireServer; db: Db; admin: Db }>>();
  const on = (version: MongoDBVersion) => {
    let s = servers.get(version);
    if (!s) servers.set(version, (s = start(version)));
    return s;
  };
  /** A fresh collection on that version's server. */
  /** Documents with numeric `_id`s (the driver's default schema types `_id` as an ObjectId). */
  type Doc = { _id: number } & Document;
  const coll = async (version: MongoDBVersion, docs: Doc[] = [{ _id: 1, x: 1 }]): Promise<Collection<Doc>> => {
    const c = (await on(version)).db.collection<Doc>(`c${++n}`);
    if (docs.length) await c.insertMany(docs);
    return c;
  };

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

  /** One OP_MSG command over a raw socket (for the versions the driver refuses to talk to). */
  const rawCommand = (port: number, doc: Document): Promise<Document> =>
    new Promise((resolve, reject) => {
      const body = Buffer.from(BSON.serialize(doc));
      const msg = Buffer.alloc(21 + body.length);
      msg.writeInt32LE(msg.length, 0);
      msg.writeInt32LE(1, 4);
      msg.writeInt32LE(2013, 12);
      body.copy(msg, 21);
      let buf = Buffer.alloc(0);
      const s = net.connect(port, '127.0.0.1', () => s.write(msg));
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4 && buf.length >= buf.readInt32LE(0)) {
          s.destroy();
          resolve(BSON.deserialize(buf.subarray(21, buf.readInt32LE(0))));
        }
      });
      s.on('error', reject);
    });

  describe('what each version reports', () => {
    const table: Array<[MongoDBVersion, number, string]> = [
      ['4.2', 8, '4.2.25'],
      ['4.4', 9, '4.4.29'],
      ['5.0', 13, '5.0.26'],
      ['6.0', 17, '6.0.19'],
      ['7.0', 21, '7.0.16'],
      ['8.0', 25, '8.0.4'],
    ];
    it.each(table)(
      '%s: maxWireVersion %i, buildInfo %s, featureCompatibilityVersion, serverStatus',
      async (v, wire, full) => {
        const { server, admin } = await on(v);
        expect(server.mongodbVersion).toBe(v);
        const isMaster = await admin.command({ isMaster: 1 });
        expect(isMaster).toMatchObject({ ok: 1, ismaster: true, minWireVersion: 0, maxWireVersion: wire });
        const build = await admin.command({ buildInfo: 1 });
        expect(build.version).toBe(full);
        expect(build.versionArray).toEqual([...full.split('.').map(Number), 0]);
        const fcv = await admin.command({ getParameter: 1, featureCompatibilityVersion: 1 });
        expect(fcv.featureCompatibilityVersion).toEqual({ version: v });
        expect((await admin.command({ serverStatus: 1 })).version).toBe(full);
        // hello (and isMaster's helloOk) arrived in 4.4.2.
        if (v === '4.2') {
          expect(isMaster.helloOk).toBeUndefined();
          const e = await refused(admin.command({ hello: 1 }));
          expect([e.code, e.codeName, e.message]).toEqual([59, 'CommandNotFound', "no such command: 'hello'"]);
        } else {
          expect(isMaster.helloOk).toBe(true);
          expect(await admin.command({ hello: 1 })).toMatchObject({ isWritablePrimary: true, maxWireVersion: wire });
        }
      },
    );

    it.each([
      ['3.6', 6, '3.6.23'],
      ['4.0', 7, '4.0.28'],
    ] as Array<[MongoDBVersion, number, string]>)(
      '%s announces wire version %i, which driver 6.x refuses',
      async (v, wire, full) => {
        const server = new MongoWireServer({ mongodbVersion: v });
        await server.start();
        running.push({ server });
        const isMaster = await rawCommand(server.port, { isMaster: 1, $db: 'admin' });
        expect(isMaster).toMatchObject({ ok: 1, maxWireVersion: wire });
        expect(isMaster.helloOk).toBeUndefined();
        expect(await rawCommand(server.port, { buildInfo: 1, $db: 'admin' })).toMatchObject({ version: full });
        const client = new MongoClient(server.uri('v'), { serverSelectionTimeoutMS: 2000 });
        await expect(client.connect()).rejects.toThrow(
          new RegExp(
            `reports maximum wire version ${wire}, but this version of the Node.js Driver requires at least 8`,
          ),
        );
        await client.close();
      },
    );

    it('the default is 8.0; an unknown version is an error (option and CLI)', async () => {
      const server = new MongoWireServer();
      expect(server.mongodbVersion).toBe('8.0');
      expect(() => new MongoWireServer({ mongodbVersion: '4.3' as MongoDBVersion })).toThrow(
        'unsupported MongoDB version "4.3": the embedded server can announce 3.6, 4.0, 4.2, 4.4, 5.0, 6.0, 7.0, 8.0',
      );
      expect(() => new MongoWireServer({ maxBlockingSortBytes: -1 })).toThrow(/invalid maxBlockingSortBytes/);
      expect(parseArgs(['--mongodb-version', '4.2', '--max-blocking-sort-bytes=1000'])).toMatchObject({
        mongodbVersion: '4.2',
        maxBlockingSortBytes: 1000,
      });
      expect(parseArgs(['--max-aggregation-sort-bytes', '5'])).toMatchObject({ maxAggregationSortBytes: 5 });
      expect(() => parseArgs(['--mongodb-version', '9.0'])).toThrow(
        'invalid --mongodb-version 9.0: one of 3.6, 4.0, 4.2, 4.4, 5.0, 6.0, 7.0, 8.0',
      );
      expect(() => parseArgs(['--max-blocking-sort-bytes', 'x'])).toThrow('invalid --max-blocking-sort-bytes: x');
      for (const flag of ['--mongodb-version', '--max-blocking-sort-bytes', '--max-aggregation-sort-bytes'])
        expect(USAGE).toContain(flag);
    });
  });

  describe('each refusal fires before its version, not from it', () => {
    it('find allowDiskUse (4.4): 4.2 find parser error 9', async () => {
      const c = await coll('4.2');
      const e = await refused(c.find({}, { allowDiskUse: true }).toArray());
      expect([e.code, e.codeName]).toEqual([9, 'FailedToParse']);
      expect(e.message).toMatch(/^Failed to parse: \{ find: "c\d+", .*\}\. Unrecognized field 'allowDiskUse'\.$/);
      // A made-up field gets the same parser's answer.
      const bogus = await refused((await on('4.2')).db.command({ find: c.collectionName, bogus: 1 }));
      expect(bogus.message).toMatch(/Unrecognized field 'bogus'\.$/);
      expect(await (await coll('4.4')).find({}, { allowDiskUse: true }).toArray()).toEqual([{ _id: 1, x: 1 }]);
    });

    it('let (5.0) on find / aggregate / update / delete / findAndModify: each parser of 4.4', async () => {
      const c = await coll('4.4');
      const letOpt = { let: { v: 1 } };
      const expr = { $expr: { $eq: ['$x', '$$v'] } };
      const find = await refused(c.find(expr, letOpt).toArray());
      expect([find.code, find.message]).toEqual([9, expect.stringMatching(/Unrecognized field 'let'\.$/)]);
      const agg = await refused(c.aggregate([{ $match: expr }], letOpt).toArray());
      expect([agg.code, agg.message]).toEqual([9, "unrecognized field 'let'"]);
      const upd = await refused(c.updateOne(expr, { $set: { y: 1 } }, letOpt));
      expect([upd.code, upd.message]).toEqual([40415, "BSON field 'update.let' is an unknown field."]);
      const del = await refused(c.deleteOne(expr, letOpt));
      expect([del.code, del.message]).toEqual([40415, "BSON field 'delete.let' is an unknown field."]);
      const fam = await refused(c.findOneAndUpdate(expr, { $set: { y: 1 } }, letOpt));
      expect([fam.code, fam.message]).toEqual([51177, "BSON field 'let' is an unknown field."]);
      expect(await c.find({}).toArray()).toEqual([{ _id: 1, x: 1 }]);

      const d = await coll('5.0');
      expect(await d.find(expr, letOpt).toArray()).toEqual([{ _id: 1, x: 1 }]);
      expect(await d.aggregate([{ $match: expr }], letOpt).toArray()).toHaveLength(1);
      expect((await d.updateOne(expr, { $set: { y: 1 } }, letOpt)).modifiedCount).toBe(1);
      expect(await d.findOneAndUpdate(expr, { $set: { y: 2 } }, letOpt)).toMatchObject({ y: 1 });
      expect((await d.deleteOne(expr, letOpt)).deletedCount).toBe(1);
    });

    it("an empty update operand (5.0): 9 '$set' is empty on 4.4", async () => {
      const c = await coll('4.4');
      for (const op of ['$set', '$unset', '$inc']) {
        const e = await refused(c.updateOne({ _id: 1 }, { [op]: {} }));
        expect([e.code, e.message]).toEqual([
          9,
          `'${op}' is empty. You must specify a field like so: {${op}: {<field>: ...}}`,
        ]);
      }
      const fam = await refused(c.findOneAndUpdate({ _id: 1 }, { $set: {} }));
      expect(fam.code).toBe(9);
      const d = await coll('5.0');
      expect(await d.updateOne({ _id: 1 }, { $set: {} })).toMatchObject({ matchedCount: 1, modifiedCount: 0 });
    });

    it('expressions of 5.0 ($getField, $setField, $unsetField, $dateAdd / Diff / Subtract / Trunc): 168 on 4.4', async () => {
      const exprs: Document[] = [
        { $getField: 'x' },
        { $setField: { field: 'z', input: '$$ROOT', value: 1 } },
        { $unsetField: { field: 'x', input: '$$ROOT' } },
        { $dateAdd: { startDate: '$$NOW', unit: 'day', amount: 1 } },
        { $dateDiff: { startDate: '$$NOW', endDate: '$$NOW', unit: 'day' } },
        { $dateSubtract: { startDate: '$$NOW', unit: 'day', amount: 1 } },
        { $dateTrunc: { date: '$$NOW', unit: 'day' } },
      ];
      const old = await coll('4.4');
      const now = await coll('5.0');
      for (const e of exprs) {
        const op = Object.keys(e)[0];
        const err = await refused(old.aggregate([{ $project: { y: e } }]).toArray());
        expect([err.code, err.codeName, err.message]).toEqual([
          168,
          'InvalidPipelineOperator',
          `Unrecognized expression '${op}'`,
        ]);
        expect(await now.aggregate([{ $project: { y: e } }]).toArray()).toHaveLength(1);
      }
      // Also inside $expr of a find filter, and nested in other expressions.
      const inFind = await refused(old.find({ $expr: { $eq: [{ $getField: 'x' }, 1] } }).toArray());
      expect(inFind.code).toBe(168);
      const nested = await refused(old.aggregate([{ $addFields: { y: { $add: [1, { $dateTrunc: {} }] } } }]).toArray());
      expect(nested.message).toBe("Unrecognized expression '$dateTrunc'");
      // Not inside $literal.
      expect(await old.aggregate([{ $project: { y: { $literal: { $getField: 'x' } } } }]).toArray()).toEqual([
        { _id: 1, y: { $getField: 'x' } },
      ]);
    });

    it('stages: $unionWith (4.4), $setWindowFields (5.0), $densify / $documents / $fill (6.0): 40324 before', async () => {
      const cases: Array<[Document, MongoDBVersion, MongoDBVersion]> = [
        [{ $unionWith: 'other' }, '4.2', '4.4'],
        [{ $densify: { field: 'x', range: { step: 1, bounds: 'full' } } }, '5.0', '6.0'],
        [{ $fill: { output: { x: { value: 0 } } } }, '5.0', '6.0'],
      ];
      for (const [stage, before, from] of cases) {
        const e = await refused((await coll(before)).aggregate([stage]).toArray());
        expect([e.code, e.message]).toEqual([40324, `Unrecognized pipeline stage name: '${Object.keys(stage)[0]}'`]);
        expect(await (await coll(from)).aggregate([stage]).toArray()).not.toHaveLength(0);
      }
      // $setWindowFields (5.0): mingo runs it through $function, which this server refuses (238).
      const windows = { $setWindowFields: { sortBy: { x: 1 }, output: { r: { $rank: {} } } } };
      expect((await refused((await coll('4.4')).aggregate([windows]).toArray())).code).toBe(40324);
      expect((await refused((await coll('5.0')).aggregate([windows]).toArray())).code).toBe(238);
      const docs = await refused((await on('5.0')).db.aggregate([{ $documents: [{ a: 1 }] }]).toArray());
      expect(docs.code).toBe(40324);
      expect(await (await on('6.0')).db.aggregate([{ $documents: [{ a: 1 }] }]).toArray()).toEqual([{ a: 1 }]);
      // Nested pipelines are checked too.
      const nested = await refused(
        (await coll('4.2')).aggregate([{ $facet: { a: [{ $unionWith: 'other' }] } }]).toArray(),
      );
      expect(nested.code).toBe(40324);
    });

    it('4.4 expressions ($isNumber, $replaceAll, $first / $last of an array): 168 on 4.2; the $first accumulator is older', async () => {
      const old = await coll('4.2', [{ _id: 1, a: [1, 2], s: 'aa' }]);
      const now = await coll('4.4', [{ _id: 1, a: [1, 2], s: 'aa' }]);
      const exprs: Document[] = [
        { $isNumber: '$a' },
        { $replaceAll: { input: '$s', find: 'a', replacement: 'b' } },
        { $replaceOne: { input: '$s', find: 'a', replacement: 'b' } },
        { $first: '$a' },
        { $last: '$a' },
      ];
      for (const e of exprs) {
        expect((await refused(old.aggregate([{ $project: { y: e } }]).toArray())).code).toBe(168);
        expect(await now.aggregate([{ $project: { y: e } }]).toArray()).toHaveLength(1);
      }
      expect(await old.aggregate([{ $group: { _id: null, f: { $first: '$s' } } }]).toArray()).toEqual([
        { _id: null, f: 'aa' },
      ]);
    });

    it('accumulators: $count (5.0), $top (6.0), $median (7.0): 15952 in $group before; window functions: 9', async () => {
      const cases: Array<[Document, MongoDBVersion, MongoDBVersion]> = [
        [{ $count: {} }, '4.4', '5.0'],
        [{ $top: { sortBy: { x: 1 }, output: '$x' } }, '5.0', '6.0'],
        [{ $median: { input: '$x', method: 'approximate' } }, '6.0', '7.0'],
      ];
      for (const [acc, before, from] of cases) {
        const op = Object.keys(acc)[0];
        const e = await refused((await coll(before)).aggregate([{ $group: { _id: null, r: acc } }]).toArray());
        expect([e.code, e.codeName, e.message]).toEqual([15952, 'Location15952', `unknown group operator '${op}'`]);
        expect(await (await coll(from)).aggregate([{ $group: { _id: null, r: acc } }]).toArray()).toHaveLength(1);
      }
      const median = await refused(
        (await coll('6.0'))
          .aggregate([{ $project: { m: { $median: { input: [1], method: 'approximate' } } } }])
          .toArray(),
      );
      expect(median.message).toBe("Unrecognized expression '$median'");
      const locf = { $setWindowFields: { sortBy: { _id: 1 }, output: { y: { $locf: '$x' } } } };
      const e = await refused((await coll('5.0')).aggregate([locf]).toArray());
      expect([e.code, e.message]).toEqual([9, 'Unrecognized window function, $locf']);
      // From 6.0 it is known; $setWindowFields itself is refused by this server (238, see above).
      expect((await refused((await coll('6.0')).aggregate([locf]).toArray())).code).toBe(238);
    });

    it('$lookup with pipeline and localField / foreignField together (5.0): 9 on 4.4', async () => {
      const stage = { $lookup: { from: 'x', localField: 'x', foreignField: 'x', pipeline: [], as: 'j' } };
      const e = await refused((await coll('4.4')).aggregate([stage]).toArray());
      expect([e.code, e.message]).toEqual([
        9,
        "$lookup with 'pipeline' may not specify 'localField' or 'foreignField'",
      ]);
      expect(await (await coll('5.0')).aggregate([stage]).toArray()).toEqual([{ _id: 1, x: 1, j: [] }]);
    });

    it('hint on delete / findAndModify and hidden indexes (4.4): refused by 4.2', async () => {
      const c = await coll('4.2');
      const del = await refused(c.deleteOne({ x: 1 }, { hint: { _id: 1 } }));
      expect([del.code, del.message]).toEqual([40415, "BSON field 'delete.deletes.hint' is an unknown field."]);
      const fam = await refused(c.findOneAndDelete({ x: 1 }, { hint: { _id: 1 } }));
      expect([fam.code, fam.message]).toEqual([51177, "BSON field 'hint' is an unknown field."]);
      const hidden = await refused(c.createIndex({ x: 1 }, { hidden: true }));
      expect(hidden.code).toBe(197);
      expect(hidden.message).toMatch(/^The field 'hidden' is not valid for an index specification/);
      const d = await coll('4.4');
      expect((await d.deleteOne({ x: 1 }, { hint: { _id: 1 } })).deletedCount).toBe(1);
      expect(await d.createIndex({ x: 1 }, { hidden: true })).toBe('x_1');
    });

    it('update statement sort (8.0): 40415 on 7.0; 8.0 updates the first in that order, refuses it with multi', async () => {
      const docs = [
        { _id: 1, x: 1 },
        { _id: 2, x: 3 },
        { _id: 3, x: 2 },
      ];
      const old = await coll('7.0', docs);
      const e = await refused(old.updateOne({}, { $set: { top: true } }, { sort: { x: -1 } }));
      expect([e.code, e.message]).toEqual([40415, "BSON field 'update.updates.sort' is an unknown field."]);
      expect(await old.countDocuments({ top: true })).toBe(0);
      const now = await coll('8.0', docs);
      expect((await now.updateOne({}, { $set: { top: true } }, { sort: { x: -1 } })).modifiedCount).toBe(1);
      expect(await now.find({ top: true }).toArray()).toEqual([{ _id: 2, x: 3, top: true }]);
      const multi = await refused(
        (await on('8.0')).db.command({
          update: now.collectionName,
          updates: [{ q: {}, u: { $set: { y: 1 } }, multi: true, sort: { x: 1 } }],
        }),
      );
      expect([multi.code, multi.message]).toEqual([9, 'Cannot specify sort with multi=true']);
    });

    it('commands of later versions are unknown (59); refused commands of older ones stay 115', async () => {
      const { admin } = await on('4.2');
      const e = await refused(admin.command({ getDefaultRWConcern: 1 }));
      expect([e.code, e.message]).toEqual([59, "no such command: 'getDefaultRWConcern'"]);
      expect((await refused(admin.command({ analyze: 'x' }))).code).toBe(59);
      expect((await refused((await on('7.0')).admin.command({ analyze: 'x' }))).code).toBe(115);
      expect((await refused(admin.command({ mapReduce: 'x' }))).code).toBe(115);
    });

    it('operators after 8.0 ($sigmoid) and $toHashedIndexKey (mingo hashes differently) are refused', async () => {
      const c = await coll('8.0');
      expect((await refused(c.aggregate([{ $project: { y: { $sigmoid: 1 } } }]).toArray())).code).toBe(168);
      const hashed = await refused(c.aggregate([{ $project: { y: { $toHashedIndexKey: 'a' } } }]).toArray());
      expect([hashed.code, hashed.message]).toEqual([
        238,
        'not supported by the embedded server: expression operator $toHashedIndexKey',
      ]);
      expect(
        (await refused((await coll('6.0')).aggregate([{ $project: { y: { $toHashedIndexKey: 'a' } } }]).toArray()))
          .code,
      ).toBe(168);
    });
  });

  describe('blocking sorts: the memory limit', () => {
    const pad = 'p'.repeat(1000);
    /** 30 documents of about 1 KB (31 KB in all). */
    const docs = (extra: (i: number) => Document = () => ({})): Doc[] =>
      Array.from({ length: 30 }, (_, i) => ({ _id: i, v: (i * 7) % 30, pad, ...extra(i) }));
    const LIMIT = 10_000;
    const fill = async (db: Db, d: Doc[] = docs()): Promise<Collection<Doc>> => {
      const c = db.collection<Doc>(`s${++n}`);
      await c.insertMany(d);
      return c;
    };
    const FIND_42 = `Executor error during find command :: caused by :: Sort operation used more than the maximum ${LIMIT} bytes of RAM. Add an index, or specify a smaller limit.`;
    const FIND_44 = `Executor error during find command :: caused by :: Sort exceeded memory limit of ${LIMIT} bytes, but did not opt in to external sorting.`;

    it('4.2 find: 96 OperationFailed over internalQueryExecMaxBlockingSortBytes, unless an index provides the sort or the limit is small', async () => {
      const { db } = await start('4.2', { maxBlockingSortBytes: LIMIT });
      const c = await fill(db);
      const e = await refused(c.find({}).sort({ v: 1 }).toArray());
      expect([e.code, e.codeName, e.message]).toEqual([96, 'OperationFailed', FIND_42]);
      // Only the best skip + limit are held.
      expect((await c.find({}).sort({ v: 1 }).limit(5).toArray()).map((d) => d.v)).toEqual([0, 1, 2, 3, 4]);
      expect((await c.find({}).sort({ v: 1 }).skip(2).limit(3).toArray()).map((d) => d.v)).toEqual([2, 3, 4]);
      expect((await refused(c.find({}).sort({ v: 1 }).limit(20).toArray())).code).toBe(96);
      // A filter that keeps few documents.
      expect(
        await c
          .find({ v: { $lt: 3 } })
          .sort({ v: 1 })
          .toArray(),
      ).toHaveLength(3);
      // _id and $natural: no blocking sort.
      expect(await c.find({}).sort({ _id: -1 }).toArray()).toHaveLength(30);
      expect(await c.find({}).sort({ $natural: -1 }).toArray()).toHaveLength(30);
      // An index on the sort (in either direction).
      await c.createIndex({ v: -1 });
      expect((await c.find({}).sort({ v: 1 }).toArray()).map((d) => d.v)).toEqual([...Array(30).keys()]);
      expect(await c.find({}).sort({ v: -1 }).toArray()).toHaveLength(30);
      // ... unless the hint forbids it.
      expect((await refused(c.find({}).sort({ v: 1 }).hint({ $natural: 1 }).toArray())).code).toBe(96);
      // Mixed directions an index does not have.
      await c.createIndex({ v: 1, w: 1 });
      expect(await c.find({}).sort({ v: 1, w: 1 }).toArray()).toHaveLength(30);
      expect((await refused(c.find({}).sort({ v: 1, w: -1 }).toArray())).code).toBe(96);
    });

    it('the equality-prefix case: index {taskId, seq}, filter {taskId: x, tstatus}, sort {seq} is provided', async () => {
      const { db } = await start('4.2', { maxBlockingSortBytes: LIMIT });
      const c = await fill(
        db,
        docs((i) => ({ taskId: 't', seq: 30 - i, tstatus: 'Queued' })),
      );
      await c.createIndex({ taskId: 1, seq: 1 });
      const r = await c.find({ taskId: 't', tstatus: 'Queued' }).sort({ seq: 1 }).toArray();
      expect(r.map((d) => d.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      // $eq, $and, a $in of points (a sort-merge of index scans), an equality-bound sort field.
      expect(
        await c
          .find({ taskId: { $eq: 't' } })
          .sort({ seq: -1 })
          .toArray(),
      ).toHaveLength(30);
      expect(
        await c
          .find({ $and: [{ taskId: 't' }, { tstatus: 'Queued' }] })
          .sort({ seq: 1 })
          .toArray(),
      ).toHaveLength(30);
      expect(
        await c
          .find({ taskId: { $in: ['t', 'u'] } })
          .sort({ seq: 1 })
          .toArray(),
      ).toHaveLength(30);
      expect(await c.find({ taskId: 't' }).sort({ taskId: 1, seq: 1 }).toArray()).toHaveLength(30);
      // Without the equality on the prefix, or with a range on it, or under $or: a blocking sort.
      expect((await refused(c.find({ tstatus: 'Queued' }).sort({ seq: 1 }).toArray())).code).toBe(96);
      expect(
        (
          await refused(
            c
              .find({ taskId: { $gte: 't' } })
              .sort({ seq: 1 })
              .toArray(),
          )
        ).code,
      ).toBe(96);
      expect(
        (
          await refused(
            c
              .find({ $or: [{ taskId: 't' }, { taskId: 'u' }] })
              .sort({ seq: 1 })
              .toArray(),
          )
        ).code,
      ).toBe(96);
    });

    it('4.4 and 5.0 find: 292 unless allowDiskUse: true; the limit set with setParameter', async () => {
      for (const v of ['4.4', '5.0'] as MongoDBVersion[]) {
        const { db, admin } = await start(v);
        const set = await admin.command({ setParameter: 1, internalQueryMaxBlockingSortMemoryUsageBytes: LIMIT });
        expect(set).toMatchObject({ was: 104857600, ok: 1 });
        expect(
          (await admin.command({ getParameter: 1, internalQueryMaxBlockingSortMemoryUsageBytes: 1 }))
            .internalQueryMaxBlockingSortMemoryUsageBytes,
        ).toBe(LIMIT);
        const c = await fill(db);
        const e = await refused(c.find({}).sort({ v: 1 }).toArray());
        expect([e.code, e.codeName, e.message]).toEqual([292, 'QueryExceededMemoryLimitNoDiskUseAllowed', FIND_44]);
        expect((await refused(c.find({}, { allowDiskUse: false }).sort({ v: 1 }).toArray())).code).toBe(292);
        expect(await c.find({}, { allowDiskUse: true }).sort({ v: 1 }).toArray()).toHaveLength(30);
      }
    });

    it('6.0 and later: allowDiskUseByDefault (true) spills unless allowDiskUse: false or the parameter is false', async () => {
      const { db, admin } = await start('8.0', { maxBlockingSortBytes: LIMIT });
      const c = await fill(db);
      expect(await c.find({}).sort({ v: 1 }).toArray()).toHaveLength(30);
      const e = await refused(c.find({}, { allowDiskUse: false }).sort({ v: 1 }).toArray());
      expect([e.code, e.message]).toEqual([292, FIND_44]);
      expect(await admin.command({ setParameter: 1, allowDiskUseByDefault: false })).toMatchObject({ was: true });
      expect((await refused(c.find({}).sort({ v: 1 }).toArray())).code).toBe(292);
      expect(await c.find({}, { allowDiskUse: true }).sort({ v: 1 }).toArray()).toHaveLength(30);
    });

    it('setParameter: the release names, admin only, others refused', async () => {
      const { db, admin } = await start('4.2');
      expect(await admin.command({ setParameter: 1, internalQueryExecMaxBlockingSortBytes: 5000 })).toMatchObject({
        was: 33554432,
      });
      expect(
        await admin.command({ setParameter: 1, internalDocumentSourceSortMaxBlockingSortBytes: 6000 }),
      ).toMatchObject({ was: 104857600 });
      const got = await admin.command({ getParameter: '*' });
      expect(got).toMatchObject({
        internalQueryExecMaxBlockingSortBytes: 5000,
        internalDocumentSourceSortMaxBlockingSortBytes: 6000,
      });
      expect(got.internalQueryMaxBlockingSortMemoryUsageBytes).toBeUndefined();
      expect(got.allowDiskUseByDefault).toBeUndefined();
      const later = await refused(admin.command({ setParameter: 1, internalQueryMaxBlockingSortMemoryUsageBytes: 1 }));
      expect(later.code).toBe(238);
      expect((await refused(admin.command({ setParameter: 1, allowDiskUseByDefault: false }))).code).toBe(238);
      expect((await refused(db.command({ setParameter: 1, internalQueryExecMaxBlockingSortBytes: 1 }))).code).toBe(13);
      expect((await refused(admin.command({ setParameter: 1, internalQueryExecMaxBlockingSortBytes: -1 }))).code).toBe(
        2,
      );
      expect((await refused(admin.command({ setParameter: 1, internalQueryExecMaxBlockingSortBytes: 'x' }))).code).toBe(
        14,
      );
    });

    it('findAndModify and update sorts hold one document', async () => {
      const { db } = await start('4.2', { maxBlockingSortBytes: 500 });
      const c = await fill(db);
      const e = await refused(c.findOneAndUpdate({}, { $set: { t: 1 } }, { sort: { v: -1 } }));
      expect([e.code, e.message]).toEqual([
        96,
        'Plan executor error during findAndModify :: caused by :: Sort operation used more than the maximum 500 bytes of RAM. Add an index, or specify a smaller limit.',
      ]);
      await c.createIndex({ v: 1 });
      expect(await c.findOneAndUpdate({}, { $set: { t: 1 } }, { sort: { v: -1 } })).toMatchObject({ v: 29 });

      const now = await start('8.0', { maxBlockingSortBytes: 500 });
      const d = await fill(now.db);
      const u = await refused(d.updateOne({}, { $set: { t: 1 } }, { sort: { v: -1 } }));
      expect([u.code, u.message]).toEqual([
        292,
        'Plan executor error during update :: caused by :: Sort exceeded memory limit of 500 bytes, but did not opt in to external sorting.',
      ]);
      await d.createIndex({ v: -1 });
      expect((await d.updateOne({}, { $set: { t: 1 } }, { sort: { v: -1 } })).modifiedCount).toBe(1);
    });

    it('aggregation $sort: 16819 on 4.2, 292 from 4.4, unless allowDiskUse, an index, or a small $limit', async () => {
      const old = await start('4.2', { maxAggregationSortBytes: LIMIT, maxBlockingSortBytes: 100 });
      const c = await fill(old.db);
      const e = await refused(c.aggregate([{ $sort: { v: 1 } }]).toArray());
      expect([e.code, e.codeName, e.message]).toEqual([
        16819,
        'Location16819',
        `Sort exceeded memory limit of ${LIMIT} bytes, but did not opt in to external sorting. Aborting operation. Pass allowDiskUse:true to opt in.`,
      ]);
      expect(await c.aggregate([{ $sort: { v: 1 } }], { allowDiskUse: true }).toArray()).toHaveLength(30);
      expect(await c.aggregate([{ $sort: { v: 1 } }, { $limit: 3 }]).toArray()).toHaveLength(3);
      expect(await c.aggregate([{ $sort: { _id: 1 } }]).toArray()).toHaveLength(30);
      // A $sort after other stages (never indexed), and with a $skip + $limit after it.
      const mid = [{ $addFields: { w: { $multiply: ['$v', 2] } } }, { $sort: { w: -1 } }];
      expect((await refused(c.aggregate(mid).toArray())).code).toBe(16819);
      expect((await c.aggregate([...mid, { $skip: 1 }, { $limit: 2 }]).toArray()).map((d) => d.w)).toEqual([56, 54]);
      expect(await c.aggregate(mid, { allowDiskUse: true }).toArray()).toHaveLength(30);
      // After a $project that makes documents small.
      expect(await c.aggregate([{ $project: { v: 1 } }, { $sort: { v: 1 } }]).toArray()).toHaveLength(30);
      await c.createIndex({ v: 1 });
      expect(await c.aggregate([{ $match: {} }, { $sort: { v: 1 } }]).toArray()).toHaveLength(30);

      const now = await start('4.4', { maxAggregationSortBytes: LIMIT });
      const d = await fill(now.db);
      const e2 = await refused(d.aggregate([{ $sort: { v: 1 } }]).toArray());
      expect([e2.code, e2.message]).toEqual([
        292,
        `PlanExecutor error during aggregation :: caused by :: Sort exceeded memory limit of ${LIMIT} bytes, but did not opt in to external sorting.`,
      ]);
      expect(await d.aggregate([{ $sort: { v: 1 } }], { allowDiskUse: true }).toArray()).toHaveLength(30);
      // From 4.4 one parameter governs both sorts.
      await now.admin.command({ setParameter: 1, internalQueryMaxBlockingSortMemoryUsageBytes: 1_000_000 });
      expect(await d.aggregate([{ $sort: { v: 1 } }]).toArray()).toHaveLength(30);
    });
  });
});

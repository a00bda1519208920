import * as net from 'node:net';
import { Binary, BSON, Document, Long, ObjectId, UUID } from 'bson';
import { MongoClient, MongoClientOptions, MongoServerError } from 'mongodb';
import mongoose from 'mongoose';
import { MongoWireServer } from '../src';
import { parseArgs, runCli } from '../src/cli';
import { ReplicaSetMember } from '../src/replica-set';

/** Replica-set mode through the real driver: handshake, step-downs, retryable writes. */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function serverError(p: Promise<unknown>): Promise<MongoServerError> {
  try {
    await p;
  } catch (e) {
    return e as MongoServerError;
  }
  throw new Error('expected an error');
}

/** Resolves when `cond` holds (polled), rejects after `ms`. */
async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

interface RawReply {
  opCode: number;
  body: Document;
}

/** A bare connection: OP_MSG and OP_QUERY, one request at a time, explicit lsid / txnNumber. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: ((r: RawReply | null) => void)[] = [];
  private nextId = 1;
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 4 && this.buf.length >= this.buf.readInt32LE(0)) {
        const len = this.buf.readInt32LE(0);
        const raw = this.buf.subarray(0, len);
        this.buf = this.buf.subarray(len);
        const opCode = raw.readInt32LE(12);
        const body = BSON.deserialize(raw.subarray(opCode === 1 ? 36 : 21), { promoteLongs: false });
        this.waiters.shift()?.({ opCode, body });
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private send(msg: Buffer): Promise<RawReply | null> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.socket.write(msg);
    });
  }

  /** OP_MSG; null when the server closed the connection instead of answering. */
  async msg(body: Document): Promise<Document | null> {
    const doc = BSON.serialize(body);
    const b = Buffer.alloc(21 + doc.length);
    b.writeInt32LE(b.length, 0);
    b.writeInt32LE(this.nextId++, 4);
    b.writeInt32LE(2013, 12);
    b[20] = 0;
    b.set(doc, 21);
    return (await this.send(b))?.body ?? null;
  }

  /** Legacy OP_QUERY on `<db>.$cmd`, with the secondaryOk flag or not. */
  async query(db: string, body: Document, secondaryOk: boolean): Promise<Document | null> {
    const doc = BSON.serialize(body);
    const ns = Buffer.from(`${db}.$cmd\0`, 'utf8');
    const b = Buffer.alloc(20 + ns.length + 8 + doc.length);
    b.writeInt32LE(b.length, 0);
    b.writeInt32LE(this.nextId++, 4);
    b.writeInt32LE(2004, 12);
    b.writeInt32LE(secondaryOk ? 4 : 0, 16);
    ns.copy(b, 20);
    b.writeInt32LE(0, 20 + ns.length);
    b.writeInt32LE(-1, 24 + ns.length);
    b.set(doc, 28 + ns.length);
    return (await this.send(b))?.body ?? null;
  }

  close(): void {
    this.socket.destroy();
  }
}

const lsidOf = (): Document => ({ id: new UUID() });

interface TopologyView {
  type: string;
  setName: string | null;
  servers: Map<string, { type: string }>;
}
/** The driver's current view of the deployment (an internal property of MongoClient). */
const topologyOf = (client: MongoClient): TopologyView | undefined =>
  (client as unknown as { topology?: { description: TopologyView } }).topology?.description;

describe('mongo-wire: replica-set mode', () => {
  let server: MongoWireServer;
  const events: { at: number; line: string }[] = [];
  const clients: MongoClient[] = [];
  const raws: RawClient[] = [];

  const connect = async (options: MongoClientOptions = {}): Promise<MongoClient> => {
    const c = new MongoClient(server.uri('rs'), { serverSelectionTimeoutMS: 15_000, ...options });
    clients.push(c);
    await c.connect();
    return c;
  };
  const raw = async (): Promise<RawClient> => {
    const r = await RawClient.connect(server.port);
    raws.push(r);
    return r;
  };
  /** When the server logged its last election (ms). */
  const lastElection = (): number => [...events].reverse().find((e) => /: primary \(term/.test(e.line))?.at ?? 0;

  beforeAll(async () => {
    server = new MongoWireServer({
      replSet: 'rs0',
      enableTestCommands: true,
      log: (line) => events.push({ at: Date.now(), line }),
    });
    await server.start();
  });

  afterEach(async () => {
    for (const r of raws.splice(0)) r.close();
    // Before closing the clients: driver 6.20's close() sends endSessions selecting a primary,
    // so without one it waits serverSelectionTimeoutMS.
    if (!server.isPrimary) server.stepUp();
    for (const c of clients.splice(0)) await c.close();
  });

  afterAll(async () => {
    await server.stop();
  });

  describe('handshake', () => {
    it('builds a replicaSet uri and is seen by the driver as a set with a primary', async () => {
      expect(server.uri('rs')).toBe(`mongodb://127.0.0.1:${server.port}/rs?replicaSet=rs0`);
      expect(server.replSetName).toBe('rs0');
      const client = await connect();
      const description = topologyOf(client);
      expect(description?.type).toBe('ReplicaSetWithPrimary');
      expect(description?.setName).toBe('rs0');
      expect([...(description?.servers.keys() ?? [])]).toEqual([`127.0.0.1:${server.port}`]);
      expect(description?.servers.get(`127.0.0.1:${server.port}`)?.type).toBe('RSPrimary');
    });

    it('hello / isMaster carry the replica-set fields of a primary', async () => {
      const client = await connect();
      const me = `127.0.0.1:${server.port}`;
      const hello = await client.db('admin').command({ hello: 1 });
      expect(hello).toMatchObject({
        isWritablePrimary: true,
        secondary: false,
        setName: 'rs0',
        setVersion: 1,
        hosts: [me],
        primary: me,
        me,
        ok: 1,
      });
      expect(hello.electionId).toBeInstanceOf(ObjectId);
      expect(hello.lastWrite.lastWriteDate).toBeInstanceOf(Date);
      expect(hello.lastWrite.opTime.t).toBeDefined();
      expect(hello.topologyVersion).toBeUndefined();
      expect(hello.ismaster).toBeUndefined();
      const isMaster = await client.db('admin').command({ isMaster: 1 });
      expect(isMaster).toMatchObject({ ismaster: true, secondary: false, setName: 'rs0', primary: me });
      expect(isMaster.isWritablePrimary).toBeUndefined();
    });

    it('replSetGetStatus / replSetGetConfig describe the one-member set', async () => {
      const admin = (await connect()).db('admin');
      const status = await admin.command({ replSetGetStatus: 1 });
      expect(status).toMatchObject({ set: 'rs0', myState: 1, ok: 1 });
      expect(status.members).toHaveLength(1);
      expect(status.members[0]).toMatchObject({ _id: 0, name: `127.0.0.1:${server.port}`, stateStr: 'PRIMARY' });
      const config = await admin.command({ replSetGetConfig: 1 });
      expect(config.config).toMatchObject({ _id: 'rs0', version: 1 });
      expect(config.config.members[0]).toMatchObject({ _id: 0, host: `127.0.0.1:${server.port}`, votes: 1 });
      const err = await serverError((await connect()).db('rs').command({ replSetGetStatus: 1 }));
      expect(err.code).toBe(13);
    });
  });

  it('a restarted server comes back in a later term: a connected client keeps working', async () => {
    const first = new MongoWireServer({ replSet: 'rsRestart' });
    await first.start();
    const port = first.port;
    const client = new MongoClient(first.uri('r'), { serverSelectionTimeoutMS: 15_000 });
    let second: MongoWireServer | null = null;
    try {
      await client.db('r').collection('c').insertOne({ a: 1 });
      first.stepDown(0.2); // a second term: the driver has seen a greater electionId
      await client.db('r').collection('c').insertOne({ a: 2 });
      await first.stop();
      second = new MongoWireServer({ replSet: 'rsRestart', port });
      await second.start();
      await client.db('r').collection('c').insertOne({ a: 3 });
      expect(await client.db('r').collection('c').countDocuments({ a: 3 })).toBe(1);
    } finally {
      await client.close();
      await first.stop();
      await second?.stop();
    }
  });

  describe('replSetStepDown and replSetFreeze', () => {
    it('refuses a step-down without force (262) and bad periods (2), as a one-member set', async () => {
      const admin = (await connect()).db('admin');
      const noForce = await serverError(admin.command({ replSetStepDown: 60 }));
      expect(noForce.code).toBe(262);
      expect(noForce.codeName).toBe('ExceededTimeLimit');
      expect(noForce.message).toMatch(/^No electable secondaries caught up as of .*\{force: true\}/);
      const short = await serverError(admin.command({ replSetStepDown: 5 }));
      expect(short.code).toBe(2);
      expect(short.message).toBe('stepdown period must be longer than secondaryCatchUpPeriodSecs');
      const negative = await serverError(admin.command({ replSetStepDown: -1, force: true }));
      expect(negative.message).toBe('stepdown period must be a positive integer');
      expect(server.isPrimary).toBe(true);
    });

    it('steps down with force, refuses a second step-down and freezes, and replSetFreeze: 0 elects it again', async () => {
      const admin = (await connect()).db('admin');
      const before = (await admin.command({ hello: 1 })).electionId as ObjectId;
      const frozen = await serverError(admin.command({ replSetFreeze: 10 }));
      expect(frozen.code).toBe(95);
      expect(frozen.codeName).toBe('NotSecondary');
      expect(await admin.command({ replSetStepDown: 30, force: true })).toMatchObject({ ok: 1 });
      expect(server.isPrimary).toBe(false);
      // Without a primary, commands need a read preference that accepts a secondary.
      const secondaryOk = { readPreference: 'secondaryPreferred' } as const;
      const again = await serverError(admin.command({ replSetStepDown: 30, force: true }, secondaryOk));
      expect(again.code).toBe(10107);
      expect(again.message).toBe("not primary so can't step down");
      const hello = await admin.command({ hello: 1 }, secondaryOk);
      expect(hello).toMatchObject({ isWritablePrimary: false, secondary: true, setName: 'rs0' });
      expect(hello.primary).toBeUndefined();
      expect(hello.electionId).toBeUndefined();
      expect(await admin.command({ replSetFreeze: 0 }, secondaryOk)).toMatchObject({ info: 'unfreezing', ok: 1 });
      expect(server.isPrimary).toBe(true);
      const after = (await admin.command({ hello: 1 }, secondaryOk)).electionId as ObjectId;
      expect(after.toHexString() > before.toHexString()).toBe(true);
    });

    it('answers 76 on a standalone', async () => {
      const standalone = new MongoWireServer();
      await standalone.start();
      const client = new MongoClient(standalone.uri());
      try {
        for (const cmd of [{ replSetStepDown: 10, force: true }, { replSetGetConfig: 1 }, { replSetFreeze: 0 }]) {
          const err = await serverError(client.db('admin').command(cmd));
          expect(err.code).toBe(76);
          expect(err.message).toBe('not running with --replSet');
        }
        expect(() => standalone.stepDown(1)).toThrow(/not in replica-set mode/);
      } finally {
        await client.close();
        await standalone.stop();
      }
    });
  });

  describe('while stepped down', () => {
    it('refuses writes (10107) and primary reads (13435), serves secondary reads, keeps connections', async () => {
      const client = await connect({ retryWrites: false, retryReads: false });
      const coll = client.db('rs').collection('sd');
      await coll.insertOne({ _id: 'x' } as Document);
      const connections = server.connectionCount;
      server.stepDown(30);
      expect(server.connectionCount).toBe(connections);
      const write = await serverError(coll.insertOne({ a: 1 }));
      expect(write.code).toBe(10107);
      expect(write.codeName).toBe('NotWritablePrimary');
      expect(write.message).toBe('not primary');
      // Not a retryable write (retryWrites: false, no txnNumber): no RetryableWriteError label.
      expect(write.errorLabels).toEqual([]);
      // The driver re-checks the server after the error: it now sees a secondary.
      await until(() => topologyOf(client)?.type === 'ReplicaSetNoPrimary');
      const secondaryRead = await coll.findOne({ _id: 'x' } as Document, { readPreference: 'secondaryPreferred' });
      expect(secondaryRead).toEqual({ _id: 'x' });
      const r = await raw();
      const primaryRead = await r.msg({ find: 'sd', filter: {}, $db: 'rs' });
      expect(primaryRead).toMatchObject({ ok: 0, code: 13435, codeName: 'NotPrimaryNoSecondaryOk' });
      // No helloOk on this connection: the legacy messages.
      expect(primaryRead?.errmsg).toBe('not master and slaveOk=false');
      expect(await r.msg({ insert: 'sd', documents: [{}], $db: 'rs' })).toMatchObject({
        code: 10107,
        errmsg: 'not master',
      });
      await r.msg({ hello: 1, helloOk: true, $db: 'admin' });
      expect(await r.msg({ insert: 'sd', documents: [{}], $db: 'rs' })).toMatchObject({ errmsg: 'not primary' });
      // A retryable write (lsid + txnNumber) gets the RetryableWriteError label (MongoDB 4.4+).
      const retryable = await r.msg({
        insert: 'sd',
        documents: [{}],
        lsid: lsidOf(),
        txnNumber: Long.fromNumber(1),
        $db: 'rs',
      });
      expect(retryable).toMatchObject({ code: 10107, errorLabels: ['RetryableWriteError'] });
      expect(
        await r.msg({ find: 'sd', filter: {}, $readPreference: { mode: 'secondaryPreferred' }, $db: 'rs' }),
      ).toMatchObject({ ok: 1 });
      // The local database stays writable; OP_QUERY with secondaryOk may read.
      expect(await r.msg({ insert: 'notes', documents: [{}], $db: 'local' })).toMatchObject({ ok: 1, n: 1 });
      expect(await r.query('rs', { count: 'sd' }, true)).toMatchObject({ ok: 1, n: 1 });
      expect(await r.query('rs', { count: 'sd' }, false)).toMatchObject({ ok: 0, code: 13435 });
      expect(await r.msg({ listCollections: 1, $db: 'rs' })).toMatchObject({ code: 13435 });
      expect(await r.msg({ create: 'new', $db: 'rs' })).toMatchObject({ code: 10107 });
      expect(await r.msg({ ping: 1, $db: 'admin' })).toMatchObject({ ok: 1 });
      expect(await coll.countDocuments({}, { readPreference: 'secondary' })).toBe(1);
    });

    it('stepDown({closeConnections: true}) closes every client connection, as MongoDB 4.0', async () => {
      const r = await raw();
      expect(await r.msg({ ping: 1, $db: 'admin' })).toMatchObject({ ok: 1 });
      server.stepDown(30, { closeConnections: true });
      await until(() => r.closed);
      expect(server.connectionCount).toBe(0);
    });

    it('(a) an insertOne issued during a 2 s step-down is applied exactly once after it', async () => {
      const client = await connect();
      const coll = client.db('rs').collection('a');
      await coll.insertOne({ warm: true });
      const termBefore = (await client.db('admin').command({ hello: 1 })).electionId as ObjectId;
      const started = Date.now();
      server.stepDown(2);
      await coll.insertOne({ k: 'during' });
      const done = Date.now();
      const electedAt = lastElection();
      expect(electedAt).toBeGreaterThanOrEqual(started + 1900);
      expect(done).toBeGreaterThanOrEqual(electedAt);
      expect(await coll.countDocuments({ k: 'during' })).toBe(1);
      const termAfter = (await client.db('admin').command({ hello: 1 })).electionId as ObjectId;
      expect(termAfter.toHexString() > termBefore.toHexString()).toBe(true);
      // The driver re-checks the member every 500 ms (minHeartbeatFrequencyMS) while it waits.
      expect(done - electedAt).toBeLessThan(1500);
    });

    it('(b) updateMany during a step-down fails with 10107 (not retryable) and works after', async () => {
      const client = await connect();
      const coll = client.db('rs').collection('b');
      await coll.insertMany([{ g: 1 }, { g: 1 }]);
      server.stepDown(2);
      const err = await serverError(coll.updateMany({ g: 1 }, { $set: { seen: true } }));
      expect(err.code).toBe(10107);
      expect(err.codeName).toBe('NotWritablePrimary');
      // Nothing was applied; once a primary is back the same update goes through.
      expect(await coll.countDocuments({ seen: true }, { readPreference: 'secondaryPreferred' })).toBe(0);
      // Issued while the driver knows there is no primary: it waits in server selection.
      const res = await coll.updateMany({ g: 1 }, { $set: { seen: true } });
      expect(res.modifiedCount).toBe(2);
      expect(server.isPrimary).toBe(true);
    });

    it('(c) a write whose reply is lost is retried by the driver and applied once', async () => {
      const client = await connect();
      const coll = client.db('rs').collection('c');
      await coll.insertOne({ _id: 'counter', n: 0 } as Document);
      server.loseReplies('insert');
      const res = await coll.insertOne({ k: 'lost' });
      expect(res.acknowledged).toBe(true);
      expect(await coll.countDocuments({ k: 'lost' })).toBe(1);
      server.loseReplies('findAndModify');
      const fam = await coll.findOneAndUpdate(
        { _id: 'counter' } as Document,
        { $inc: { n: 1 } },
        { returnDocument: 'after' },
      );
      expect(fam).toMatchObject({ _id: 'counter', n: 1 });
      expect(await coll.findOne({ _id: 'counter' } as Document)).toMatchObject({ n: 1 });
      server.loseReplies('update');
      await coll.updateOne({ _id: 'counter' } as Document, { $inc: { n: 10 } });
      expect(await coll.findOne({ _id: 'counter' } as Document)).toMatchObject({ n: 11 });
      // Without retryable writes the write was applied, but the client only saw the network error.
      const plain = await connect({ retryWrites: false });
      server.loseReplies('insert');
      await expect(plain.db('rs').collection('c').insertOne({ k: 'plain' })).rejects.toThrow();
      expect(await coll.countDocuments({ k: 'plain' })).toBe(1);
    });

    it('mongoose: a save during a step-down is applied once after it', async () => {
      const conn = await mongoose
        .createConnection(server.uri('rsmongoose'), { serverSelectionTimeoutMS: 15_000 })
        .asPromise();
      try {
        const Item = conn.model('Item', new mongoose.Schema({ name: String }));
        await Item.create({ name: 'before' });
        server.stepDown(1);
        await Item.create({ name: 'during' });
        expect(await Item.countDocuments({ name: 'during' })).toBe(1);
        expect(server.isPrimary).toBe(true);
      } finally {
        await conn.close();
      }
    });
  });

  describe('retryable writes (lsid + txnNumber)', () => {
    it('executes once per (session, txnNumber), replays the reply, refuses older numbers', async () => {
      const r = await raw();
      const lsid = lsidOf();
      const insert = {
        insert: 'rw',
        documents: [{ _id: 1 }, { _id: 2 }],
        lsid,
        txnNumber: Long.fromNumber(5),
        $db: 'rs',
      };
      expect(await r.msg(insert)).toEqual({ n: 2, ok: 1 });
      // The same write again: not executed (no duplicate key), the recorded reply (7.0: retriedStmtIds).
      expect(await r.msg(insert)).toEqual({ n: 2, retriedStmtIds: [0, 1], ok: 1 });
      expect(await r.msg({ count: 'rw', $db: 'rs' })).toMatchObject({ n: 2 });
      const old = await r.msg({ ...insert, txnNumber: Long.fromNumber(4) });
      expect(old).toMatchObject({ ok: 0, code: 225, codeName: 'TransactionTooOld' });
      expect(old?.errmsg).toMatch(
        /^Cannot start transaction 4 on session .* because a newer transaction with txnNumber 5 has already started on this session\.$/,
      );
      // Another session has its own numbers.
      expect(
        await r.msg({ ...insert, documents: [{ _id: 3 }], lsid: lsidOf(), txnNumber: Long.fromNumber(1) }),
      ).toEqual({
        n: 1,
        ok: 1,
      });
      // A new number on the first session executes again (and fails on the duplicate key).
      const dup = await r.msg({ ...insert, txnNumber: Long.fromNumber(6) });
      expect(dup?.writeErrors?.[0]?.code).toBe(11000);
    });

    it('replays findAndModify and updates, with their values', async () => {
      const r = await raw();
      const lsid = lsidOf();
      await r.msg({ insert: 'fam', documents: [{ _id: 1, n: 0 }], $db: 'rs' });
      const fam = {
        findAndModify: 'fam',
        query: { _id: 1 },
        update: { $inc: { n: 1 } },
        new: true,
        lsid,
        txnNumber: Long.fromNumber(1),
        $db: 'rs',
      };
      const first = await r.msg(fam);
      expect(first).toMatchObject({ value: { _id: 1, n: 1 }, ok: 1 });
      const again = await r.msg(fam);
      expect(again).toMatchObject({ value: { _id: 1, n: 1 }, retriedStmtId: 0, ok: 1 });
      const upd = {
        update: 'fam',
        updates: [{ q: { _id: 2 }, u: { $inc: { n: 1 } }, upsert: true }],
        lsid,
        txnNumber: Long.fromNumber(2),
        $db: 'rs',
      };
      const u1 = await r.msg(upd);
      const u2 = await r.msg(upd);
      expect(u1).toMatchObject({ n: 1, nModified: 0, upserted: [{ index: 0, _id: 2 }] });
      expect(u2).toMatchObject({ n: 1, nModified: 0, upserted: [{ index: 0, _id: 2 }], retriedStmtIds: [0] });
      expect(await r.msg({ find: 'fam', filter: {}, sort: { _id: 1 }, $db: 'rs' })).toMatchObject({
        cursor: {
          firstBatch: [
            { _id: 1, n: 1 },
            { _id: 2, n: 1 },
          ],
        },
      });
    });

    it('refuses txnNumber where MongoDB does', async () => {
      const r = await raw();
      const lsid = lsidOf();
      const noLsid = await r.msg({ insert: 'x', documents: [{}], txnNumber: Long.fromNumber(1), $db: 'rs' });
      expect(noLsid).toMatchObject({
        code: 72,
        errmsg: 'Transaction number requires a session ID to also be specified',
      });
      const find = await r.msg({ find: 'x', filter: {}, lsid, txnNumber: Long.fromNumber(1), $db: 'rs' });
      expect(find).toMatchObject({ code: 50768, codeName: 'NotARetryableWriteCommand' });
      expect(find?.errmsg).toContain('find is not a retryable write command');
      const multi = await r.msg({
        update: 'x',
        updates: [
          { q: {}, u: { $set: { a: 1 } } },
          { q: {}, u: { $set: { a: 2 } }, multi: true },
        ],
        lsid,
        txnNumber: Long.fromNumber(2),
        $db: 'rs',
      });
      expect(multi?.writeErrors).toEqual([
        { index: 1, code: 72, errmsg: 'Cannot use (or request) retryable writes with multi=true' },
      ]);
      const del = await r.msg({
        delete: 'x',
        deletes: [{ q: {}, limit: 0 }],
        lsid,
        txnNumber: Long.fromNumber(3),
        $db: 'rs',
      });
      expect(del?.writeErrors?.[0]).toMatchObject({
        code: 72,
        errmsg: 'Cannot use (or request) retryable writes with limit=0',
      });
    });

    it('a standalone refuses a retryable write (20), the driver never sends one there', async () => {
      const standalone = new MongoWireServer();
      await standalone.start();
      const r = await RawClient.connect(standalone.port);
      raws.push(r);
      const client = new MongoClient(standalone.uri('s'), { monitorCommands: true });
      try {
        const reply = await r.msg({
          insert: 'x',
          documents: [{}],
          lsid: lsidOf(),
          txnNumber: Long.fromNumber(1),
          $db: 's',
        });
        expect(reply).toMatchObject({
          ok: 0,
          code: 20,
          codeName: 'IllegalOperation',
          errmsg: 'Transaction numbers are only allowed on a replica set member or mongos',
        });
        const sent: Document[] = [];
        client.on('commandStarted', (e) => sent.push(e.command));
        await client.db('s').collection('x').insertOne({ a: 1 });
        await client
          .db('s')
          .collection('x')
          .findOneAndUpdate({ a: 1 }, { $set: { b: 1 } });
        const writes = sent.filter((c) => c.insert || c.findAndModify);
        expect(writes).toHaveLength(2);
        for (const c of writes) expect(c.txnNumber).toBeUndefined();
      } finally {
        await client.close();
        await standalone.stop();
      }
    });

    it('multi-document transactions are accepted and applied at once, as on a standalone', async () => {
      const client = await connect();
      const session = client.startSession();
      try {
        await session.withTransaction(async () => {
          await client.db('rs').collection('txn').insertOne({ a: 1 }, { session });
          await client.db('rs').collection('txn').insertOne({ a: 2 }, { session });
        });
      } finally {
        await session.endSession();
      }
      expect(await client.db('rs').collection('txn').countDocuments()).toBe(2);
    });

    it('the driver sends txnNumber to the replica set for single writes only', async () => {
      const client = await connect({ monitorCommands: true });
      const sent: Document[] = [];
      client.on('commandStarted', (e) => sent.push(e.command));
      const coll = client.db('rs').collection('sent');
      await coll.insertOne({ a: 1 });
      await coll.updateOne({ a: 1 }, { $set: { b: 1 } });
      await coll.updateMany({ a: 1 }, { $set: { c: 1 } });
      await coll.deleteMany({ z: 1 });
      const txn = (name: string): unknown => sent.find((c) => c[name] !== undefined)?.txnNumber;
      expect(txn('insert')).toBeDefined();
      expect(sent.filter((c) => c.update).map((c) => c.txnNumber !== undefined)).toEqual([true, false]);
      expect(txn('delete')).toBeUndefined();
    });
  });

  describe('failCommand in replica-set mode', () => {
    const failPoint = (data: Document, mode: unknown = { times: 1 }): Document => ({
      configureFailPoint: 'failCommand',
      mode,
      data,
    });

    it('11602 on an insert: labelled RetryableWriteError by the server, retried once by the driver', async () => {
      const client = await connect({ monitorCommands: true });
      const inserts: Document[] = [];
      client.on('commandStarted', (e) => e.commandName === 'insert' && inserts.push(e.command));
      await client.db('admin').command(failPoint({ failCommands: ['insert'], errorCode: 11602 }));
      await client.db('rs').collection('fp').insertOne({ k: 1 });
      expect(inserts).toHaveLength(2);
      expect(Number(inserts[0].txnNumber)).toBe(Number(inserts[1].txnNumber));
      expect(await client.db('rs').collection('fp').countDocuments({ k: 1 })).toBe(1);
    });

    it('an error shape with explicit errorLabels (none): not retried; 10107 from the fail point', async () => {
      const client = await connect();
      await client.db('admin').command(failPoint({ failCommands: ['insert'], errorCode: 11602, errorLabels: [] }));
      const err = await serverError(client.db('rs').collection('fp').insertOne({ k: 2 }));
      expect(err.code).toBe(11602);
      expect(err.codeName).toBe('InterruptedDueToReplStateChange');
      expect(err.errorLabels).toEqual([]);
      await client
        .db('admin')
        .command(failPoint({ failCommands: ['insert'], errorCode: 10107, errorLabels: ['RetryableWriteError'] }));
      await client.db('rs').collection('fp').insertOne({ k: 3 });
      expect(await client.db('rs').collection('fp').countDocuments({ k: 3 })).toBe(1);
    });
  });

  describe('announced versions through the driver', () => {
    it.each(['4.2', '4.4'] as const)(
      '%s: NotMaster "not master", and the driver still retries the insert',
      async (mongodbVersion) => {
        const old = new MongoWireServer({ replSet: 'rsOld', mongodbVersion });
        await old.start();
        const client = new MongoClient(old.uri('v'), { serverSelectionTimeoutMS: 15_000 });
        const r = await RawClient.connect(old.port);
        raws.push(r);
        try {
          await client.db('v').collection('c').insertOne({ warm: 1 });
          old.stepDown(1);
          const reply = await r.msg({
            insert: 'c',
            documents: [{}],
            lsid: lsidOf(),
            txnNumber: Long.fromNumber(1),
            $db: 'v',
          });
          expect(reply).toMatchObject({ code: 10107, codeName: 'NotMaster', errmsg: 'not master' });
          // 4.4 labels it; 4.2 leaves that to the driver (which does it for wire versions < 9).
          expect(reply?.errorLabels).toEqual(mongodbVersion === '4.4' ? ['RetryableWriteError'] : undefined);
          await client.db('v').collection('c').insertOne({ k: 1 });
          expect(await client.db('v').collection('c').countDocuments({ k: 1 })).toBe(1);
          expect(old.isPrimary).toBe(true);
        } finally {
          if (!old.isPrimary) old.stepUp();
          await client.close();
          await old.stop();
        }
      },
    );
  });

  describe('announced versions (member traits)', () => {
    const conn = { id: 1, remote: 'x' };

    it('4.4 and older: NotMaster / NotMasterNoSlaveOk, "not master"', () => {
      const m = new ReplicaSetMember({ name: 'rs', member: () => 'h:1', version: '4.4' });
      m.stepDown(60);
      try {
        m.hello(false, { hello: 1, helloOk: true }, conn);
        expect(() => m.admit('insert', { insert: 'c' }, 'db', conn, false)).toThrow(
          expect.objectContaining({ code: 10107, codeName: 'NotMaster', message: 'not master' }),
        );
        expect(() => m.admit('find', { find: 'c' }, 'db', conn, false)).toThrow(
          expect.objectContaining({
            code: 13435,
            codeName: 'NotMasterNoSlaveOk',
            message: 'not master and slaveOk=false',
          }),
        );
        // 4.4 labels retryable writes; 4.2 leaves it to the driver.
        const reply: Document = { ok: 0, code: 10107 };
        m.labelError(reply, { insert: 'c', lsid: { id: new Binary() }, txnNumber: 1 });
        expect(reply.errorLabels).toEqual(['RetryableWriteError']);
      } finally {
        m.close();
      }
      const m42 = new ReplicaSetMember({ name: 'rs', member: () => 'h:1', version: '4.2' });
      const reply: Document = { ok: 0, code: 10107 };
      m42.labelError(reply, { insert: 'c', lsid: { id: new Binary() }, txnNumber: 1 });
      expect(reply.errorLabels).toBeUndefined();
    });

    it('4.0 and older close the connections on a step-down', () => {
      let closed = 0;
      const m = new ReplicaSetMember({
        name: 'rs',
        member: () => 'h:1',
        version: '4.0',
        closeConnections: () => closed++,
      });
      m.stepDown(60);
      m.close();
      expect(closed).toBe(1);
      const m7 = new ReplicaSetMember({ name: 'rs', member: () => 'h:1', closeConnections: () => closed++ });
      m7.stepDown(60);
      m7.close();
      expect(closed).toBe(1);
    });
  });

  describe('CLI', () => {
    it('--replSet starts a replica-set member and prints its uri', async () => {
      expect(parseArgs(['--replSet', 'rs1', '--port', '0'])).toEqual({ host: '127.0.0.1', port: 0, replSet: 'rs1' });
      expect(() => parseArgs(['--replSet', 'rs1/a:1,b:2'])).toThrow(/seed lists/);
      expect(() => parseArgs(['--replSetMember', 'h:1'])).toThrow(/needs --replSet/);
      expect(() => parseArgs(['--replSet', 'r', '--replSetMember', 'nope'])).toThrow(/host:port/);
      expect(parseArgs(['--replSet=r', '--replSetMember=mongo:27017'])).toMatchObject({
        replSet: 'r',
        replSetMember: 'mongo:27017',
      });
      const lines: string[] = [];
      const running = await runCli(['--port', '0', '--replSet', 'rs1'], (l) => lines.push(l));
      try {
        expect(lines).toEqual([
          `MongoDB-compatible server listening at mongodb://127.0.0.1:${running.server.port}/?replicaSet=rs1`,
        ]);
        const client = new MongoClient(`mongodb://127.0.0.1:${running.server.port}/?replicaSet=rs1`);
        try {
          await client.db('cli').collection('c').insertOne({ a: 1 });
          expect(topologyOf(client)?.type).toBe('ReplicaSetWithPrimary');
        } finally {
          await client.close();
        }
      } finally {
        await running.stop();
      }
    });
  });
});

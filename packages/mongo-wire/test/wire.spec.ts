import * as net from 'node:net';
import { BSON, Document, Long } from 'bson';
import { MongoWireServer } from '../src';

/** Raw wire protocol: legacy OP_QUERY / OP_REPLY, OP_MSG document sequences, moreToCome, framing. */
describe('mongo-wire: wire protocol', () => {
  let server: MongoWireServer;
  const sockets: RawClient[] = [];

  interface Reply {
    opCode: number;
    requestId: number;
    responseTo: number;
    body: Document;
    raw: Buffer;
  }

  class RawClient {
    private buf = Buffer.alloc(0);
    private waiters: ((r: Reply) => void)[] = [];
    private replies: Reply[] = [];
    closed = false;
    private static nextId = 1;

    constructor(readonly socket: net.Socket) {
      socket.on('data', (d) => {
        this.buf = Buffer.concat([this.buf, d]);
        while (this.buf.length >= 4 && this.buf.length >= this.buf.readInt32LE(0)) {
          const len = this.buf.readInt32LE(0);
          const raw = this.buf.subarray(0, len);
          this.buf = this.buf.subarray(len);
          const opCode = raw.readInt32LE(12);
          const bodyAt = opCode === 1 ? 36 : 21;
          const reply: Reply = {
            opCode,
            requestId: raw.readInt32LE(4),
            responseTo: raw.readInt32LE(8),
            body: BSON.deserialize(raw.subarray(bodyAt), { promoteLongs: false }),
            raw,
          };
          const w = this.waiters.shift();
          if (w) w(reply);
          else this.replies.push(reply);
        }
      });
      socket.on('close', () => (this.closed = true));
    }

    static connect(port: number): Promise<RawClient> {
      return new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          const c = new RawClient(s);
          sockets.push(c);
          resolve(c);
        });
        s.once('error', reject);
      });
    }

    next(): Promise<Reply> {
      const r = this.replies.shift();
      if (r) return Promise.resolve(r);
      return new Promise((resolve) => this.waiters.push(resolve));
    }

    get pending(): number {
      return this.replies.length;
    }

    static header(len: number, opCode: number): { b: Buffer; id: number } {
      const id = RawClient.nextId++;
      const b = Buffer.alloc(16);
      b.writeInt32LE(len, 0);
      b.writeInt32LE(id, 4);
      b.writeInt32LE(0, 8);
      b.writeInt32LE(opCode, 12);
      return { b, id };
    }

    static opQuery(ns: string, query: Document, flags = 0): { msg: Buffer; id: number } {
      const doc = Buffer.from(BSON.serialize(query));
      const nsb = Buffer.from(ns + '\0', 'utf8');
      const body = Buffer.alloc(4 + nsb.length + 8);
      body.writeInt32LE(flags, 0);
      nsb.copy(body, 4);
      body.writeInt32LE(0, 4 + nsb.length);
      body.writeInt32LE(-1, 8 + nsb.length);
      const { b, id } = RawClient.header(16 + body.length + doc.length, 2004);
      return { msg: Buffer.concat([b, body, doc]), id };
    }

    static opMsg(
      body: Document,
      opts: { flags?: number; sequences?: [string, Document[]][]; checksum?: boolean } = {},
    ): { msg: Buffer; id: number } {
      const parts: Buffer[] = [];
      const flags = Buffer.alloc(4);
      flags.writeUInt32LE((opts.flags ?? 0) | (opts.checksum ? 1 : 0), 0);
      parts.push(flags, Buffer.from([0]), Buffer.from(BSON.serialize(body)));
      for (const [name, docs] of opts.sequences ?? []) {
        const payload = Buffer.concat([
          Buffer.from(name + '\0', 'utf8'),
          ...docs.map((d) => Buffer.from(BSON.serialize(d))),
        ]);
        const size = Buffer.alloc(4);
        size.writeInt32LE(4 + payload.length, 0);
        parts.push(Buffer.from([1]), size, payload);
      }
      if (opts.checksum) parts.push(Buffer.alloc(4));
      const rest = Buffer.concat(parts);
      const { b, id } = RawClient.header(16 + rest.length, 2013);
      return { msg: Buffer.concat([b, rest]), id };
    }

    async call(m: { msg: Buffer; id: number }): Promise<Reply> {
      this.socket.write(m.msg);
      const r = await this.next();
      expect(r.responseTo).toBe(m.id);
      return r;
    }
  }

  beforeAll(async () => {
    server = new MongoWireServer();
    await server.start();
  });

  afterAll(async () => {
    for (const s of sockets) s.socket.destroy();
    await server.stop();
  });

  it('answers the legacy OP_QUERY ismaster handshake with OP_REPLY', async () => {
    const c = await RawClient.connect(server.port);
    const r = await c.call(
      RawClient.opQuery(
        'admin.$cmd',
        { ismaster: 1, helloOk: true, client: { driver: { name: 'raw' } }, compression: ['zstd'] },
        4,
      ),
    );
    expect(r.opCode).toBe(1);
    expect(r.raw.readInt32LE(32)).toBe(1); // numberReturned
    expect(r.body).toMatchObject({ ok: 1, ismaster: true, helloOk: true, maxWireVersion: 25, minWireVersion: 0 });
    expect(r.body.compression).toBeUndefined();
    expect(r.body.topologyVersion).toBeUndefined();
  });

  it('routes every OP_QUERY on <db>.$cmd through the dispatcher (old drivers)', async () => {
    const c = await RawClient.connect(server.port);
    const ins = await c.call(
      RawClient.opQuery('legacy.$cmd', {
        insert: 'things',
        documents: [
          { _id: 1, v: 'a' },
          { _id: 2, v: 'b' },
        ],
      }),
    );
    expect(ins.opCode).toBe(1);
    expect(ins.body).toEqual({ n: 2, ok: 1 });
    const find = await c.call(
      RawClient.opQuery('legacy.$cmd', {
        $query: { find: 'things', filter: { _id: 2 } },
        $readPreference: { mode: 'primary' },
      }),
    );
    expect(find.body.cursor.firstBatch).toEqual([{ _id: 2, v: 'b' }]);
    const fam = await c.call(
      RawClient.opQuery('legacy.$cmd', {
        findandmodify: 'things',
        query: { _id: 1 },
        update: { $set: { v: 'z' } },
        new: true,
      }),
    );
    expect(fam.body.value).toEqual({ _id: 1, v: 'z' });
    const count = await c.call(RawClient.opQuery('legacy.$cmd', { count: 'things', query: {} }));
    expect(count.body).toEqual({ n: 2, ok: 1 });
    const unknown = await c.call(RawClient.opQuery('legacy.$cmd', { nope: 1 }));
    expect(unknown.body).toMatchObject({ ok: 0, code: 59, codeName: 'CommandNotFound' });
  });

  it('merges OP_MSG kind-1 document sequences into the command', async () => {
    const c = await RawClient.connect(server.port);
    const ins = await c.call(
      RawClient.opMsg(
        { insert: 'seq', $db: 'wire' },
        { sequences: [['documents', [{ _id: 1 }, { _id: 2 }, { _id: 3 }]]] },
      ),
    );
    expect(ins.opCode).toBe(2013);
    expect(ins.body).toEqual({ n: 3, ok: 1 });
    const upd = await c.call(
      RawClient.opMsg(
        { update: 'seq', $db: 'wire' },
        {
          sequences: [
            [
              'updates',
              [
                { q: { _id: 1 }, u: { $set: { a: 1 } } },
                { q: { _id: 9 }, u: { $set: { a: 9 } }, upsert: true },
              ],
            ],
          ],
        },
      ),
    );
    expect(upd.body).toEqual({ n: 2, nModified: 1, upserted: [{ index: 1, _id: 9 }], ok: 1 });
    const del = await c.call(
      RawClient.opMsg(
        { delete: 'seq', $db: 'wire' },
        { sequences: [['deletes', [{ q: { _id: 2 }, limit: 1 }]]], checksum: true },
      ),
    );
    expect(del.body).toEqual({ n: 1, ok: 1 });
    const find = await c.call(RawClient.opMsg({ find: 'seq', filter: {}, $db: 'wire' }));
    expect(find.body.cursor.firstBatch.map((d: Document) => d._id)).toEqual([1, 3, 9]);
    expect(Long.isLong(find.body.cursor.id)).toBe(true);
    expect(find.body.cursor.ns).toBe('wire.seq');
  });

  it('sends no reply for moreToCome requests', async () => {
    const c = await RawClient.connect(server.port);
    const fire = RawClient.opMsg(
      { insert: 'fire', documents: [{ x: 1 }], writeConcern: { w: 0 }, $db: 'wire' },
      { flags: 2 },
    );
    c.socket.write(fire.msg);
    c.socket.write(RawClient.opMsg({ endSessions: [], $db: 'admin' }, { flags: 2 }).msg);
    const ping = RawClient.opMsg({ ping: 1, $db: 'admin' });
    const r = await c.call(ping);
    expect(r.body).toEqual({ ok: 1 });
    expect(c.pending).toBe(0);
    const count = await c.call(RawClient.opMsg({ count: 'fire', $db: 'wire' }));
    expect(count.body.n).toBe(1);
  });

  it('copes with fragmented and pipelined messages and command names in any case', async () => {
    const c = await RawClient.connect(server.port);
    const a = RawClient.opMsg({ PING: 1, $db: 'admin' });
    const b = RawClient.opMsg({
      findAndModify: 'frag',
      query: { k: 1 },
      update: { $inc: { n: 1 } },
      upsert: true,
      new: true,
      $db: 'wire',
    });
    const all = Buffer.concat([a.msg, b.msg]);
    for (let i = 0; i < all.length; i += 7) c.socket.write(all.subarray(i, i + 7));
    const r1 = await c.next();
    const r2 = await c.next();
    expect(r1.responseTo).toBe(a.id);
    expect(r1.body).toEqual({ ok: 1 });
    expect(r2.responseTo).toBe(b.id);
    expect(r2.body.value).toMatchObject({ k: 1, n: 1 });
    expect(r2.body.lastErrorObject.updatedExisting).toBe(false);
  });

  it('closes connections that send unsupported opcodes', async () => {
    const c = await RawClient.connect(server.port);
    const { b } = RawClient.header(20, 2002);
    c.socket.write(Buffer.concat([b, Buffer.alloc(4)]));
    await new Promise<void>((resolve) => (c.closed ? resolve() : c.socket.once('close', () => resolve())));
    expect(c.closed).toBe(true);
  });

  it('destroys client sockets on stop()', async () => {
    const other = new MongoWireServer();
    await other.start();
    const c = await RawClient.connect(other.port);
    const closed = new Promise<void>((resolve) => c.socket.once('close', () => resolve()));
    await other.stop();
    await closed;
    expect(c.closed).toBe(true);
  });
});

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { MongoWireServer } from '../src';
import { Binary, Decimal128, Double, Int32, Long, MongoClient, MongoServerError, ObjectId, Timestamp } from 'mongodb';

/** The server sources transpiled once to plain JS (no build needed, no per-process transpile). */
function transpileServer(): string {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mongo-wire-js-'));
  const src = path.join(__dirname, '..', 'src');
  for (const f of fs.readdirSync(src)) {
    if (!f.endsWith('.ts')) continue;
    const js = ts.transpileModule(fs.readFileSync(path.join(src, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: f,
    });
    fs.writeFileSync(path.join(out, f.replace(/\.ts$/, '.js')), js.outputText);
  }
  return out;
}

/** The CLI as a real process. */
class CliProcess {
  static jsDir = '';
  readonly exited: Promise<number | null>;
  stdout = '';
  stderr = '';
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  static spawn(args: string[]): CliProcess {
    // Where bson and mingo are installed (hoisted to the workspace root's node_modules, or the package's own).
    const nodeModules = path.resolve(require.resolve('mingo/package.json'), '../..');
    return new CliProcess(
      spawn(process.execPath, [path.join(CliProcess.jsDir, 'cli.js'), ...args], {
        env: { ...process.env, NODE_PATH: nodeModules },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  }

  /** Resolves with the port once the ready line is printed; rejects if the process exits first. */
  ready(): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = /listening at mongodb:\/\/127\.0\.0\.1:(\d+)\n/.exec(this.stdout);
        if (m) resolve(Number(m[1]));
      };
      this.child.stdout!.on('data', check);
      check();
      void this.exited.then((code) => reject(new Error(`cli exited (${code}) before ready: ${this.stderr}`)));
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }
}

/** Documents with any _id type. */
type AnyDoc = { _id?: ObjectId | string | number; [key: string]: unknown };

async function withClient<T>(port: number, fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, {
    serverSelectionTimeoutMS: 5000,
  });
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Everything a restart must preserve, as exact bytes / specs. */
async function dump(client: MongoClient): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const { databases } = await client.db('admin').admin().listDatabases();
  for (const { name } of databases.sort((a, b) => a.name.localeCompare(b.name))) {
    const db = client.db(name);
    for (const info of (await db.listCollections().toArray()).sort((a, b) => a.name.localeCompare(b.name))) {
      const coll = db.collection(info.name);
      out[`${name}.${info.name}`] = {
        options: (info as { options?: unknown }).options,
        indexes: await coll.listIndexes().toArray(),
        // Raw BSON in natural order: byte equality covers every type distinction.
        docs: (await coll.find({}, { raw: true }).toArray()).map((b) =>
          Buffer.from(b as unknown as Buffer).toString('hex'),
        ),
      };
    }
  }
  return out;
}

describe('mongo-wire: --dbpath keeps data across a clean stop / restart', () => {
  let root: string;
  const running: CliProcess[] = [];
  const start = async (args: string[]): Promise<{ cli: CliProcess; port: number }> => {
    const cli = CliProcess.spawn(args);
    running.push(cli);
    return { cli, port: await cli.ready() };
  };

  beforeAll(() => {
    CliProcess.jsDir = transpileServer();
  });
  afterAll(() => fs.rmSync(CliProcess.jsDir, { recursive: true, force: true }));
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'mongo-wire-dbpath-'));
  });
  afterEach(async () => {
    for (const cli of running.splice(0)) if (cli.child.exitCode === null) await cli.stop('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('restores documents (exact BSON types), collections and indexes; unique indexes still reject duplicates', async () => {
    const dir = path.join(root, 'missing', 'db'); // created on start
    const first = await start(['--port', '0', '--dbpath', dir]);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    const port = first.port;

    const oid = new ObjectId();
    const before = await withClient(port, async (client) => {
      const db = client.db('rerun');
      const tasks = db.collection<AnyDoc>('tasks');
      await tasks.createIndex({ email: 1 }, { unique: true });
      await tasks.createIndex({ status: 1, created: -1 }, { name: 'status_created' });
      await tasks.createIndex({ 'leases.worker': 1 }, { sparse: true });
      await tasks.createIndex({ expires: 1 }, { expireAfterSeconds: 3600 });
      await tasks.createIndex({ score: 1 }, { partialFilterExpression: { score: { $gt: 5 } } });
      await tasks.insertMany([
        {
          _id: oid,
          email: 'a@example.org',
          status: 'Queued',
          created: new Date('2026-01-02T03:04:05.678Z'),
          int: new Int32(7),
          integralDouble: new Double(7),
          double: 1.25,
          long: Long.fromString('9007199254740993'),
          smallLong: Long.fromNumber(3),
          decimal: Decimal128.fromString('1234.5678901234567890'),
          binary: new Binary(Buffer.from([0, 1, 2, 255]), 0),
          uuid: new Binary(Buffer.alloc(16, 7), 4),
          ts: new Timestamp({ t: 1700000000, i: 3 }),
          nested: { deep: [[1, [2, new Double(3)]], { x: [null, { y: Long.fromNumber(-4) }] }], empty: [] },
          leases: [{ worker: 'w1', until: new Date(0) }],
          'dotted.key': 1,
          nothing: null,
        },
        { _id: 'second', email: 'b@example.org', status: 'Paused', created: new Date(1), score: 9 },
        { _id: 3, email: 'c@example.org', status: 'Queued', created: new Date(2), score: 1 },
      ]);
      await tasks.updateOne({ _id: 3 }, { $inc: { counter: Long.fromNumber(5) } as never });
      const items = db.collection('taskitems');
      await items.createIndex({ taskId: 1, seq: 1 }, { unique: true });
      await items.insertMany(Array.from({ length: 50 }, (_, i) => ({ taskId: oid, seq: i, body: 'x'.repeat(i) })));
      await items.deleteOne({ seq: 10 });
      await db.createCollection('empty');
      await db.createCollection('capped', { capped: true, size: 8192, max: 3 });
      await client.db('other').collection<AnyDoc>('weird/name.x').insertOne({ _id: 1, v: 'kept' });
      return dump(client);
    });
    expect(Object.keys(before)).toEqual(
      expect.arrayContaining(['rerun.tasks', 'rerun.taskitems', 'rerun.empty', 'rerun.capped', 'other.weird/name.x']),
    );

    expect(await first.cli.stop('SIGTERM')).toBe(0);
    expect(fs.existsSync(path.join(dir, 'snapshot.json'))).toBe(true);

    const second = await start(['--port', String(port), '--dbpath', dir]);
    expect(second.port).toBe(port);
    await withClient(port, async (client) => {
      expect(await dump(client)).toEqual(before);
      const tasks = client.db('rerun').collection<AnyDoc>('tasks');
      const dup = await tasks.insertOne({ email: 'a@example.org' }).catch((e: unknown) => e);
      expect(dup).toBeInstanceOf(MongoServerError);
      expect((dup as MongoServerError).code).toBe(11000);
      expect((dup as MongoServerError).message).toMatch(/index: email_1 dup key/);
      const items = client.db('rerun').collection('taskitems');
      const dupItem = await items.insertOne({ taskId: oid, seq: 3 }).catch((e: unknown) => e);
      expect((dupItem as MongoServerError).code).toBe(11000);
      expect(await items.insertOne({ taskId: oid, seq: 10 })).toMatchObject({ acknowledged: true });
      // The compound index answers lookups after the restart.
      const plan = await items.find({ taskId: oid, seq: 4 }).explain();
      expect(JSON.stringify(plan.queryPlanner.winningPlan)).toContain('taskId_1_seq_1');
      expect(await items.findOne({ taskId: oid, seq: 4 })).toMatchObject({ body: 'xxxx' });
    });

    // Changes made after the restart survive the next stop / start too.
    expect(await second.cli.stop('SIGINT')).toBe(0);
    const third = await start(['--port', String(port), '--dbpath', dir]);
    await withClient(third.port, async (client) => {
      expect(await client.db('rerun').collection('taskitems').countDocuments()).toBe(50);
    });
  }, 30_000);

  it('ignores partial temp files left by an interrupted save and removes them at the next save', async () => {
    const dir = path.join(root, 'db');
    const first = await start(['--port', '0', '--dbpath', dir]);
    await withClient(first.port, (c) =>
      c
        .db('d')
        .collection<AnyDoc>('c')
        .insertMany([{ _id: 1 }, { _id: 2 }]),
    );
    expect(await first.cli.stop()).toBe(0);

    // What a crash in the middle of the next save would leave behind.
    fs.writeFileSync(path.join(dir, 'snapshot.json.tmp'), '{"format":"mongo-wire-snap');
    fs.mkdirSync(path.join(dir, 'snapshot-99.tmp', 'd'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'snapshot-99.tmp', 'd', 'c.bson'), Buffer.from([0x30, 0, 0, 0, 7]));

    const second = await start(['--port', '0', '--dbpath', dir]);
    await withClient(second.port, async (c) => {
      expect(await c.db('d').collection<AnyDoc>('c').find().toArray()).toEqual([{ _id: 1 }, { _id: 2 }]);
    });
    expect(await second.cli.stop()).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['snapshot-100', 'snapshot.json']);
  }, 30_000);

  it('refuses to start (non-zero exit, clear message) on an unreadable snapshot, and leaves it untouched', async () => {
    const dir = path.join(root, 'db');
    const first = await start(['--port', '0', '--dbpath', dir]);
    await withClient(first.port, (c) => c.db('d').collection<AnyDoc>('c').insertOne({ _id: 1, v: 'precious' }));
    expect(await first.cli.stop()).toBe(0);

    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'snapshot.json'), 'utf8')) as { dir: string };
    const bsonFile = path.join(dir, manifest.dir, 'd', 'c.bson');
    const good = fs.readFileSync(bsonFile);
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length - 3] ^= 0xff;
    fs.writeFileSync(bsonFile, corrupt);

    const broken = CliProcess.spawn(['--port', '0', '--dbpath', dir]);
    running.push(broken);
    expect(await broken.exited).not.toBe(0);
    expect(broken.stdout).toBe('');
    expect(broken.stderr).toContain(`cannot load the snapshot in ${dir}`);
    expect(broken.stderr).toContain(`${bsonFile} is corrupt`);
    expect(fs.readFileSync(bsonFile)).toEqual(corrupt);

    fs.writeFileSync(path.join(dir, 'snapshot.json'), 'not json');
    const garbled = CliProcess.spawn(['--port', '0', '--dbpath', dir]);
    running.push(garbled);
    expect(await garbled.exited).not.toBe(0);
    expect(garbled.stderr).toMatch(/snapshot\.json is not valid JSON/);
  }, 30_000);

  it('--syncdelay saves periodically, so a SIGKILL loses at most that much', async () => {
    const dir = path.join(root, 'db');
    const first = await start(['--port', '0', '--dbpath', dir, '--syncdelay', '0.2']);
    await withClient(first.port, (c) => c.db('d').collection<AnyDoc>('c').insertOne({ _id: 1, v: 'periodic' }));
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(path.join(dir, 'snapshot.json')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await first.cli.stop('SIGKILL');

    const second = await start(['--port', '0', '--dbpath', dir]);
    await withClient(second.port, async (c) => {
      expect(await c.db('d').collection<AnyDoc>('c').findOne({ _id: 1 })).toEqual({ _id: 1, v: 'periodic' });
    });
  }, 30_000);

  it('save(dir) / load(dir) move all data between two in-process servers', async () => {
    const a = new MongoWireServer();
    const b = new MongoWireServer();
    await a.start();
    await b.start();
    try {
      await withClient(a.port, async (c) => {
        await c.db('d').collection('c').createIndex({ k: 1 }, { unique: true });
        await c
          .db('d')
          .collection<AnyDoc>('c')
          .insertMany([
            { _id: 1, k: 'x' },
            { _id: 2, k: 'y' },
          ]);
      });
      const dir = path.join(root, 'explicit');
      expect(await a.save(dir)).toMatchObject({ databases: 1, collections: 1, documents: 2 });
      await withClient(b.port, (c) => c.db('other').collection<AnyDoc>('gone').insertOne({ _id: 1 }));
      expect(b.load(dir)).toMatchObject({ documents: 2 });
      await withClient(b.port, async (c) => {
        expect((await c.db().admin().listDatabases()).databases.map((d) => d.name)).toEqual(['d']);
        expect(await c.db('d').collection('c').find().toArray()).toEqual([
          { _id: 1, k: 'x' },
          { _id: 2, k: 'y' },
        ]);
        expect((await c.db('d').collection('c').listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_', 'k_1']);
      });
      expect(b.load(path.join(root, 'nothing-here'))).toBeNull();
      await withClient(b.port, async (c) => expect(await c.db('d').collection('c').countDocuments()).toBe(2));
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

/**
 * TCP front end: framing, opcode routing, connection bookkeeping, lifecycle.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { BSON } from 'bson';
import { CLOSE_CONNECTION, ConnectionInfo, Dispatcher } from './commands';
import { errorReply, toWireError } from './errors';
import { EngineStats, Storage } from './engine';
import { ReplicaSetMember, StepDownOptions } from './replica-set';
import { captureSnapshot, loadSnapshot, SnapshotSummary, writeSnapshot } from './snapshot';
import { MongoDBVersion, serverVersion } from './versions';
import {
  encodeOpMsg,
  encodeOpReply,
  MAX_MESSAGE_SIZE,
  OP_MSG,
  OP_QUERY,
  parseOpMsg,
  parseOpQuery,
  readHeader,
} from './wire';

export interface MongoWireServerOptions {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0 = a free port). */
  port?: number;
  /** Receives one line per lifecycle event (listening, connections, protocol errors). */
  log?: (line: string) => void;
  /**
   * Directory for durable data: loaded by start() when it holds a snapshot (created when missing),
   * saved by stop() and every `syncDelaySeconds`. Without it the data lives in memory only.
   */
  dbPath?: string;
  /** With dbPath: seconds between periodic saves when something changed (default 60, 0 = off). */
  syncDelaySeconds?: number;
  /**
   * Register the test-only command configureFailPoint (its `failCommand` fail point), as mongod's
   * `--setParameter enableTestCommands=1` does. Off by default (then "no such command", 59).
   */
  enableTestCommands?: boolean;
  /**
   * Replica-set mode (`--replSet NAME`): the server is the primary of a one-member replica set of
   * this name (hello reports setName, hosts, electionId...; `uri()` adds `replicaSet=NAME`). It
   * accepts retryable writes and can step down (`stepDown()`, `replSetStepDown`). See README.md.
   */
  replSet?: string;
  /**
   * With replSet: the member's `host:port` listed in hello's `hosts` / `me` / `primary`, which
   * drivers connect to (default: `host:port`, or this machine's hostname when listening on
   * 0.0.0.0 / ::, as mongod's `rs.initiate()`).
   */
  replSetMember?: string;
  /**
   * The MongoDB release announced (hello maxWireVersion, buildInfo, featureCompatibilityVersion)
   * and served: what it lacks is refused with its errors (versions.ts). Default '8.0'. '3.6' and
   * '4.0' only announce themselves (drivers 6.x refuse them) and otherwise behave as 4.2.
   * Anything else: the constructor throws.
   */
  mongodbVersion?: MongoDBVersion;
  /**
   * Memory limit (bytes) of a blocking sort (one no index provides) in find / findAndModify /
   * update: default 32 MiB up to 4.2 (internalQueryExecMaxBlockingSortBytes), 100 MiB from 4.4
   * (internalQueryMaxBlockingSortMemoryUsageBytes). Also settable with the setParameter command.
   */
  maxBlockingSortBytes?: number;
  /** Memory limit (bytes) of an aggregation `$sort` no index provides (default 100 MiB). */
  maxAggregationSortBytes?: number;
}

const HOUSEKEEPING_MS = 5000;
export const DEFAULT_SYNC_DELAY_SECONDS = 60;

export class MongoWireServer {
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly log: (line: string) => void;
  private readonly dispatcher: Dispatcher;
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private boundPort = 0;
  private nextConnectionId = 1;
  readonly dbPath: string | null;
  private readonly syncDelayMs: number;
  private syncTimer: NodeJS.Timeout | null = null;
  /** Set once dbPath was loaded (or found empty): never save over a snapshot that failed to load. */
  private dbPathReady = false;
  private savedAtWrites = 0;
  private saving: Promise<unknown> = Promise.resolve();
  /** Replica-set mode: the member (null for a standalone). */
  private readonly member: ReplicaSetMember | null;
  private readonly replSetMember: string | null;
  /** Test hook: command name → how many more executed commands lose their reply. */
  private readonly lostReplies = new Map<string, number>();

  constructor(options: MongoWireServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.requestedPort = options.port ?? 0;
    this.log = options.log ?? (() => undefined);
    this.replSetMember = options.replSetMember ?? null;
    this.member =
      options.replSet !== undefined
        ? new ReplicaSetMember({
            name: options.replSet,
            // The served release: NotMaster / NotWritablePrimary names, labels, connection closing.
            version: serverVersion(options.mongodbVersion).behaves,
            member: () => this.memberAddress(),
            closeConnections: () => this.dropConnections(),
            log: this.log,
          })
        : null;
    this.dispatcher = new Dispatcher({
      enableTestCommands: options.enableTestCommands === true,
      replSet: this.member ?? undefined,
      mongodbVersion: options.mongodbVersion,
      maxBlockingSortBytes: options.maxBlockingSortBytes,
      maxAggregationSortBytes: options.maxAggregationSortBytes,
    });
    this.dbPath = options.dbPath ?? null;
    const delay = options.syncDelaySeconds ?? DEFAULT_SYNC_DELAY_SECONDS;
    if (!(delay >= 0)) throw new Error(`invalid syncDelaySeconds: ${delay}`);
    this.syncDelayMs = delay * 1000;
  }

  /**
   * Resolves once the server is listening. With dbPath, first loads the snapshot found there
   * (rejects, without listening, when it cannot be read).
   */
  async start(): Promise<void> {
    if (this.server) return;
    if (this.dbPath !== null && !this.dbPathReady) {
      try {
        fs.mkdirSync(this.dbPath, { recursive: true });
        // Fail now rather than losing the data at the first save.
        fs.accessSync(this.dbPath, fs.constants.W_OK);
      } catch (e) {
        throw new Error(`cannot use dbPath ${this.dbPath}: ${(e as Error).message}`, { cause: e });
      }
      const loaded = this.load(this.dbPath);
      this.log(
        loaded
          ? `loaded ${loaded.documents} document(s) in ${loaded.collections} collection(s) from ${loaded.dir}`
          : `no snapshot in ${this.dbPath}: starting empty`,
      );
      this.dbPathReady = true;
    }
    await this.listen(this.boundPort || this.requestedPort);
    if (this.dbPath !== null && this.syncDelayMs > 0 && !this.syncTimer) {
      this.syncTimer = setInterval(() => {
        if (this.dispatcher.writes === this.savedAtWrites) return;
        this.save().catch((e: Error) => this.log(`periodic save failed: ${e.message}`));
      }, this.syncDelayMs);
      this.syncTimer.unref();
    }
    if (!this.timer) {
      this.timer = setInterval(() => {
        try {
          const n = this.dispatcher.housekeeping();
          if (n) this.log(`ttl: removed ${n} expired document(s)`);
        } catch (e) {
          this.log(`housekeeping failed: ${(e as Error).message}`);
        }
      }, HOUSEKEEPING_MS);
      this.timer.unref();
    }
  }

  /** The MongoDB release announced and served (the mongodbVersion option). */
  get mongodbVersion(): MongoDBVersion {
    return this.dispatcher.version.release;
  }

  get port(): number {
    return this.boundPort;
  }

  uri(dbName?: string): string {
    if (this.member)
      return `mongodb://${this.memberAddress()}/${dbName ?? ''}?replicaSet=${encodeURIComponent(this.member.name)}`;
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `mongodb://${host}:${this.boundPort}/${dbName ?? ''}?directConnection=true`;
  }

  /** Replica-set mode: the set name (null for a standalone). */
  get replSetName(): string | null {
    return this.member?.name ?? null;
  }

  /** Replica-set mode: whether the member is the primary now (a standalone: always true). */
  get isPrimary(): boolean {
    return this.member ? this.member.isPrimary : true;
  }

  /**
   * Replica-set mode: step down for `seconds` (fractions allowed), as `{replSetStepDown: seconds,
   * force: true}`: a secondary at once (writes 10107, primary reads 13435), elected again with a
   * greater electionId when the period ends. Client connections stay open (MongoDB 4.2+) unless
   * `closeConnections`. Throws on a standalone, and (10107) when already stepped down.
   */
  stepDown(seconds: number, options: StepDownOptions = {}): void {
    if (!this.member) throw new Error('stepDown(): not in replica-set mode (replSet option)');
    this.member.stepDown(seconds, options);
  }

  /** Replica-set mode: end a step-down now (elected in a new term); no-op on the primary. */
  stepUp(): void {
    if (!this.member) throw new Error('stepUp(): not in replica-set mode (replSet option)');
    this.member.stepUp();
  }

  /**
   * Test hook: the next `times` commands named `command` (e.g. 'insert') are executed, then their
   * connection is closed instead of answering: a write acknowledged by the server whose reply the
   * client never gets (the case retryable writes exist for).
   */
  loseReplies(command: string, times = 1): void {
    if (times > 0) this.lostReplies.set(command.toLowerCase(), times);
    else this.lostReplies.delete(command.toLowerCase());
  }

  /** Replica-set mode: this member's host:port as announced in hello. */
  private memberAddress(): string {
    if (this.replSetMember !== null) return this.replSetMember;
    const wildcard = this.host === '0.0.0.0' || this.host === '::' || this.host === '';
    const host = wildcard ? os.hostname() : this.host;
    return `${host.includes(':') ? `[${host}]` : host}:${this.boundPort}`;
  }

  /** Destroy every client connection, keep listening (a step-down on MongoDB 4.0 and older). */
  private dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Closes the listener and destroys every client socket, then saves to dbPath if any; idempotent. */
  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    if (this.syncTimer) {
      clearInterval(this.syncTimer);
      this.syncTimer = null;
    }
    this.member?.close();
    await this.closeListener();
    if (this.dbPath !== null && this.dbPathReady) await this.save();
  }

  /**
   * Write a consistent snapshot of all data to `dir` (default: dbPath), atomically: the previous
   * snapshot stays current until the new one is complete. Saves are serialized.
   */
  save(dir: string | null = this.dbPath): Promise<SnapshotSummary> {
    if (dir === null) return Promise.reject(new Error('save(): no directory given and no dbPath'));
    if (dir === this.dbPath && !this.dbPathReady)
      return Promise.reject(new Error(`save(): ${dir} was not loaded; refusing to overwrite it`));
    const run = async (): Promise<SnapshotSummary> => {
      // Captured synchronously: no command runs in between, so the snapshot is one point in time.
      const writes = this.dispatcher.writes;
      const summary = await writeSnapshot(dir, captureSnapshot(this.dispatcher.storage));
      if (dir === this.dbPath) this.savedAtWrites = writes;
      this.log(`saved ${summary.documents} document(s) in ${summary.collections} collection(s) to ${summary.dir}`);
      return summary;
    };
    const next = this.saving.then(run, run);
    this.saving = next.catch(() => undefined);
    return next;
  }

  /**
   * Replace all data by the snapshot in `dir`; returns null (data unchanged) when `dir` holds
   * none. Throws when the snapshot is unreadable, leaving the data unchanged.
   */
  load(dir: string): SnapshotSummary | null {
    const fresh = new Storage(this.dispatcher.stats);
    let summary: SnapshotSummary | null;
    try {
      summary = loadSnapshot(dir, fresh);
    } catch (e) {
      throw new Error(`cannot load the snapshot in ${dir}: ${(e as Error).message}`, { cause: e });
    }
    if (!summary) return null;
    const dbs = this.dispatcher.storage.dbs;
    dbs.clear();
    for (const [name, colls] of fresh.dbs) dbs.set(name, colls);
    this.savedAtWrites = this.dispatcher.writes;
    return summary;
  }

  /** Stop listening and drop every connection, keeping the data and the port (fault tests). */
  async pause(): Promise<void> {
    await this.closeListener();
  }

  /** Listen again on the same port after pause(). */
  async resume(): Promise<void> {
    if (this.server) return;
    await this.listen(this.boundPort || this.requestedPort);
  }

  /** Debug counters: documents examined, index lookups vs collection scans. */
  get stats(): Readonly<EngineStats> {
    return { ...this.dispatcher.stats };
  }

  resetStats(): void {
    this.dispatcher.stats.docsExamined = 0;
    this.dispatcher.stats.indexLookups = 0;
    this.dispatcher.stats.collectionScans = 0;
  }

  /** Run the TTL reaper now (it also runs periodically); returns the number of documents removed. */
  reapExpired(now = Date.now()): number {
    return this.dispatcher.housekeeping(now);
  }

  /** Number of open client connections. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((s) => this.onConnection(s));
      const onError = (e: Error): void => reject(e);
      srv.once('error', onError);
      srv.listen(port, this.host, () => {
        srv.off('error', onError);
        srv.on('error', (e) => this.log(`listener error: ${e.message}`));
        this.server = srv;
        this.boundPort = (srv.address() as net.AddressInfo).port;
        this.log(`listening on ${this.host}:${this.boundPort}`);
        resolve();
      });
    });
  }

  private closeListener(): Promise<void> {
    const srv = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (!srv) return Promise.resolve();
    return new Promise((resolve) => srv.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    if (!this.server) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    const conn: ConnectionInfo = {
      id: this.nextConnectionId++,
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
    };
    const counters = this.dispatcher.connections;
    counters.current++;
    counters.totalCreated++;
    socket.setNoDelay(true);
    let chunks: Buffer[] = [];
    let buffered = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      buffered += chunk.length;
      while (buffered >= 4) {
        let head = chunks[0];
        if (head.length < 4) {
          head = Buffer.concat(chunks, buffered);
          chunks = [head];
        }
        const len = head.readInt32LE(0);
        if (len < 16 || len > MAX_MESSAGE_SIZE + 65536) {
          this.log(`connection ${conn.id}: invalid message length ${len}, closing`);
          socket.destroy();
          return;
        }
        if (buffered < len) break;
        let msg: Buffer;
        if (head.length >= len) {
          msg = head.subarray(0, len);
          if (head.length === len) chunks.shift();
          else chunks[0] = head.subarray(len);
        } else {
          const all = Buffer.concat(chunks, buffered);
          msg = all.subarray(0, len);
          chunks = all.length > len ? [all.subarray(len)] : [];
        }
        buffered -= len;
        this.handleMessage(socket, conn, msg);
        if (socket.destroyed) return;
      }
    });
    socket.on('error', (e) => this.log(`connection ${conn.id}: ${e.message}`));
    socket.on('close', () => {
      this.sockets.delete(socket);
      counters.current--;
    });
  }

  /** Whether this executed command's reply is to be lost (loseReplies), counting it down. */
  private loseReply(name: string | undefined): boolean {
    const key = (name ?? '').toLowerCase();
    const left = this.lostReplies.get(key);
    if (left === undefined) return false;
    if (left <= 1) this.lostReplies.delete(key);
    else this.lostReplies.set(key, left - 1);
    return true;
  }

  private handleMessage(socket: net.Socket, conn: ConnectionInfo, msg: Buffer): void {
    const header = readHeader(msg);
    let reply: Buffer | null = null;
    try {
      if (header.opCode === OP_MSG) {
        const cmd = parseOpMsg(msg);
        const name = Object.keys(cmd.body)[0];
        const out = this.dispatcher.run(cmd.body, { db: cmd.db, anns: cmd.anns, conn });
        if (out === CLOSE_CONNECTION || (this.lostReplies.size && this.loseReply(name))) {
          socket.destroy();
          return;
        }
        if (!cmd.moreToCome) reply = encodeOpMsg(header.requestId, out);
      } else if (header.opCode === OP_QUERY) {
        const cmd = parseOpQuery(msg);
        const name = Object.keys(cmd.body)[0];
        // OP_QUERY flags bit 2: secondaryOk (slaveOk), a read may run on a secondary.
        const secondaryOk = (msg.readInt32LE(16) & 4) !== 0;
        const out = this.dispatcher.run(cmd.body, { db: cmd.db, anns: cmd.anns, conn, secondaryOk });
        if (out === CLOSE_CONNECTION || (this.lostReplies.size && this.loseReply(name))) {
          socket.destroy();
          return;
        }
        reply = encodeOpReply(header.requestId, out);
      } else {
        this.log(`connection ${conn.id}: unsupported opCode ${header.opCode}, closing`);
        socket.destroy();
        return;
      }
    } catch (e) {
      const err = BSON.serialize(errorReply(toWireError(e)));
      reply = header.opCode === OP_QUERY ? encodeOpReply(header.requestId, err, 2) : encodeOpMsg(header.requestId, err);
    }
    if (reply && !socket.destroyed) socket.write(reply);
  }
}

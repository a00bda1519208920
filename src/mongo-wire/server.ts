/**
 * TCP front end: framing, opcode routing, connection bookkeeping, lifecycle.
 */
import * as net from 'node:net';
import { BSON } from 'bson';
import { ConnectionInfo, Dispatcher } from './commands';
import { errorReply, toWireError } from './errors';
import { EngineStats } from './engine';
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
}

const HOUSEKEEPING_MS = 5000;

export class MongoWireServer {
  private readonly host: string;
  private readonly requestedPort: number;
  private readonly log: (line: string) => void;
  private readonly dispatcher = new Dispatcher();
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;
  private timer: NodeJS.Timeout | null = null;
  private boundPort = 0;
  private nextConnectionId = 1;

  constructor(options: MongoWireServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.requestedPort = options.port ?? 0;
    this.log = options.log ?? (() => undefined);
  }

  /** Resolves once the server is listening. */
  async start(): Promise<void> {
    if (this.server) return;
    await this.listen(this.boundPort || this.requestedPort);
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

  get port(): number {
    return this.boundPort;
  }

  uri(dbName?: string): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `mongodb://${host}:${this.boundPort}/${dbName ?? ''}?directConnection=true`;
  }

  /** Closes the listener and destroys every client socket; idempotent. */
  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    await this.closeListener();
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

  private handleMessage(socket: net.Socket, conn: ConnectionInfo, msg: Buffer): void {
    const header = readHeader(msg);
    let reply: Buffer | null = null;
    try {
      if (header.opCode === OP_MSG) {
        const cmd = parseOpMsg(msg);
        const out = this.dispatcher.run(cmd.body, { db: cmd.db, anns: cmd.anns, conn });
        if (!cmd.moreToCome) reply = encodeOpMsg(header.requestId, out);
      } else if (header.opCode === OP_QUERY) {
        const cmd = parseOpQuery(msg);
        reply = encodeOpReply(header.requestId, this.dispatcher.run(cmd.body, { db: cmd.db, anns: cmd.anns, conn }));
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

import { once } from 'node:events';
import http, { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Db, ObjectId } from 'mongodb';

/**
 * A stand-in for OpenHIM core's rerun endpoint (rerun.httpPort): a real HTTP server that records
 * every request and, like core, stores the child transaction (`parentID` = the original) when the
 * request arrives, pushes its id into the original's `childIDs`, and answers with
 * `X-OpenHIM-TransactionID`. What the database holds before (transactions, tasks) is made by
 * ./database-fixtures.ts.
 */

export interface StubRequest {
  /** Arrival order (0, 1, ...). */
  index: number;
  /** How many requests the connection carried before this one (keep-alive reuse). */
  onConnection: number;
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Header names exactly as sent. */
  rawHeaderNames: string[];
  body: string;
  arrivedAt: number;
  /** When the stub answered, or the connection closed before it did (unset while in flight). */
  finishedAt?: number;
  /** Whether the answer was written (false: the connection closed first, e.g. the sender died). */
  answered?: boolean;
  taskId?: string;
  parentId?: string;
  childId?: string;
}

export interface StubBehaviour {
  latencyMs?: number;
  /** HTTP status of the answer (default 200; `unavailable`: 503). */
  status?: number;
  /**
   * `reset`: the connection is destroyed at once, nothing stored; `hang`: child stored, never answered;
   * `stall`: read but neither stored nor answered (core overloaded before it got to storing);
   * `unavailable`: `status` (503) with nothing stored and no X-OpenHIM-TransactionID (core's database
   * away); `async`: 202, child Pending Async; `closed`: the server had closed the (keep-alive)
   * connection before reading the request: destroyed, not recorded, nothing stored.
   */
  mode?: 'answer' | 'reset' | 'hang' | 'stall' | 'unavailable' | 'async' | 'closed';
  /**
   * `answer` only: the child is stored (and finalised from `status`) but the answer carries no
   * X-OpenHIM-TransactionID, as core 8.5 answers when the channel's primary route is down (its
   * router's 500), when a mediator's answer has no such header, or when its rerun authorisation
   * refuses the request (401/404).
   */
  withoutTransactionId?: boolean;
  /**
   * The `taskID` stored on the child: none by default (core 4.0.5's schema drops it); core 8.5 may
   * keep the `taskID` header's value (pass it, or another task's id, as an ObjectId or a string).
   */
  childTaskId?: ObjectId | string;
  /**
   * With `withoutTransactionId`: the answer goes out first and the child is stored this long after
   * it (a write core's database acknowledged late).
   */
  childStoredAfterMs?: number;
}

export type BehaviourRule = StubBehaviour | ((request: StubRequest) => StubBehaviour);

/** OpenHIM core's final status of a transaction from its route's HTTP status. */
export function coreStatus(httpStatus: number): string {
  if (httpStatus >= 200 && httpStatus < 300) return 'Successful';
  if (httpStatus >= 500) return 'Failed';
  return 'Completed';
}

export class OpenhimCoreStub {
  readonly requests: StubRequest[] = [];
  private rule: BehaviourRule = {};
  private readonly inFlight = new Map<string, number>();
  private readonly maxInFlightByTask = new Map<string, number>();
  private inFlightNow = 0;
  private maxInFlightAll = 0;
  private readonly sockets = new Set<import('node:net').Socket>();
  private readonly writes = new Set<Promise<unknown>>();
  private readonly perSocket = new WeakMap<import('node:net').Socket, number>();

  private constructor(
    private readonly server: http.Server,
    private readonly db: Db,
  ) {}

  /** On a free port, or on `port` (a test that first saw that port refuse connections). */
  static async start(db: Db, port = 0): Promise<OpenhimCoreStub> {
    const server = http.createServer();
    const stub = new OpenhimCoreStub(server, db);
    server.on('request', (req, res) =>
      stub.handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end('stub could not store the transaction');
      }),
    );
    server.on('connection', (socket) => {
      stub.sockets.add(socket);
      socket.once('close', () => stub.sockets.delete(socket));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return stub;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  behave(rule: BehaviourRule): void {
    this.rule = rule;
  }

  forTask(taskId: string): StubRequest[] {
    return this.requests.filter((request) => request.taskId === taskId);
  }

  /** The highest number of requests of the task that were in flight at once. */
  maxInFlight(taskId: string): number {
    return this.maxInFlightByTask.get(taskId) ?? 0;
  }

  /** Requests in flight now, of every task. */
  get inFlightOverall(): number {
    return this.inFlightNow;
  }

  /** The highest number of requests, of every task, in flight at once since the last reset. */
  get maxInFlightOverall(): number {
    return this.maxInFlightAll;
  }

  resetMaxInFlightOverall(): void {
    this.maxInFlightAll = this.inFlightNow;
  }

  /** Requests of the task that core accepted: it stored their child transaction. */
  acceptedByTid(taskId: string): Map<string, number> {
    return countByTid(this.forTask(taskId).filter((request) => request.childId));
  }

  /** How many times each tid (parentID) reached the stub for the task. */
  countsByTid(taskId: string): Map<string, number> {
    return countByTid(this.forTask(taskId));
  }

  /** Finishes a child left Pending Async (core's async channels do this later). */
  async completeAsync(childId: string, status = 'Successful'): Promise<void> {
    await this.db.collection('transactions').updateOne({ _id: new ObjectId(childId) }, { $set: { status } });
  }

  /** Waits for the stub's own database writes (children, childIDs). */
  async settled(): Promise<void> {
    while (this.writes.size) await Promise.all([...this.writes]);
  }

  /** Resets every open connection (requests in flight get no answer). */
  async dropConnections(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.settled();
  }

  private served(socket: import('node:net').Socket): number {
    const count = this.perSocket.get(socket) ?? 0;
    this.perSocket.set(socket, count + 1);
    return count;
  }

  /** A database write that survives a short MongoDB outage (core would retry or fail the request). */
  private track<T>(write: () => Promise<T>): Promise<T> {
    const attempt = async (): Promise<T> => {
      for (let tries = 1; ; tries++) {
        try {
          return await write();
        } catch (error) {
          if ((error as { code?: number }).code === 11000) return undefined as T; // stored before the connection broke
          if (tries >= 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    };
    const written = attempt();
    this.writes.add(written);
    void written.finally(() => this.writes.delete(written)).catch(() => undefined);
    return written;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const arrivedAt = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const header = (name: string) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const request: StubRequest = {
      index: this.requests.length,
      onConnection: this.served(req.socket),
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaderNames: req.rawHeaders.filter((_, i) => i % 2 === 0),
      body: Buffer.concat(chunks).toString('utf8'),
      arrivedAt,
      taskId: header('taskid'),
      parentId: header('parentid'),
    };
    const behaviour = typeof this.rule === 'function' ? this.rule(request) : this.rule;
    if (behaviour.mode === 'closed') {
      req.socket.destroy();
      return;
    }
    this.requests.push(request);
    const key = request.taskId ?? '';
    const now = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, now);
    this.maxInFlightByTask.set(key, Math.max(now, this.maxInFlight(key)));
    this.inFlightNow++;
    this.maxInFlightAll = Math.max(this.maxInFlightAll, this.inFlightNow);
    let done = false;
    const finished = (answered: boolean) => {
      if (done) return;
      done = true;
      request.finishedAt = Date.now();
      request.answered = answered;
      this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
      this.inFlightNow--;
    };
    res.once('finish', () => finished(true));
    res.once('close', () => finished(false));

    if (behaviour.mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (behaviour.mode === 'stall') return;
    if (behaviour.mode === 'unavailable') {
      res.writeHead(behaviour.status ?? 503, { 'content-type': 'text/plain' }).end('database unavailable');
      return;
    }
    if (behaviour.withoutTransactionId && behaviour.childStoredAfterMs !== undefined) {
      const status = behaviour.status ?? 200;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`rerun of ${request.parentId ?? '?'}`);
      const later = new Promise((resolve) => setTimeout(resolve, behaviour.childStoredAfterMs)).then(() =>
        this.storeChild(request, req, behaviour, arrivedAt, status),
      );
      this.writes.add(later);
      void later.finally(() => this.writes.delete(later)).catch(() => undefined);
      return;
    }
    // Like core: a request whose child cannot be stored fails (500, no X-OpenHIM-TransactionID) and
    // is never routed, so only a stored child makes the request count as accepted (childId).
    const childId = await this.storeChild(request, req, behaviour, arrivedAt);
    if (behaviour.mode === 'hang') return;
    if (behaviour.latencyMs) await new Promise((resolve) => setTimeout(resolve, behaviour.latencyMs));
    const status = behaviour.mode === 'async' ? 202 : (behaviour.status ?? 200);
    if (behaviour.mode !== 'async') await this.finalise(childId, status);
    await this.linkToParent(request, childId);
    if (res.destroyed) return;
    res.writeHead(status, {
      ...(behaviour.withoutTransactionId ? {} : { 'X-OpenHIM-TransactionID': request.childId }),
      'content-type': 'text/plain',
    });
    res.end(`rerun of ${request.parentId ?? '?'}`);
  }

  /** Stores the child as core does when the request arrives (final at once with `finalStatus`). */
  private async storeChild(
    request: StubRequest,
    req: http.IncomingMessage,
    behaviour: StubBehaviour,
    arrivedAt: number,
    finalStatus?: number,
  ): Promise<ObjectId> {
    const childId = new ObjectId();
    const [path, query] = request.url.split('?');
    await this.track(() =>
      this.db.collection('transactions').insertOne({
        _id: childId,
        parentID:
          request.parentId && ObjectId.isValid(request.parentId) ? new ObjectId(request.parentId) : request.parentId,
        ...(behaviour.childTaskId !== undefined ? { taskID: behaviour.childTaskId } : {}),
        status: behaviour.mode === 'async' ? 'Pending Async' : 'Processing',
        canRerun: true,
        request: {
          method: request.method,
          path,
          querystring: query ?? '',
          headers: escapeKeys(req.headers),
          body: request.body,
          timestamp: new Date(arrivedAt),
        },
      }),
    );
    request.childId = childId.toHexString();
    if (finalStatus !== undefined) {
      await this.finalise(childId, finalStatus);
      await this.linkToParent(request, childId);
    }
    return childId;
  }

  private async finalise(childId: ObjectId, status: number): Promise<void> {
    await this.track(() =>
      this.db
        .collection('transactions')
        .updateOne(
          { _id: childId },
          { $set: { status: coreStatus(status), response: { status, timestamp: new Date() } } },
        ),
    );
  }

  private async linkToParent(request: StubRequest, childId: ObjectId): Promise<void> {
    if (!request.parentId || !ObjectId.isValid(request.parentId)) return;
    await this.track(() =>
      this.db
        .collection('transactions')
        .updateOne({ _id: new ObjectId(request.parentId) }, { $push: { childIDs: childId } } as never),
    );
  }
}

function countByTid(requests: StubRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const request of requests) counts.set(request.parentId!, (counts.get(request.parentId!) ?? 0) + 1);
  return counts;
}

/** Core stores header names with `.` and `$` escaped (MongoDB keys). */
function escapeKeys(headers: IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.replace(/\./g, '\uFF0E').replace(/\$/g, '\uFF04'), value]),
  );
}

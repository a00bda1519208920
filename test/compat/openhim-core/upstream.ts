import { once } from 'node:events';
import http, { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface UpstreamRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * The service behind OpenHIM core's channel: records every request it receives and answers 200
 * with a small JSON body, after `latencyMs` (a slow upstream makes a worker kill land mid-task).
 */
export class Upstream {
  readonly requests: UpstreamRequest[] = [];
  latencyMs = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<Upstream> {
    const server = http.createServer();
    const upstream = new Upstream(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.once('end', () => {
        upstream.requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        });
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"received":true}');
        }, upstream.latencyMs);
      });
    });
    server.on('connection', (socket) => {
      upstream.sockets.add(socket);
      socket.once('close', () => upstream.sockets.delete(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return upstream;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** How many times each body arrived. */
  countsByBody(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const request of this.requests) counts.set(request.body, (counts.get(request.body) ?? 0) + 1);
    return counts;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

import { once } from 'node:events';
import net from 'node:net';

export interface TcpExchange {
  received: string;
  arrivedAt: number;
}

/**
 * A TCP service as a tcp/tls channel's upstream: reads until the client half-closes, answers
 * `reply(received)` and ends the socket.
 */
export class TcpStub {
  readonly exchanges: TcpExchange[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    private reply: (received: string) => string,
  ) {}

  static async start(reply: (received: string) => string = (received) => `ACK ${received}`): Promise<TcpStub> {
    const server = net.createServer({ allowHalfOpen: true });
    const stub = new TcpStub(server, reply);
    server.on('connection', (socket) => stub.handle(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return stub;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      const received = Buffer.concat(chunks).toString('utf8');
      this.exchanges.push({ received, arrivedAt: Date.now() });
      socket.end(this.reply(received));
    });
    socket.on('error', () => undefined);
  }
}

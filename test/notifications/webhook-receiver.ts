import { createServer, IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A webhook request as the receiver got it: the raw body, as sent. */
export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** When it arrived (ms). */
  at: number;
}

/** An HTTP status to answer, or `hold`: never answer (the request stays open until the receiver closes). */
export type Answer = number | 'hold';
/** How a path answers the `nth` request (1-based) of one event id. */
export type Behaviour = (nth: number, request: ReceivedWebhook) => Answer;

/**
 * A real HTTP receiver for the notification tests, on 127.0.0.1 and a free port: it records every
 * request and answers per path (200 unless told otherwise).
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly held = new Set<ServerResponse>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<WebhookReceiver> {
    const server = createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const received: ReceivedWebhook = {
          path: request.url ?? '/',
          headers: request.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: Date.now(),
        };
        receiver.received.push(received);
        const nth = receiver.forEvent(String(request.headers['x-webhook-id']), received.path).length;
        const answer = (receiver.behaviours.get(received.path) ?? (() => 200))(nth, received);
        if (answer === 'hold') {
          receiver.held.add(response);
          response.on('close', () => receiver.held.delete(response));
          return;
        }
        response.writeHead(answer, { 'content-type': 'text/plain' }).end(answer < 300 ? 'ok' : 'receiver says no');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  behave(path: string, behaviour: Behaviour): void {
    this.behaviours.set(path, behaviour);
  }

  reset(): void {
    this.behaviours.clear();
  }

  /** The requests of event `eventId` (its `X-Webhook-Id`), on `path` if given, in arrival order. */
  forEvent(eventId: string, path?: string): ReceivedWebhook[] {
    return this.received.filter(
      (request) => request.headers['x-webhook-id'] === eventId && (path === undefined || request.path === path),
    );
  }

  async close(): Promise<void> {
    for (const response of this.held) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import http from 'node:http';
import net from 'node:net';
import { AppConfig } from '../../config/app-config';
import { HttpRerunRequest } from './rerun-request';
import { TransactionsForEngine, TransactionsRepository } from '../../database/repositories/transactions.repository';

export type SendResult =
  /** An HTTP answer (any status), or the end of a TCP exchange (status undefined). */
  | { kind: 'answered'; status?: number; statusMessage?: string; rerunId?: string }
  /** Not answered: refused, reset, timed out. `reached`: false when no connection was ever made. */
  | { kind: 'error'; message: string; reached: boolean; staleConnection?: boolean }
  /** Cut short by this worker shutting down: the outcome is unknown. */
  | { kind: 'aborted' };

/**
 * Sends reruns: HTTP to OpenHIM core's rerun endpoint over keep-alive connections, or the raw body
 * over TCP for tcp/tls channels. Never throws; every exchange is bounded by RERUN_TIMEOUT_MS.
 */
@Injectable()
export class RerunSender implements OnApplicationShutdown {
  private readonly agent: http.Agent;

  constructor(
    private readonly config: AppConfig,
    @Inject(TransactionsRepository) private readonly transactions: TransactionsForEngine,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' });
  }

  /** After the processor's shutdown (onModuleDestroy) has let the lanes finish. */
  onApplicationShutdown(): void {
    this.agent.destroy();
  }

  /**
   * A keep-alive connection the server closed while idle (its keep-alive timeout; easily hit when
   * either process is starved of CPU) resets the request written onto it before the server read it:
   * such a rerun never reached core. It is sent once more on a new connection, unless core stored a
   * child for it after all (core stores the child when a request arrives).
   */
  async http(request: HttpRerunRequest, signal: AbortSignal): Promise<SendResult> {
    const startedAt = new Date();
    const result = await this.httpOnce(request, signal, this.agent);
    if (result.kind !== 'error' || !result.staleConnection) return result;
    const { parentID: parent, taskID: task } = request.headers;
    const child =
      typeof parent === 'string'
        ? await this.transactions
            .findChildSince(parent, startedAt, typeof task === 'string' ? task : undefined)
            .catch(() => 'unknown' as const)
        : 'unknown';
    if (child) return { kind: 'error', message: result.message, reached: true };
    return this.httpOnce(request, signal, false);
  }

  private httpOnce(request: HttpRerunRequest, signal: AbortSignal, agent: http.Agent | false): Promise<SendResult> {
    return this.exchange(signal, (finish) => {
      let answered = false;
      const req = http.request(
        {
          host: this.config.RERUN_HOST,
          port: this.config.RERUN_HTTP_PORT,
          method: request.method,
          path: request.path,
          headers: request.headers,
          agent,
        },
        (res) => {
          answered = true;
          const rerunId = res.headers['x-openhim-transactionid'];
          res.resume();
          res.once('end', () =>
            finish({
              kind: 'answered',
              status: res.statusCode,
              statusMessage: res.statusMessage,
              rerunId: Array.isArray(rerunId) ? rerunId[0] : rerunId || undefined,
            }),
          );
          res.once('error', (error) => finish(failure(error)));
        },
      );
      req.once('error', (error: NodeJS.ErrnoException) => {
        const stale = req.reusedSocket && !answered && STALE.has(error.code ?? '');
        finish(stale ? { ...failure(error), staleConnection: true } : failure(error));
      });
      req.end(request.body);
      return () => req.destroy();
    });
  }

  /** OpenHIM's tcp/tls rerun: the body to `host:port`; the answer is whatever comes until the socket ends. */
  tcp(host: string, port: number, body: string, signal: AbortSignal): Promise<SendResult> {
    return this.exchange(signal, (finish) => {
      const socket = net.connect({ host, port }, () => socket.end(body));
      socket.resume();
      socket.once('end', () => finish({ kind: 'answered' }));
      socket.once('error', (error) => finish(failure(error)));
      return () => socket.destroy();
    });
  }

  /** Runs one exchange with the timeout and the shutdown signal; `start` returns how to cut it. */
  private exchange(
    signal: AbortSignal,
    start: (finish: (result: SendResult) => void) => () => void,
  ): Promise<SendResult> {
    if (signal.aborted) return Promise.resolve({ kind: 'aborted' });
    return new Promise((resolve) => {
      let cut: () => void = () => undefined;
      let settled = false;
      const finish = (result: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const timeoutMs = this.config.RERUN_TIMEOUT_MS;
      const timer = setTimeout(() => {
        finish({ kind: 'error', message: `No answer within ${timeoutMs} ms (RERUN_TIMEOUT_MS)`, reached: true });
        cut();
      }, timeoutMs);
      const onAbort = () => {
        finish({ kind: 'aborted' });
        cut();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        cut = start(finish);
      } catch (error) {
        finish({ kind: 'error', message: (error as Error).message, reached: false });
      }
    });
  }
}

/** How a reused keep-alive connection that the server had closed fails. */
const STALE = new Set(['ECONNRESET', 'EPIPE']);

/** Errors that mean the request never reached anyone (so no child transaction can exist). */
const UNREACHED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function failure(error: NodeJS.ErrnoException): Extract<SendResult, { kind: 'error' }> {
  return { kind: 'error', message: error.message, reached: !UNREACHED.has(error.code ?? '') };
}

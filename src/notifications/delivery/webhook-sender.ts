import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SIGNATURE_HEADER, signWebhook, WEBHOOK_ID_HEADER } from '../webhook-signature';

/** How much of a refusing receiver's answer is kept in `lastError`. */
const ERROR_BODY_CHARS = 200;

export interface WebhookRequest {
  url: string;
  /** The event's id (`X-Webhook-Id`). */
  eventId: string;
  /** The serialised event: sent and signed as is. */
  body: string;
  secret: string;
  timeoutMs: number;
  /** Cuts the request (the worker is shutting down). */
  signal?: AbortSignal;
}

/**
 * POSTs one webhook: the body as stored, `content-type: application/json`, `X-Webhook-Id` and a
 * fresh `X-Webhook-Signature` (this attempt's time). Resolves on a 2xx answer; rejects with what
 * happened otherwise (another status, with the start of its body; a network error; no complete
 * answer within `timeoutMs`). Redirects are not followed (a 3xx is a failure).
 */
export function postWebhook(webhook: WebhookRequest): Promise<void> {
  const target = new URL(webhook.url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const body = Buffer.from(webhook.body, 'utf8');
  return new Promise<void>((resolve, reject) => {
    const request = send(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'user-agent': 'openhim-rerun-service',
          [WEBHOOK_ID_HEADER]: webhook.eventId,
          [SIGNATURE_HEADER]: signWebhook(body, webhook.secret),
        },
        signal: webhook.signal,
      },
      (response) => {
        const status = response.statusCode ?? 0;
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          if (text.length < ERROR_BODY_CHARS) text += chunk;
        });
        response.on('error', (error) => reject(error));
        response.on('end', () => {
          clearTimeout(timer);
          if (status >= 200 && status < 300) return resolve();
          const excerpt = text.trim().slice(0, ERROR_BODY_CHARS);
          reject(
            new Error(
              `answered ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}${excerpt ? `: ${excerpt}` : ''}`,
            ),
          );
        });
      },
    );
    const timer = setTimeout(
      () => request.destroy(new Error(`no answer within ${webhook.timeoutMs} ms (NOTIFY_TIMEOUT_MS)`)),
      webhook.timeoutMs,
    );
    request.on('close', () => clearTimeout(timer));
    request.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.name === 'AbortError' ? new Error('cut by the worker shutting down') : error),
    );
    request.end(body);
  });
}

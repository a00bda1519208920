import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, as Stripe signs its webhooks: the header
 * `X-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with WEBHOOK_SECRET>`.
 * A receiver recomputes the HMAC over the raw bytes it received (never over re-serialised JSON),
 * compares in constant time, and refuses a `t` too far from its clock (replays).
 */
export const SIGNATURE_HEADER = 'X-Webhook-Signature';
/** The event's id: the same on every attempt (receivers de-duplicate by it). */
export const WEBHOOK_ID_HEADER = 'X-Webhook-Id';
/** What `verifyWebhookSignature` accepts by default between `t` and the receiver's clock. */
export const DEFAULT_TOLERANCE_SEC = 300;

function hmacHex(timestamp: number | string, body: string | Buffer, secret: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** The `X-Webhook-Signature` value of `body` at `timestampSec` (now by default). */
export function signWebhook(
  body: string | Buffer,
  secret: string,
  timestampSec: number = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestampSec},v1=${hmacHex(timestampSec, body, secret)}`;
}

/**
 * Whether `header` (an `X-Webhook-Signature` value) signs `body` (the raw request body, as
 * received) with `secret`, with its `t` within `toleranceSec` of `nowMs`. Every `v1=` is tried (a
 * sender may list several, e.g. while a secret is changed); comparisons take constant time.
 */
export function verifyWebhookSignature(
  header: string | undefined,
  body: string | Buffer,
  secret: string,
  toleranceSec: number = DEFAULT_TOLERANCE_SEC,
  nowMs: number = Date.now(),
): boolean {
  if (!header || !secret) return false;
  const parts = header.split(',').map((part) => part.trim());
  const timestamp = parts.find((part) => part.startsWith('t='))?.slice(2);
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > toleranceSec) return false;
  const expected = Buffer.from(hmacHex(timestamp, body, secret), 'hex');
  return parts
    .filter((part) => part.startsWith('v1='))
    .map((part) => part.slice(3))
    .some((candidate) => /^[0-9a-f]{64}$/i.test(candidate) && timingSafeEqual(Buffer.from(candidate, 'hex'), expected));
}

import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhookSignature } from '../../src/notifications/webhook-signature';

const SECRET = 'a-webhook-secret-of-32-characters';
const BODY = '{"id":"0b6f3b4e-2c1f-4a57-9a43-7e1d0f3c2b9a","type":"task.completed","at":"2026-12-08T02:15:00.000Z"}';

describe('webhook signatures (Stripe scheme)', () => {
  const now = Date.UTC(2026, 11, 8, 2, 15);
  const t = Math.floor(now / 1000);

  it('signs "<t>.<raw body>" with HMAC-SHA256, hex, as t=<seconds>,v1=<hex>', () => {
    const expected = createHmac('sha256', SECRET).update(`${t}.${BODY}`).digest('hex');
    expect(signWebhook(BODY, SECRET, t)).toBe(`t=${t},v1=${expected}`);
    expect(signWebhook(Buffer.from(BODY), SECRET, t)).toBe(`t=${t},v1=${expected}`);
  });

  it('verifies its own signature, over a string or the raw bytes', () => {
    const header = signWebhook(BODY, SECRET, t);
    expect(verifyWebhookSignature(header, BODY, SECRET, 300, now)).toBe(true);
    expect(verifyWebhookSignature(header, Buffer.from(BODY), SECRET, 300, now)).toBe(true);
  });

  it('refuses another body, another secret, a t out of tolerance, and malformed headers', () => {
    const header = signWebhook(BODY, SECRET, t);
    expect(verifyWebhookSignature(header, BODY.replace('completed', 'failed'), SECRET, 300, now)).toBe(false);
    expect(verifyWebhookSignature(header, `${BODY} `, SECRET, 300, now)).toBe(false);
    expect(verifyWebhookSignature(header, BODY, 'another-secret-of-enough-length', 300, now)).toBe(false);
    expect(verifyWebhookSignature(header, BODY, SECRET, 300, now + 301000)).toBe(false);
    expect(verifyWebhookSignature(header, BODY, SECRET, 300, now - 301000)).toBe(false);
    expect(verifyWebhookSignature(header, BODY, SECRET, 600, now + 301000)).toBe(true);
    for (const bad of [undefined, '', 'v1=abc', `t=${t}`, `t=${t},v1=zz`, `t=x,${header.split(',')[1]}`]) {
      expect(verifyWebhookSignature(bad, BODY, SECRET, 300, now)).toBe(false);
    }
    expect(verifyWebhookSignature(header, BODY, '', 300, now)).toBe(false);
  });

  it('accepts any of several v1 signatures (a secret being changed)', () => {
    const old = signWebhook(BODY, 'the-previous-secret-0123456789', t).split(',')[1];
    const header = `${signWebhook(BODY, SECRET, t)},${old}`;
    expect(verifyWebhookSignature(header, BODY, SECRET, 300, now)).toBe(true);
    expect(verifyWebhookSignature(header, BODY, 'the-previous-secret-0123456789', 300, now)).toBe(true);
  });
});

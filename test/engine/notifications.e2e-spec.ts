import type { INestApplication } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import type { StoredNotification } from '../../src/database/schemas';
import type { NotificationInput } from '../../src/notifications/notification-event';
import { Notifier } from '../../src/notifications/notifier.service';
import { verifyWebhookSignature } from '../../src/notifications/webhook-signature';
import { WebhookReceiver } from '../notifications/webhook-receiver';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';
import { ensureBuilt, WorkerProcess } from '../support/worker-process';

const SECRET = 'notifications-e2e-secret-0123456789';
/** Short back-offs and timeouts, so that retries take a fraction of a second. */
const FAST = {
  WEBHOOK_SECRET: SECRET,
  NOTIFY_RETRY_DELAY_MS: '100',
  NOTIFY_TIMEOUT_MS: '1500',
  NOTIFY_RETRY_MS: '6000',
  WORKER_LEASE_MS: '1000',
  SWEEP_INTERVAL_MS: '300',
};

const newTaskId = () => new ObjectId().toHexString();

/** Emits an event about a new task; returns the notification once recorded. */
async function emitFor(
  env: TestEnvironment,
  notifier: Notifier,
  input: Partial<NotificationInput> = {},
): Promise<StoredNotification> {
  const taskId = newTaskId();
  notifier.emit({
    type: 'task.completed',
    task: {
      id: taskId,
      status: 'Completed',
      user: 'jane@example.org',
      totalTransactions: 3,
      remainingTransactions: 0,
      failed: 1,
    },
    ...input,
  });
  return waitFor(`notification of task ${taskId} recorded`, () =>
    env.db.collection<StoredNotification>('notifications').findOne({ taskId }),
  );
}

const read = (env: TestEnvironment, id: string) =>
  env.db
    .collection<StoredNotification>('notifications')
    .findOne({ _id: id })
    .then((found) => found!);

/** Waits until `accept` holds for the notification; returns it then. */
const waitForNotification = (
  env: TestEnvironment,
  id: string,
  what: string,
  accept: (notification: StoredNotification) => unknown,
  timeoutMs?: number,
) =>
  waitFor(
    what,
    async () => {
      const current = await read(env, id);
      return accept(current) ? current : undefined;
    },
    timeoutMs,
  );

describe('Notifications: webhook deliveries (API emits, worker delivers)', () => {
  let env: TestEnvironment;
  let receiver: WebhookReceiver;
  let api: INestApplication;
  let notifier: Notifier;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    receiver = await WebhookReceiver.start();
    const settings = { ...FAST, WEBHOOK_URLS: `${receiver.url('/a')}, ${receiver.url('/b')}` };
    ({ app: api } = await env.startApi(settings));
    await env.startWorker(settings);
    notifier = api.get(Notifier);
  });
  afterAll(async () => {
    await env?.stop();
    await receiver?.close();
  });
  afterEach(() => receiver.reset());

  it('delivers each event once to every URL: the exact body, a valid signature, its id', async () => {
    const notification = await emitFor(env, notifier);
    const done = await waitForNotification(env, notification._id, 'both deliveries delivered', (current) =>
      current.deliveries.every((delivery) => delivery.state === 'delivered'),
    );
    expect(done.deliveries).toEqual([
      expect.objectContaining({ kind: 'webhook', url: receiver.url('/a'), state: 'delivered', attempts: 1 }),
      expect.objectContaining({ kind: 'webhook', url: receiver.url('/b'), state: 'delivered', attempts: 1 }),
    ]);
    const { event } = notification;
    expect(notification.body).toBe(
      JSON.stringify({
        id: notification._id,
        type: 'task.completed',
        at: event.at,
        task: {
          id: notification.taskId,
          status: 'Completed',
          user: 'jane@example.org',
          totalTransactions: 3,
          remainingTransactions: 0,
          failed: 1,
        },
      }),
    );
    await sleep(300); // nothing more arrives
    for (const path of ['/a', '/b']) {
      const got = receiver.forEvent(notification._id, path);
      expect(got).toHaveLength(1);
      expect(got[0].body).toBe(notification.body);
      expect(got[0].headers['content-type']).toBe('application/json');
      expect(verifyWebhookSignature(String(got[0].headers['x-webhook-signature']), got[0].body, SECRET)).toBe(true);
      expect(
        verifyWebhookSignature(String(got[0].headers['x-webhook-signature']), got[0].body, 'a-wrong-secret-0123456'),
      ).toBe(false);
    }
  });

  it('retries a receiver that answers 500 three times, then 200: the same id and bytes each time, 4 attempts', async () => {
    receiver.behave('/a', (nth) => (nth <= 3 ? 500 : 200));
    const notification = await emitFor(env, notifier, { type: 'task.failed' });
    const done = await waitForNotification(
      env,
      notification._id,
      'the flaky delivery delivered',
      (current) => current.deliveries[0].state === 'delivered',
    );
    expect(done.deliveries[0]).toMatchObject({ state: 'delivered', attempts: 4 });
    expect(done.deliveries[0]).not.toHaveProperty('lastError');
    expect(done.deliveries[1]).toMatchObject({ state: 'delivered', attempts: 1 });
    const got = receiver.forEvent(notification._id, '/a');
    expect(got).toHaveLength(4);
    for (const request of got) {
      expect(request.body).toBe(notification.body);
      expect(request.headers['x-webhook-id']).toBe(notification._id);
      expect(verifyWebhookSignature(String(request.headers['x-webhook-signature']), request.body, SECRET)).toBe(true);
    }
    // Back-off: 100 ms, then 200, then 400 (each at least that long after the answer before).
    const gaps = got.slice(1).map((request, index) => request.at - got[index].at);
    gaps.forEach((gap, index) => expect(gap).toBeGreaterThanOrEqual(100 * 2 ** index - 10));
    process.stdout.write(`\n[notifications] 500, 500, 500, 200: delivered on attempt 4, gaps ${gaps.join(', ')} ms\n`);
  });

  it('a receiver that never answers stays pending and retrying, while the other URL is delivered at once', async () => {
    let answering = false;
    receiver.behave('/a', () => (answering ? 200 : 'hold'));
    const notification = await emitFor(env, notifier, { type: 'task.auto-paused', reason: 'downstream down' });
    const other = (
      await waitForNotification(
        env,
        notification._id,
        'the other URL delivered',
        (current) => current.deliveries[1].state === 'delivered',
      )
    ).deliveries[1];
    const otherMs = other.deliveredAt!.getTime() - notification.createdAt.getTime();
    expect(otherMs).toBeLessThan(1000);
    const stuck = (
      await waitForNotification(
        env,
        notification._id,
        'the silent receiver timed out once',
        (current) => current.deliveries[0].lastError,
      )
    ).deliveries[0];
    expect(stuck).toMatchObject({ state: 'pending', lastError: 'no answer within 1500 ms (NOTIFY_TIMEOUT_MS)' });
    expect(stuck.attempts).toBeGreaterThanOrEqual(1);
    expect(stuck.nextAttemptAt).toBeInstanceOf(Date);
    // Once it answers, the next attempt delivers it (same id).
    answering = true;
    const done = (
      await waitForNotification(
        env,
        notification._id,
        'the silent receiver delivered once it answers',
        (current) => current.deliveries[0].state === 'delivered',
      )
    ).deliveries[0];
    expect(done.attempts).toBeGreaterThanOrEqual(2);
    const got = receiver.forEvent(notification._id, '/a');
    expect(new Set(got.map((request) => request.body))).toEqual(new Set([notification.body]));
    process.stdout.write(
      `\n[notifications] silent receiver: the other URL delivered ${otherMs} ms after the event; ` +
        `the silent one delivered on attempt ${done.attempts} once it answered\n`,
    );
  });

  it('gives a delivery up NOTIFY_RETRY_MS after its event, and records why', async () => {
    receiver.behave('/a', () => 503);
    const notification = await emitFor(env, notifier, {
      type: 'breaker.opened',
      channel: { id: newTaskId(), name: 'FHIR', failures: 20 },
    });
    const gaveUp = (
      await waitForNotification(
        env,
        notification._id,
        'the delivery given up',
        (current) => current.deliveries[0].state === 'given-up',
        15000,
      )
    ).deliveries[0];
    expect(gaveUp.givenUpAt!.getTime() - notification.createdAt.getTime()).toBeGreaterThanOrEqual(6000);
    expect(gaveUp.lastError).toMatch(
      /^answered 503 Service Unavailable: receiver says no \(given up: NOTIFY_RETRY_MS = 6000 ms/,
    );
    expect(gaveUp.attempts).toBe(receiver.forEvent(notification._id, '/a').length);
  }, 30000);
});

describe('Notifications: emit', () => {
  let env: TestEnvironment;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await env?.stop();
    await receiver?.close();
  });

  it('costs the caller microseconds (the insert and the add are not awaited); every event is delivered', async () => {
    const settings = { ...FAST, WEBHOOK_URLS: receiver.url('/bulk') };
    const { app } = await env.startApi(settings);
    await env.startWorker(settings);
    const notifier = app.get(Notifier);
    const events = 200;
    const started = process.hrtime.bigint();
    for (let index = 0; index < events; index++) {
      notifier.emit({ type: 'task.started', task: { id: newTaskId(), status: 'Processing' } });
    }
    const emitUs = Number(process.hrtime.bigint() - started) / 1000 / events;
    const emittedAt = Date.now();
    await waitFor('every event delivered', async () => {
      const delivered = await env.db.collection('notifications').countDocuments({ 'deliveries.state': 'delivered' });
      return delivered === events;
    });
    const deliveredMs = Date.now() - emittedAt;
    expect(new Set(receiver.received.map((request) => request.headers['x-webhook-id'])).size).toBe(events);
    expect(receiver.received).toHaveLength(events);
    process.stdout.write(
      `\n[notifications] emit: ${emitUs.toFixed(1)} µs per call (${events} events); all delivered ${deliveredMs} ms later\n`,
    );
  });

  it('writes nothing when there is nowhere to deliver (no WEBHOOK_URLS, no e-mail)', async () => {
    const { app } = await env.startApi({});
    const taskId = newTaskId();
    app.get(Notifier).emit({ type: 'task.created', task: { id: taskId }, notify: ['ops'] });
    await sleep(300);
    expect(await env.db.collection('notifications').countDocuments({ taskId })).toBe(0);
  });
});

describe('Notifications: a worker process killed mid-delivery', () => {
  let env: TestEnvironment;
  let receiver: WebhookReceiver;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    env = await TestEnvironment.start();
    receiver = await WebhookReceiver.start();
  }, 180000);
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.kill('SIGKILL')));
    await env?.stop();
    await receiver?.close();
  });

  it('does not lose the event: after a new worker starts, it is delivered, with the same id and body', async () => {
    const settings = { ...FAST, NOTIFY_TIMEOUT_MS: '3000', WEBHOOK_URLS: receiver.url('/k'), LOG_LEVEL: 'warn' };
    receiver.behave('/k', (nth) => (nth === 1 ? 'hold' : 200));
    const { app } = await env.startApi(settings); // emits only: no processors in the API role
    const first = await WorkerProcess.start(env, settings);
    workers.push(first);
    const notification = await emitFor(env, app.get(Notifier), { type: 'task.cancelled', user: 'jane@example.org' });
    await waitFor('the first attempt to reach the receiver', () => receiver.forEvent(notification._id).length === 1);
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    const second = await WorkerProcess.start(env, settings);
    workers.push(second);
    const done = (
      await waitForNotification(
        env,
        notification._id,
        'the event delivered by the new worker',
        (current) => current.deliveries[0].state === 'delivered',
        20000,
      )
    ).deliveries[0];
    const recoveredMs = Date.now() - killedAt;
    expect(done.attempts).toBe(2);
    const got = receiver.forEvent(notification._id);
    expect(got).toHaveLength(2);
    for (const request of got) {
      expect(request.body).toBe(notification.body);
      expect(verifyWebhookSignature(String(request.headers['x-webhook-signature']), request.body, SECRET)).toBe(true);
    }
    process.stdout.write(`\n[notifications] worker SIGKILLed mid-delivery: delivered again ${recoveredMs} ms later\n`);
  }, 60000);
});

describe('Notifications: e-mail deliveries to OpenHIM contact groups', () => {
  let env: TestEnvironment;
  let smtp: SMTPServer;
  let notifier: Notifier;
  /** Accepted messages: their recipient. */
  const mailed: string[] = [];
  /** Recipients whose next message the SMTP server refuses (451, temporary). */
  const refuseOnce = new Set<string>();

  beforeAll(async () => {
    env = await TestEnvironment.start();
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          const to = session.envelope.rcptTo.map((rcpt) => rcpt.address).join(',');
          if (refuseOnce.delete(to)) {
            return callback(Object.assign(new Error('try again later'), { responseCode: 451 }));
          }
          mailed.push(to);
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    await env.db.collection('contactgroups').insertOne({
      group: 'ops',
      users: [
        { user: 'first@example.org', method: 'email', maxAlerts: 'no max' },
        { user: 'second@example.org', method: 'email', maxAlerts: 'no max' },
        { user: '+27831234567', method: 'sms', maxAlerts: 'no max' },
      ],
    });
    const settings = {
      ...FAST,
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
      EMAIL_FROM: 'openhim@example.org',
      NOTIFY_GROUPS: 'ops',
    };
    const { app } = await env.startApi(settings);
    await env.startWorker(settings);
    notifier = app.get(Notifier);
  });
  afterAll(async () => {
    await env?.stop();
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
  });

  it('mails the default groups (NOTIFY_GROUPS); an SMTP failure is retried without mailing anyone twice', async () => {
    refuseOnce.add('second@example.org');
    const notification = await emitFor(env, notifier, { type: 'task.completed' });
    expect(notification.deliveries).toEqual([
      { kind: 'email', groups: ['ops'], state: 'pending', attempts: 0, sent: [], skipped: [] },
    ]);
    const done = (
      await waitForNotification(
        env,
        notification._id,
        'the e-mails delivered',
        (current) => current.deliveries[0].state === 'delivered',
      )
    ).deliveries[0];
    expect(done).toMatchObject({
      kind: 'email',
      attempts: 2,
      sent: ['first@example.org', 'second@example.org'],
      skipped: [{ user: '+27831234567', reason: expect.stringMatching(/SMS/i) }],
    });
    expect(done).not.toHaveProperty('lastError');
    expect(mailed.filter((to) => to === 'first@example.org')).toHaveLength(1);
    expect(mailed.filter((to) => to === 'second@example.org')).toHaveLength(1);
  });

  it("a task's own notify list wins over the defaults; an empty one sends no e-mail (and writes nothing here)", async () => {
    const taskId = newTaskId();
    notifier.emit({ type: 'task.created', task: { id: taskId }, notify: [] });
    await sleep(300);
    expect(await env.db.collection('notifications').countDocuments({ taskId })).toBe(0);
    const named = await emitFor(env, notifier, { type: 'task.started', notify: ['ops', 'ops'] });
    expect(named.deliveries).toEqual([expect.objectContaining({ kind: 'email', groups: ['ops'] })]);
  });
});

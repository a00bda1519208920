import { Module, type DynamicModule, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { ConfigError, loadConfig, type AppConfig } from '../../src/config/app-config';
import { ConfigModule } from '../../src/config/config.module';
import { DatabaseModule } from '../../src/database/database.module';
import { ALERT_LOG_COLLECTION } from '../../src/database/schemas';
import type { NotificationEvent } from '../../src/notifications/notification-event';
import {
  EMAIL_NOT_CONFIGURED,
  EmailNotifications,
  type SkippedRecipient,
} from '../../src/notifications/email/email-notifications.service';
import { SMS_NOT_SUPPORTED } from '../../src/notifications/email/recipients';
import { TestEnvironment } from '../support/test-environment';

/**
 * E-mail notifications end to end: OpenHIM contact groups in the embedded MongoDB-compatible server,
 * a real SMTP server (smtp-server) in the test, the service's EmailNotifications with its real
 * repositories and nodemailer.
 */

interface Received {
  from: string;
  to: string[];
  raw: string;
  /** The raw message with quoted-printable soft breaks and escapes undone. */
  decoded: string;
  subject: string;
}

interface TestSmtp {
  port: number;
  received: Received[];
  close(): Promise<void>;
}

type SmtpError = Error & { responseCode: number };
const smtpError = (responseCode: number, message: string): SmtpError =>
  Object.assign(new Error(message), { responseCode });

async function startSmtp(options: Partial<SMTPServerOptions> = {}): Promise<TestSmtp> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const decoded = raw
          .replace(/=\r?\n/g, '')
          .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          raw,
          decoded,
          subject: /^Subject: (.*)$/m.exec(raw)?.[1] ?? '',
        });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.server.address() as AddressInfo).port,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** EmailNotifications with the service's config and database modules, as the worker has them. */
async function emailNotifications(config: AppConfig): Promise<INestApplicationContext> {
  @Module({})
  class EmailTestModule {
    static forRoot(): DynamicModule {
      return {
        module: EmailTestModule,
        imports: [ConfigModule.forRoot(config), DatabaseModule.forRoot(config)],
        providers: [EmailNotifications],
      };
    }
  }
  return NestFactory.createApplicationContext(EmailTestModule.forRoot(), { logger: false });
}

const TASK_ID = '5bb777777bbb66cc5d4444ee';
let sequence = 0;
function completed(): NotificationEvent {
  sequence += 1;
  return {
    id: `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`,
    type: 'task.completed',
    at: new Date().toISOString(),
    task: {
      id: TASK_ID,
      status: 'Completed',
      user: 'root@openhim.org',
      totalTransactions: 3,
      remainingTransactions: 0,
      failed: 1,
    },
  };
}

/** `deliver`, recording the `onSent` calls. */
async function deliver(
  email: EmailNotifications,
  event: NotificationEvent,
  groups: string[],
  alreadySent: string[] = [],
): Promise<{ sent: string[]; skipped?: SkippedRecipient[]; error?: Error }> {
  const sent: string[] = [];
  try {
    const { skipped } = await email.deliver(event, groups, new Set(alreadySent), async (address) => {
      sent.push(address);
    });
    return { sent, skipped };
  } catch (error) {
    return { sent, error: error as Error };
  }
}

describe('e-mail notifications to OpenHIM contact groups', () => {
  let env: TestEnvironment;
  let smtp: TestSmtp;
  const contexts: INestApplicationContext[] = [];

  async function start(overrides: Record<string, string> = {}): Promise<EmailNotifications> {
    const context = await emailNotifications(
      env.config({
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(smtp.port),
        EMAIL_FROM: 'OpenHIM <openhim@example.org>',
        HIM_INSTANCE: 'him.test',
        CONSOLE_URL: 'https://console.example.org/',
        ...overrides,
      }),
    );
    contexts.push(context);
    return context.get(EmailNotifications);
  }

  beforeAll(async () => {
    env = await TestEnvironment.start();
    smtp = await startSmtp();
    // As core stores them (its ContactGroup model: collection contactgroups).
    await env.db.collection('contactgroups').insertMany([
      {
        group: 'ops',
        users: [
          { user: 'alice@example.org', method: 'email', maxAlerts: 'no max' },
          { user: '+27821234567', method: 'sms', maxAlerts: 'no max' },
          { user: 'bob@example.org', method: 'email', maxAlerts: 'no max' },
        ],
        __v: 0,
      },
      {
        group: 'dev',
        users: [
          { user: 'Alice@Example.org', method: 'email', maxAlerts: 'no max' },
          { user: 'carol@example.org', method: 'email', maxAlerts: '1 per hour' },
        ],
        __v: 0,
      },
      { group: 'night', users: [{ user: 'dave@example.org', method: 'email', maxAlerts: '1 per day' }], __v: 0 },
      {
        group: 'many',
        users: ['m1', 'm2', 'm3', 'm4'].map((name) => ({
          user: `${name}@example.org`,
          method: 'email',
          maxAlerts: 'no max',
        })),
        __v: 0,
      },
      {
        group: 'mixed',
        users: [
          { user: 'gone@example.org', method: 'email' },
          { user: 'erin@example.org', method: 'email' },
        ],
        __v: 0,
      },
    ]);
  });

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await smtp?.close();
    await env?.stop();
  });

  beforeEach(() => {
    smtp.received.length = 0;
  });

  it('mails each member of two groups once (addresses compared without case), skipping SMS members', async () => {
    const email = await start();
    expect(email.configured).toBe(true);
    const event = completed();
    const { sent, skipped, error } = await deliver(email, event, ['ops', 'dev']);
    expect(error).toBeUndefined();
    expect(sent).toEqual(['alice@example.org', 'bob@example.org', 'carol@example.org']);
    expect(skipped).toEqual([{ user: '+27821234567', reason: SMS_NOT_SUPPORTED }]);
    expect(smtp.received.map((mail) => mail.to)).toEqual([
      ['alice@example.org'],
      ['bob@example.org'],
      ['carol@example.org'],
    ]);

    const [alice] = smtp.received;
    expect(alice.from).toBe('openhim@example.org');
    expect(alice.subject).toBe(`[him.test] Task ${TASK_ID} completed (1 failed)`);
    expect(alice.raw).toMatch(/^Content-Type: multipart\/alternative/m);
    expect(alice.raw).toMatch(/^Content-Type: text\/plain/m);
    expect(alice.raw).toMatch(/^Content-Type: text\/html/m);
    expect(alice.raw).toMatch(/^Auto-Submitted: auto-generated/m);
    expect(alice.raw).toMatch(new RegExp(`^X-OpenHIM-Event-Id: ${event.id}\r?$`, 'mi')); // header names: any case
    expect(alice.decoded).toContain(`https://console.example.org/#!/tasks/${TASK_ID}`);
    expect(alice.decoded).toContain(`<a href="https://console.example.org/#!/tasks/${TASK_ID}">`);
    expect(alice.decoded).toContain('finished rerunning 3 transactions; 1 ended failed');
    expect(alice.decoded).toContain('a member of the OpenHIM contact groups ops, dev.');

    // One alert log entry per address mailed, marked sent.
    const entries = await env.db.collection(ALERT_LOG_COLLECTION).find({ eventId: event.id }).toArray();
    expect(entries.map((entry) => [entry.user, entry.state]).sort()).toEqual([
      ['alice@example.org', 'sent'],
      ['bob@example.org', 'sent'],
      ['carol@example.org', 'sent'],
    ]);
  });

  it("honours maxAlerts '1 per hour' across deliveries: the second within the hour skips that member", async () => {
    const email = await start();
    const first = await deliver(email, completed(), ['dev']);
    // carol was mailed by the previous test (same hour) too: use a fresh member for a clean count.
    await env.db.collection('contactgroups').updateOne({ group: 'dev' }, {
      $push: { users: { user: 'frank@example.org', method: 'email', maxAlerts: '1 per hour' } },
    } as never);
    const second = await deliver(email, completed(), ['dev']);
    const third = await deliver(email, completed(), ['dev']);
    expect(first.sent).toEqual(['Alice@Example.org']);
    expect(first.skipped).toEqual([
      { user: 'carol@example.org', reason: expect.stringMatching(/^maxAlerts 1 per hour: e-mailed at /) },
    ]);
    expect(second.sent).toEqual(['Alice@Example.org', 'frank@example.org']);
    expect(third.sent).toEqual(['Alice@Example.org']);
    expect(third.skipped?.map((skip) => skip.user)).toEqual(['carol@example.org', 'frank@example.org']);
    expect(smtp.received.filter((mail) => mail.to[0] === 'frank@example.org')).toHaveLength(1);
  });

  it("sends one e-mail to a '1 per day' member of two deliveries that run at once", async () => {
    const emailA = await start();
    const emailB = await start();
    const results = await Promise.all([
      deliver(emailA, completed(), ['night']),
      deliver(emailB, completed(), ['night']),
      deliver(emailA, completed(), ['night']),
      deliver(emailB, completed(), ['night']),
    ]);
    expect(results.flatMap((result) => result.sent)).toEqual(['dave@example.org']);
    expect(results.flatMap((result) => result.skipped ?? []).map((skip) => skip.reason)).toEqual(
      Array(3).fill(expect.stringMatching(/^maxAlerts 1 per day: e-mailed at /)),
    );
    expect(smtp.received.map((mail) => mail.to)).toEqual([['dave@example.org']]);
    // What makes it atomic: one number per entry of an address, unique; entries expire after 2 days.
    const indexes = await env.db.collection(ALERT_LOG_COLLECTION).indexes();
    expect(indexes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: { user: 1, seq: -1 }, unique: true }),
        expect.objectContaining({ key: { at: 1 }, expireAfterSeconds: 2 * 24 * 3600 }),
      ]),
    );
  });

  it('mails a member without a limit once per event when many deliveries run at once', async () => {
    const emailA = await start();
    const emailB = await start();
    const events = Array.from({ length: 8 }, () => completed());
    const results = await Promise.all(
      events.map((event, i) =>
        deliver(i % 2 ? emailA : emailB, event, ['many'], ['m2@example.org', 'm3@example.org', 'm4@example.org']),
      ),
    );
    expect(results.map((result) => [result.sent, result.error])).toEqual(
      Array(8).fill([['m1@example.org'], undefined]),
    );
    expect(smtp.received).toHaveLength(8);
    const entries = await env.db
      .collection(ALERT_LOG_COLLECTION)
      .find({ user: 'm1@example.org', eventId: { $in: events.map((event) => event.id) } })
      .toArray();
    expect(new Set(entries.map((entry) => entry.seq)).size).toBe(8);
  });

  it('does not mail again those already sent (compared without case)', async () => {
    const email = await start();
    const { sent, skipped } = await deliver(email, completed(), ['ops'], ['ALICE@example.org']);
    expect(sent).toEqual(['bob@example.org']);
    expect(skipped).toEqual([{ user: '+27821234567', reason: SMS_NOT_SUPPORTED }]);
    expect(smtp.received.map((mail) => mail.to)).toEqual([['bob@example.org']]);
  });

  it('throws when the SMTP server fails, having recorded those it accepted; the retry mails only the rest', async () => {
    let accepted = 0;
    const failing = await startSmtp({
      onData(stream, _session, callback) {
        stream.resume();
        stream.on('end', () => {
          accepted += 1;
          callback(accepted > 2 ? smtpError(451, 'Temporary local problem, try again later') : null);
        });
      },
    });
    try {
      const email = await start({ SMTP_PORT: String(failing.port) });
      const event = completed();
      const { sent, error } = await deliver(email, event, ['many']);
      expect(sent).toEqual(['m1@example.org', 'm2@example.org']);
      expect(error?.message).toMatch(
        new RegExp(
          `^SMTP 127.0.0.1:${failing.port} did not take the e-mail to m3@example.org: .*451 Temporary local problem`,
        ),
      );
      // The failed send gave its claim back.
      const entries = await env.db.collection(ALERT_LOG_COLLECTION).find({ eventId: event.id }).toArray();
      expect(entries.map((entry) => entry.user).sort()).toEqual(['m1@example.org', 'm2@example.org']);

      // The delivery is retried (here through the working server) with what was recorded.
      const retry = await deliver(await start(), event, ['many'], sent);
      expect(retry.sent).toEqual(['m3@example.org', 'm4@example.org']);
      expect(smtp.received.map((mail) => mail.to)).toEqual([['m3@example.org'], ['m4@example.org']]);
    } finally {
      await failing.close();
    }
  });

  it('a retry after onSent failed does not mail the member again: the alert log says it was sent', async () => {
    const email = await start();
    const event = completed();
    const failed = await email
      .deliver(event, ['mixed'], new Set(), async () => {
        throw new Error('MongoDB is away');
      })
      .catch((error: Error) => error);
    expect((failed as Error).message).toBe('MongoDB is away');
    expect(smtp.received.map((mail) => mail.to)).toEqual([['gone@example.org']]);
    const retry = await deliver(email, event, ['mixed']);
    expect(retry.sent).toEqual(['gone@example.org', 'erin@example.org']);
    expect(smtp.received.map((mail) => mail.to)).toEqual([['gone@example.org'], ['erin@example.org']]);
  });

  it('skips a member the SMTP server refuses for good (550), mailing the others', async () => {
    const refusing = await startSmtp({
      onRcptTo(address, _session, callback) {
        callback(address.address === 'gone@example.org' ? smtpError(550, 'No such user here') : null);
      },
    });
    try {
      const email = await start({ SMTP_PORT: String(refusing.port) });
      const { sent, skipped, error } = await deliver(email, completed(), ['mixed']);
      expect(error).toBeUndefined();
      expect(sent).toEqual(['erin@example.org']);
      expect(skipped).toEqual([
        { user: 'gone@example.org', reason: 'refused by the SMTP server: 550 No such user here' },
      ]);
    } finally {
      await refusing.close();
    }
  });

  it('logs in with SMTP_USER and SMTP_PASS; a wrong password fails the delivery', async () => {
    const logins: string[] = [];
    const guarded = await startSmtp({
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        logins.push(`${auth.username}:${auth.password}`);
        if (auth.username === 'openhim' && auth.password === 'secret') return callback(null, { user: auth.username });
        return callback(smtpError(535, 'Authentication credentials invalid'));
      },
    });
    try {
      const good = await start({ SMTP_PORT: String(guarded.port), SMTP_USER: 'openhim', SMTP_PASS: 'secret' });
      const ok = await deliver(good, completed(), ['many'], ['m1@example.org', 'm2@example.org', 'm3@example.org']);
      expect(ok.sent).toEqual(['m4@example.org']);
      expect(guarded.received.map((mail) => mail.to)).toEqual([['m4@example.org']]);

      const bad = await start({ SMTP_PORT: String(guarded.port), SMTP_USER: 'openhim', SMTP_PASS: 'wrong' });
      const refused = await deliver(bad, completed(), ['many']);
      expect(refused.sent).toEqual([]);
      expect(refused.error?.message).toMatch(/did not take the e-mail to m1@example.org: .*535/);
      expect(logins).toEqual(['openhim:secret', 'openhim:wrong']);
      expect(
        await env.db.collection(ALERT_LOG_COLLECTION).countDocuments({ user: 'm1@example.org', state: 'sending' }),
      ).toBe(0);
    } finally {
      await guarded.close();
    }
  });

  it('names the groups that do not exist (a task naming them is refused)', async () => {
    const email = await start();
    expect(await email.unknownGroups(['ops', 'nope', 'dev', 'Ops', 'nope'])).toEqual(['nope', 'Ops']);
    expect(await email.unknownGroups([])).toEqual([]);
    const { skipped } = await deliver(email, completed(), ['nope']);
    expect(skipped).toEqual([{ user: 'nope', reason: 'contact group "nope" does not exist' }]);
  });

  it('without SMTP_HOST: not configured, nobody mailed, each member listed as such', async () => {
    const email = await start({ SMTP_HOST: '', EMAIL_FROM: '' });
    expect(email.configured).toBe(false);
    const { sent, skipped } = await deliver(email, completed(), ['ops']);
    expect(sent).toEqual([]);
    expect(skipped).toEqual([
      { user: '+27821234567', reason: SMS_NOT_SUPPORTED },
      { user: 'alice@example.org', reason: EMAIL_NOT_CONFIGURED },
      { user: 'bob@example.org', reason: EMAIL_NOT_CONFIGURED },
    ]);
    expect(smtp.received).toEqual([]);
  });

  it('SMTP_HOST without EMAIL_FROM is a start-up configuration error', () => {
    expect(() => env.config({ SMTP_HOST: '127.0.0.1' })).toThrow(ConfigError);
    expect(() => loadConfig({ SMTP_HOST: '127.0.0.1' })).toThrow(/EMAIL_FROM must be set when SMTP_HOST is/);
  });
});

import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { createTransport, type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import { AppConfig } from '../../config/app-config';
import { AlertLogRepository, type AlertLogForEmail } from '../../database/repositories/alert-log.repository';
import {
  ContactGroupsRepository,
  type ContactGroupsForEmail,
} from '../../database/repositories/contact-groups.repository';
import type { NotificationEvent } from '../notification-event';
import { buildEmail, type EmailSettings } from './email-message';
import { MAX_ALERTS_WINDOW_MS, resolveRecipients, type EmailRecipient } from './recipients';

/** Who did not get an e-mail of an event, and why (maxAlerts reached, an SMS member, no address). */
export interface SkippedRecipient {
  user: string;
  reason: string;
}

/** Why e-mail members get nothing when SMTP_HOST is unset. */
export const EMAIL_NOT_CONFIGURED = 'e-mail is not configured (SMTP_HOST)';

/**
 * The SMTP transport in the shape of core's `email.nodemailer` (host, port, secure, auth), with
 * bounded waits: a server that does not answer fails the attempt (it is retried) instead of holding
 * the delivery for nodemailer's default ten minutes.
 */
export function smtpOptions(config: AppConfig): SMTPTransport.Options {
  return {
    host: config.SMTP_HOST,
    port: config.SMTP_PORT,
    secure: config.SMTP_SECURE,
    ...(config.SMTP_USER ? { auth: { user: config.SMTP_USER, pass: config.SMTP_PASS } } : {}),
    connectionTimeout: 15000,
    greetingTimeout: 15000,
    socketTimeout: 60000,
  };
}

/**
 * The SMTP server's permanent refusal of this one recipient (a 5xx answer to RCPT TO, e.g. 550 no
 * such mailbox; or an address nodemailer cannot send to), or undefined for any other failure. A
 * refused recipient is skipped: sending again would be refused again.
 */
export function refusal(error: unknown): string | undefined {
  const failure = error as {
    code?: string;
    command?: string;
    responseCode?: number;
    response?: string;
    message?: string;
  };
  const code = failure?.responseCode;
  if (failure?.command === 'RCPT TO' && code !== undefined && code >= 500 && code < 600 && code !== 503) {
    return `refused by the SMTP server: ${failure.response ?? code}`;
  }
  if (failure?.code === 'EENVELOPE' && failure.command === 'API')
    return `not a deliverable address: ${failure.message}`;
  return undefined;
}

/**
 * E-mail to the members of OpenHIM contact groups (collection `contactgroups`) through SMTP
 * (nodemailer), one message per member, honouring each member's `maxAlerts` across every worker
 * (the alert log, `rerunalerts`). SMS members are skipped: this service has no SMS gateway.
 */
@Injectable()
export class EmailNotifications implements OnModuleDestroy {
  private readonly logger = new Logger(EmailNotifications.name);
  private transport?: Transporter<SMTPTransport.SentMessageInfo>;

  constructor(
    private readonly config: AppConfig,
    @Inject(ContactGroupsRepository) private readonly contactGroups: ContactGroupsForEmail,
    @Inject(AlertLogRepository) private readonly alertLog: AlertLogForEmail,
  ) {}

  /** Whether SMTP is configured (without it, e-mail deliveries are recorded as not configured). */
  get configured(): boolean {
    return Boolean(this.config.SMTP_HOST);
  }

  /**
   * Sends the event to the e-mail members of `groups` not in `alreadySent` (addresses compared
   * without case), calling `onSent` after each message the SMTP server accepted (so a retry never
   * mails them twice). Returns those skipped. Throws when the SMTP server fails (the delivery is
   * retried later): the members mailed before it are recorded by then.
   *
   * Per member: the alert log is claimed first (maxAlerts: a member e-mailed within its window,
   * by any worker, is skipped), then the message is sent, then the claim is marked sent and
   * `onSent` called. A send that failed gives its claim back. A claim this event already holds is
   * reused: marked sent (an attempt whose `onSent` failed), the member is only recorded again.
   */
  async deliver(
    event: NotificationEvent,
    groups: readonly string[],
    alreadySent: ReadonlySet<string>,
    onSent: (address: string) => Promise<void>,
  ): Promise<{ skipped: SkippedRecipient[] }> {
    const { recipients, skipped } = resolveRecipients(groups, await this.contactGroups.findByNames(groups));
    const done = new Set([...alreadySent].map((address) => address.toLowerCase()));
    const pending = recipients.filter((recipient) => !done.has(recipient.key));
    if (!this.configured) {
      return { skipped: [...skipped, ...pending.map((r) => ({ user: r.address, reason: EMAIL_NOT_CONFIGURED }))] };
    }
    for (const recipient of pending) {
      const outcome = await this.deliverTo(event, recipient, onSent);
      if (outcome) skipped.push({ user: recipient.address, reason: outcome });
    }
    return { skipped };
  }

  /** The names among `groups` that no OpenHIM contact group has (a task's `notify`: 400). */
  async unknownGroups(groups: readonly string[]): Promise<string[]> {
    return this.contactGroups.missing(groups);
  }

  onModuleDestroy(): void {
    this.transport?.close();
    this.transport = undefined;
  }

  /** Mails one member; returns why it was skipped, if it was. */
  private async deliverTo(
    event: NotificationEvent,
    recipient: EmailRecipient,
    onSent: (address: string) => Promise<void>,
  ): Promise<string | undefined> {
    const claim = await this.alertLog.claim(recipient.key, {
      eventId: event.id,
      type: event.type,
      maxAlerts: recipient.maxAlerts,
      windowMs: MAX_ALERTS_WINDOW_MS[recipient.maxAlerts],
    });
    if (claim.outcome === 'limited') {
      return `maxAlerts ${recipient.maxAlerts}: e-mailed at ${claim.lastAt.toISOString()}`;
    }
    if (claim.outcome === 'sent') {
      await onSent(recipient.address);
      return undefined;
    }
    const message = buildEmail(event, this.settings, recipient.groups);
    try {
      await this.transportOf().sendMail({
        from: this.config.EMAIL_FROM,
        to: recipient.address,
        subject: message.subject,
        text: message.text,
        html: message.html,
        headers: {
          // RFC 3834: no out-of-office answers to a machine.
          'Auto-Submitted': 'auto-generated',
          'X-OpenHIM-Event': event.type,
          'X-OpenHIM-Event-Id': event.id,
        },
      });
    } catch (error) {
      const refused = refusal(error);
      await this.alertLog.release(claim.id).catch((releaseError: Error) => {
        // The claim stays "sending": it counts against maxAlerts until it expires; a retry reuses it.
        this.logger.warn(`Could not release the alert log entry of ${recipient.key}: ${releaseError.message}`);
      });
      if (refused) return refused;
      const reason = (error as Error).message;
      throw new Error(
        `SMTP ${this.config.SMTP_HOST}:${this.config.SMTP_PORT} did not take the e-mail to ${recipient.address}: ${reason}`,
        { cause: error },
      );
    }
    // Either record is enough for a retry not to mail the member again: `onSent` (the delivery's
    // list) or the entry marked sent (found by the retry's claim). Only when `onSent` failed does
    // the attempt fail.
    const [logged, recorded] = await Promise.allSettled([this.alertLog.sent(claim.id), onSent(recipient.address)]);
    if (recorded.status === 'rejected') throw recorded.reason;
    if (logged.status === 'rejected') {
      this.logger.warn(
        `E-mailed ${recipient.key}, but could not mark its alert log entry sent: ${(logged.reason as Error).message}`,
      );
    }
    return undefined;
  }

  private get settings(): EmailSettings {
    return { himInstance: this.config.HIM_INSTANCE, consoleUrl: this.config.CONSOLE_URL };
  }

  private transportOf(): Transporter<SMTPTransport.SentMessageInfo> {
    return (this.transport ??= createTransport(smtpOptions(this.config)));
  }
}

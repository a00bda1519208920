import { Injectable } from '@nestjs/common';
import type { NotificationEvent } from '../notification-event';

/** Who did not get an e-mail of an event, and why (maxAlerts reached, an SMS member, no address). */
export interface SkippedRecipient {
  user: string;
  reason: string;
}

/**
 * E-mail to the members of OpenHIM contact groups (collection `contactgroups`) through SMTP.
 * Placeholder until built: see the notifications helper's brief.
 */
@Injectable()
export class EmailNotifications {
  /** Whether SMTP is configured (without it, e-mail deliveries are recorded as not configured). */
  get configured(): boolean {
    return false;
  }

  /**
   * Sends the event to the e-mail members of `groups` not in `alreadySent`, calling `onSent` after
   * each message the SMTP server accepted (so a retry never mails them twice). Returns those skipped.
   * Throws when the SMTP server fails (the delivery is retried later).
   */
  async deliver(
    event: NotificationEvent,
    groups: readonly string[],
    alreadySent: ReadonlySet<string>,
    onSent: (address: string) => Promise<void>,
  ): Promise<{ skipped: SkippedRecipient[] }> {
    void event;
    void groups;
    void alreadySent;
    void onSent;
    return { skipped: [] };
  }

  /** The names among `groups` that no OpenHIM contact group has (a task's `notify`: 400). */
  async unknownGroups(groups: readonly string[]): Promise<string[]> {
    void groups;
    return [];
  }
}

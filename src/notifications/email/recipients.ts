import type { ContactGroupUser, MaxAlerts } from '../../database/schemas';
import type { ContactGroupMembers } from '../../database/repositories/contact-groups.repository';
import type { SkippedRecipient } from './email-notifications.service';

/** How long after an e-mail a member with that `maxAlerts` gets no other (0: no limit). */
export const MAX_ALERTS_WINDOW_MS: Readonly<Record<MaxAlerts, number>> = {
  'no max': 0,
  '1 per hour': 3600 * 1000,
  '1 per day': 24 * 3600 * 1000,
};

/** Why an SMS member gets nothing: this service has no SMS gateway. */
export const SMS_NOT_SUPPORTED = 'sms is not supported';

/** One address to mail, however many of the named groups list it. */
export interface EmailRecipient {
  /** As the first group listing it spells it. */
  address: string;
  /** Lower case: what addresses are compared by (groups, `alreadySent`, the alert log). */
  key: string;
  /** The strictest `maxAlerts` of its entries. */
  maxAlerts: MaxAlerts;
  /** The named groups that list it, in the order named. */
  groups: string[];
}

const ADDRESS = /^[^\s@<>]+@[^\s@<>]+$/;

const isMaxAlerts = (value: unknown): value is MaxAlerts =>
  typeof value === 'string' && Object.hasOwn(MAX_ALERTS_WINDOW_MS, value);

/**
 * The e-mail members of the groups `named` (as core stores them, `found`), one per address compared
 * without case, in the order the groups were named; and who gets nothing, with why: a named group
 * that does not exist, an SMS member (no gateway), an entry that is not an e-mail address, a
 * contact method or `maxAlerts` core does not have. An address listed in several groups gets the
 * strictest `maxAlerts` of its entries (absent is core's default, `no max`).
 */
export function resolveRecipients(
  named: readonly string[],
  found: readonly ContactGroupMembers[],
): { recipients: EmailRecipient[]; skipped: SkippedRecipient[] } {
  const byName = new Map(found.map((group) => [group.group, group]));
  const recipients = new Map<string, EmailRecipient>();
  const skipped = new Map<string, SkippedRecipient>();
  const skip = (user: string, reason: string) => skipped.set(`${user.toLowerCase()}\n${reason}`, { user, reason });

  for (const name of new Set(named)) {
    const group = byName.get(name);
    if (!group) {
      skip(name, `contact group "${name}" does not exist`);
      continue;
    }
    for (const member of (Array.isArray(group.users) ? group.users : []) as Array<Partial<ContactGroupUser>>) {
      const user = typeof member?.user === 'string' ? member.user.trim() : '';
      if (member?.method === 'sms') {
        skip(user, SMS_NOT_SUPPORTED);
        continue;
      }
      if (member?.method !== 'email') {
        skip(user, `contact method ${JSON.stringify(member?.method ?? null)} is not supported (email, sms)`);
        continue;
      }
      if (!ADDRESS.test(user)) {
        skip(user, 'not an e-mail address');
        continue;
      }
      const maxAlerts = member.maxAlerts ?? 'no max';
      if (!isMaxAlerts(maxAlerts)) {
        skip(
          user,
          `maxAlerts ${JSON.stringify(maxAlerts)} is not one of ${Object.keys(MAX_ALERTS_WINDOW_MS).join(', ')}`,
        );
        continue;
      }
      const key = user.toLowerCase();
      const known = recipients.get(key);
      if (!known) {
        recipients.set(key, { address: user, key, maxAlerts, groups: [name] });
        continue;
      }
      if (MAX_ALERTS_WINDOW_MS[maxAlerts] > MAX_ALERTS_WINDOW_MS[known.maxAlerts]) known.maxAlerts = maxAlerts;
      if (!known.groups.includes(name)) known.groups.push(name);
    }
  }
  // An address mailed through one group is not also "skipped" for a bad entry in another.
  const notMailed = [...skipped.values()].filter((entry) => !recipients.has(entry.user.toLowerCase()));
  return { recipients: [...recipients.values()], skipped: notMailed };
}

import type { NotificationEvent, NotificationType } from '../notification-event';

/** Core's `alerts` settings: the instance's name and the console's address (no links without it). */
export interface EmailSettings {
  himInstance: string;
  consoleUrl?: string;
}

export interface EmailMessage {
  subject: string;
  text: string;
  html: string;
}

/** Tasks an emergency stop lists one by one; the rest are counted. */
export const LISTED_TASKS = 20;
/** Longest text of one fact (a last error can be a whole response body). */
const FACT_CHARS = 500;

/**
 * The console's page of a task: the classic console's route `/tasks/:taskId` (its task details),
 * behind the hash-bang (`#!/`) that the console's links use, OpenHIM 8's included.
 */
export function taskLink(consoleUrl: string, taskId: string): string {
  return `${consoleUrl}/#!/tasks/${encodeURIComponent(taskId)}`;
}

/** The console's page of a channel (`/channels/:channelId`, its monitoring). */
export function channelLink(consoleUrl: string, channelId: string): string {
  return `${consoleUrl}/#!/channels/${encodeURIComponent(channelId)}`;
}

/** One line of a header: no line breaks from a channel name or a reason. */
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();
const clip = (text: string) => (text.length > FACT_CHARS ? `${text.slice(0, FACT_CHARS - 1)}…` : text);

function channelName(event: NotificationEvent): string {
  return oneLine(event.channel?.name || event.channel?.id || 'unknown');
}

/** What happened, in a few words (the subject without the instance). */
export function emailTitle(event: NotificationEvent): string {
  const task = `Task ${event.task?.id ?? 'unknown'}`;
  const failed = event.task?.failed;
  const titles: Record<NotificationType, () => string> = {
    'task.created': () => `${task} created`,
    'task.started': () => `${task} started`,
    'task.completed': () => `${task} completed${failed ? ` (${failed} failed)` : ''}`,
    'task.failed': () => `${task} failed`,
    'task.cancelled': () => `${task} cancelled`,
    'task.auto-paused': () => `${task} paused automatically`,
    'task.auto-resumed': () => `${task} resumed automatically`,
    'breaker.opened': () => `Channel ${channelName(event)} breaker opened`,
    'breaker.closed': () => `Channel ${channelName(event)} breaker closed`,
    'tasks.paused-all': () =>
      event.channel
        ? `Emergency stop: reruns to channel ${channelName(event)} paused`
        : 'Emergency stop: all reruns paused',
    'tasks.resumed-all': () =>
      event.channel
        ? `Emergency stop lifted: reruns to channel ${channelName(event)} resumed`
        : 'Emergency stop lifted: reruns resumed',
  };
  return oneLine((titles[event.type] ?? (() => `${event.type}`))());
}

/** What happened, as a sentence. */
function summary(event: NotificationEvent): string {
  const count = (n: number | undefined, what: string) =>
    n === undefined ? `its ${what}s` : `${n} ${what}${n === 1 ? '' : 's'}`;
  const task = `Task ${event.task?.id ?? 'unknown'}`;
  const channel = `channel ${channelName(event)}`;
  const affected = event.tasks ? ` (${count(event.tasks.length, 'task')})` : '';
  switch (event.type) {
    case 'task.created':
      return `${task} was created to rerun ${count(event.task?.totalTransactions, 'transaction')}.`;
    case 'task.started':
      return `${task} started rerunning ${count(event.task?.totalTransactions, 'transaction')}.`;
    case 'task.completed':
      return `${task} finished rerunning ${count(event.task?.totalTransactions, 'transaction')}${
        event.task?.failed !== undefined ? `; ${event.task.failed} ended failed` : ''
      }.`;
    case 'task.failed':
      return `${task} stopped with an error.`;
    case 'task.cancelled':
      return `${task} was cancelled.`;
    case 'task.auto-paused':
      return `${task} was paused by the service; it does not run until it is resumed (in the console, or automatically when it allows it).`;
    case 'task.auto-resumed':
      return `${task} was resumed by the service.`;
    case 'breaker.opened':
      return `Reruns to ${channel} keep failing: its tasks are paused until a probe rerun succeeds.`;
    case 'breaker.closed':
      return `A probe rerun to ${channel} succeeded: its tasks run again.`;
    case 'tasks.paused-all':
      return `An emergency stop paused the tasks ${event.channel ? `rerunning to ${channel}` : 'of every channel'}${affected}.`;
    case 'tasks.resumed-all':
      return `The emergency stop was lifted: the tasks it paused run again${affected}.`;
    default:
      return `${event.type}.`;
  }
}

interface Fact {
  label: string;
  text: string;
  link?: string;
}

function facts(event: NotificationEvent, settings: EmailSettings): Fact[] {
  const found: Fact[] = [];
  const add = (label: string, value: unknown, link?: string) => {
    if (value === undefined || value === null || value === '') return;
    found.push({ label, text: clip(String(value)), link });
  };
  const { task, channel } = event;
  const { consoleUrl } = settings;
  if (task) {
    add('Task', task.id, consoleUrl && taskLink(consoleUrl, task.id));
    add('Status', task.status);
    add('Created by', task.user);
    add('Transactions', task.totalTransactions);
    add('Remaining', task.remainingTransactions);
    add('Failed', task.failed);
  }
  if (channel) {
    add(
      'Channel',
      channel.name ? `${channel.name} (${channel.id})` : channel.id,
      consoleUrl && channelLink(consoleUrl, channel.id),
    );
    add('Failed in a row', channel.failures);
    add('Last error', channel.lastError);
  }
  add('Reason', event.reason);
  add('By', event.user);
  if (event.tasks?.length) {
    event.tasks
      .slice(0, LISTED_TASKS)
      .forEach((id, index) => add(index ? '' : 'Tasks', id, consoleUrl && taskLink(consoleUrl, id)));
    if (event.tasks.length > LISTED_TASKS) add('', `and ${event.tasks.length - LISTED_TASKS} more`);
  }
  add('At', event.at);
  add('Event', `${event.type} ${event.id}`);
  return found;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The e-mail of an event to one member: subject `[<himInstance>] <what happened>`, a plain-text and
 * an HTML body with the same facts (task, counts, channel, reason, who, when), the link to the task
 * (or channel) in the console when CONSOLE_URL is set, and the groups the member receives it through.
 */
export function buildEmail(
  event: NotificationEvent,
  settings: EmailSettings,
  groups: readonly string[] = [],
): EmailMessage {
  const title = emailTitle(event);
  const subject = `[${oneLine(settings.himInstance)}] ${title}`;
  const intro = `${summary(event)} (OpenHIM instance ${settings.himInstance})`;
  const list = facts(event, settings);
  const open =
    settings.consoleUrl && event.task
      ? { label: 'Open the task in the OpenHIM console', link: taskLink(settings.consoleUrl, event.task.id) }
      : settings.consoleUrl && event.channel
        ? { label: 'Open the channel in the OpenHIM console', link: channelLink(settings.consoleUrl, event.channel.id) }
        : undefined;
  const why = groups.length
    ? `You receive this as a member of the OpenHIM contact group${groups.length > 1 ? 's' : ''} ${groups.join(', ')}.`
    : '';
  const width = Math.max(...list.map((fact) => fact.label.length));

  const text = [
    title,
    '',
    intro,
    '',
    ...list.map(
      (fact) =>
        `${(fact.label ? `${fact.label}:` : '').padEnd(width + 2)}${fact.text}${fact.link ? ` <${fact.link}>` : ''}`,
    ),
    ...(open ? ['', `${open.label}: ${open.link}`] : []),
    ...(why ? ['', '--', why] : []),
    '',
  ].join('\n');

  const cell = (fact: Fact) =>
    fact.link ? `<a href="${escapeHtml(fact.link)}">${escapeHtml(fact.text)}</a>` : escapeHtml(fact.text);
  const html = [
    '<!DOCTYPE html>',
    '<html><body style="font-family: sans-serif; font-size: 14px;">',
    `<h2>${escapeHtml(title)}</h2>`,
    `<p>${escapeHtml(intro)}</p>`,
    '<table cellpadding="4" style="border-collapse: collapse;">',
    ...list.map(
      (fact) => `<tr><th align="left" valign="top">${escapeHtml(fact.label)}</th><td>${cell(fact)}</td></tr>`,
    ),
    '</table>',
    ...(open ? [`<p><a href="${escapeHtml(open.link)}">${escapeHtml(open.label)}</a></p>`] : []),
    ...(why ? [`<p style="color: #666; font-size: 12px;">${escapeHtml(why)}</p>`] : []),
    '</body></html>',
    '',
  ].join('\n');

  return { subject, text, html };
}

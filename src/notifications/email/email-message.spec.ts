import type { NotificationEvent } from '../notification-event';
import { buildEmail, emailTitle, LISTED_TASKS, taskLink } from './email-message';

const TASK_ID = '5bb777777bbb66cc5d4444ee';
const CHANNEL_ID = '5bb777777bbb66cc5d4444ff';
const at = '2026-12-08T01:02:03.000Z';
const settings = { himInstance: 'him.example.org', consoleUrl: 'https://console.example.org' };

const completed: NotificationEvent = {
  id: 'e1',
  type: 'task.completed',
  at,
  task: {
    id: TASK_ID,
    status: 'Completed',
    user: 'root@openhim.org',
    totalTransactions: 10,
    remainingTransactions: 0,
    failed: 2,
  },
};

describe('the notification e-mail', () => {
  it('links to the task in the console (its route /tasks/:taskId, hash-bang)', () => {
    expect(taskLink('https://console.example.org', TASK_ID)).toBe(`https://console.example.org/#!/tasks/${TASK_ID}`);
  });

  it('says in the subject which instance and what happened', () => {
    expect(buildEmail(completed, settings).subject).toBe(`[him.example.org] Task ${TASK_ID} completed (2 failed)`);
    expect(buildEmail({ ...completed, task: { id: TASK_ID, failed: 0 } }, settings).subject).toBe(
      `[him.example.org] Task ${TASK_ID} completed`,
    );
    const channel = { id: CHANNEL_ID, name: 'FHIR\nserver', failures: 20, lastError: 'ECONNREFUSED' };
    expect(buildEmail({ id: 'e2', type: 'breaker.opened', at, channel }, settings).subject).toBe(
      '[him.example.org] Channel FHIR server breaker opened',
    );
    expect(emailTitle({ id: 'e3', type: 'breaker.closed', at, channel: { id: CHANNEL_ID } })).toBe(
      `Channel ${CHANNEL_ID} breaker closed`,
    );
  });

  it.each([
    ['task.created', 'created'],
    ['task.started', 'started'],
    ['task.failed', 'failed'],
    ['task.cancelled', 'cancelled'],
    ['task.auto-paused', 'paused automatically'],
    ['task.auto-resumed', 'resumed automatically'],
  ] as const)('names a task event in the subject: %s', (type, what) => {
    expect(emailTitle({ id: 'e', type, at, task: { id: TASK_ID } })).toBe(`Task ${TASK_ID} ${what}`);
  });

  it('names an emergency stop and its release, of every channel or of one', () => {
    expect(emailTitle({ id: 'e', type: 'tasks.paused-all', at, tasks: [] })).toBe('Emergency stop: all reruns paused');
    expect(emailTitle({ id: 'e', type: 'tasks.resumed-all', at, channel: { id: CHANNEL_ID, name: 'lab' } })).toBe(
      'Emergency stop lifted: reruns to channel lab resumed',
    );
  });

  it('gives the facts and the link in the plain text', () => {
    const { text } = buildEmail(completed, settings, ['ops', 'dev']);
    expect(text).toContain(
      `Task ${TASK_ID} finished rerunning 10 transactions; 2 ended failed. (OpenHIM instance him.example.org)`,
    );
    expect(text).toMatch(new RegExp(`^Task: +${TASK_ID} <https://console.example.org/#!/tasks/${TASK_ID}>$`, 'm'));
    expect(text).toMatch(/^Created by: +root@openhim.org$/m);
    expect(text).toMatch(/^Transactions: +10$/m);
    expect(text).toMatch(/^Remaining: +0$/m);
    expect(text).toMatch(/^Failed: +2$/m);
    expect(text).toMatch(new RegExp(`^At: +${at}$`, 'm'));
    expect(text).toContain(`Open the task in the OpenHIM console: https://console.example.org/#!/tasks/${TASK_ID}`);
    expect(text).toContain('You receive this as a member of the OpenHIM contact groups ops, dev.');
  });

  it('gives the same in HTML, every value escaped', () => {
    const event: NotificationEvent = {
      id: 'e4',
      type: 'task.auto-paused',
      at,
      task: { id: TASK_ID },
      reason: '20 reruns failed in a row <script>alert(1)</script>',
    };
    const { html } = buildEmail(event, settings, ['ops']);
    expect(html).toContain(`<a href="https://console.example.org/#!/tasks/${TASK_ID}">${TASK_ID}</a>`);
    expect(html).toContain('20 reruns failed in a row &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>');
    expect(html).toContain('a member of the OpenHIM contact group ops.');
  });

  it('links to the channel for breaker events', () => {
    const event: NotificationEvent = {
      id: 'e5',
      type: 'breaker.opened',
      at,
      channel: { id: CHANNEL_ID, name: 'lab', failures: 20 },
    };
    const { text } = buildEmail(event, settings);
    expect(text).toMatch(
      new RegExp(`^Channel: +lab \\(${CHANNEL_ID}\\) <https://console.example.org/#!/channels/${CHANNEL_ID}>$`, 'm'),
    );
    expect(text).toMatch(/^Failed in a row: +20$/m);
    expect(text).toContain(
      `Open the channel in the OpenHIM console: https://console.example.org/#!/channels/${CHANNEL_ID}`,
    );
  });

  it('has no links without CONSOLE_URL', () => {
    const { text, html } = buildEmail(completed, { himInstance: 'openhim' });
    expect(text).not.toContain('#!');
    expect(html).not.toContain('<a ');
    expect(text).toMatch(new RegExp(`^Task: +${TASK_ID}$`, 'm'));
  });

  it(`lists at most ${LISTED_TASKS} tasks of an emergency stop, counting the rest`, () => {
    const tasks = Array.from({ length: LISTED_TASKS + 5 }, (_, i) => i.toString(16).padStart(24, '0'));
    const { text } = buildEmail(
      { id: 'e6', type: 'tasks.paused-all', at, tasks, user: 'root@openhim.org', reason: 'lab down' },
      settings,
    );
    expect(text).toContain(`(${LISTED_TASKS + 5} tasks)`);
    expect(text.match(/#!\/tasks\//g)).toHaveLength(LISTED_TASKS);
    expect(text).toContain('and 5 more');
    expect(text).toMatch(/^Reason: +lab down$/m);
    expect(text).toMatch(/^By: +root@openhim.org$/m);
  });

  it('cuts a very long fact', () => {
    const channel = { id: CHANNEL_ID, name: 'lab', lastError: 'x'.repeat(5000) };
    const { text } = buildEmail({ id: 'e7', type: 'breaker.opened', at, channel }, settings);
    expect(text).toMatch(/^Last error: +x{499}…$/m);
  });
});

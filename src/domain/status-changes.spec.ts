import { TASK_STATUSES, TaskStatus } from './task-status';
import { decideStatusChange } from './status-changes';

describe('decideStatusChange', () => {
  const allowed: Array<[string, TaskStatus]> = [
    ['Queued', 'Paused'],
    ['Processing', 'Paused'],
    ['Pending Async', 'Paused'],
    ['Paused', 'Queued'],
    ['Queued', 'Cancelled'],
    ['Processing', 'Cancelled'],
    ['Paused', 'Cancelled'],
    ['Pending Async', 'Cancelled'],
  ];

  it.each(allowed)('allows %s -> %s', (from, to) => {
    const decision = decideStatusChange(from, to);
    expect(decision.kind).toBe('change');
    if (decision.kind === 'change') expect(decision.from).toContain(from);
  });

  it.each(TASK_STATUSES.map((status) => [status]))('treats %s -> same as a no-op', (status) => {
    expect(decideStatusChange(status, status)).toEqual({ kind: 'noop' });
  });

  it('refuses every other change, listing the allowed ones', () => {
    const refused = TASK_STATUSES.flatMap((from) =>
      TASK_STATUSES.map((to) => [from, to] as [string, TaskStatus]),
    ).filter(([from, to]) => from !== to && !allowed.some(([f, t]) => f === from && t === to));
    expect(refused).toContainEqual(['Completed', 'Cancelled']);
    expect(refused).toContainEqual(['Cancelled', 'Queued']);
    for (const [from, to] of refused) {
      const decision = decideStatusChange(from, to);
      expect(decision.kind).toBe('refused');
      if (decision.kind === 'refused') expect(decision.message).toContain('Allowed changes: ');
    }
    expect(decideStatusChange('Completed', 'Paused')).toMatchObject({
      message: expect.stringMatching(/^Cannot change a task from Completed to Paused\. Allowed changes/),
    });
    expect(decideStatusChange('Queued', 'Completed')).toMatchObject({
      message: expect.stringMatching(/^The status Completed cannot be set through the API/),
    });
  });
});

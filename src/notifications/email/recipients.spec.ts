import { resolveRecipients, SMS_NOT_SUPPORTED } from './recipients';

describe('resolveRecipients', () => {
  const groups = [
    {
      group: 'ops',
      users: [
        { user: 'Alice@Example.org', method: 'email', maxAlerts: 'no max' },
        { user: '+27821234567', method: 'sms', maxAlerts: 'no max' },
        { user: 'bob@example.org', method: 'email' },
      ],
    },
    {
      group: 'dev',
      users: [
        { user: 'alice@example.org', method: 'email', maxAlerts: '1 per hour' },
        { user: 'carol@example.org', method: 'email', maxAlerts: '1 per day' },
        { user: 'carol@example.org', method: 'email', maxAlerts: '1 per hour' },
      ],
    },
  ];

  it('gives one recipient per address (compared without case), in the order the groups are named', () => {
    const { recipients, skipped } = resolveRecipients(['ops', 'dev'], groups);
    expect(recipients).toEqual([
      { address: 'Alice@Example.org', key: 'alice@example.org', maxAlerts: '1 per hour', groups: ['ops', 'dev'] },
      { address: 'bob@example.org', key: 'bob@example.org', maxAlerts: 'no max', groups: ['ops'] },
      { address: 'carol@example.org', key: 'carol@example.org', maxAlerts: '1 per day', groups: ['dev'] },
    ]);
    expect(skipped).toEqual([{ user: '+27821234567', reason: SMS_NOT_SUPPORTED }]);
  });

  it('reads only the groups named, each once', () => {
    const { recipients } = resolveRecipients(['dev', 'dev'], groups);
    expect(recipients.map((recipient) => [recipient.key, recipient.groups])).toEqual([
      ['alice@example.org', ['dev']],
      ['carol@example.org', ['dev']],
    ]);
  });

  it('skips, saying why, a group that does not exist and entries it cannot mail', () => {
    const { recipients, skipped } = resolveRecipients(
      ['ops', 'gone'],
      [
        {
          group: 'ops',
          users: [
            { user: 'not-an-address', method: 'email' },
            { user: 'dave@example.org', method: 'fax' },
            { user: 'erin@example.org', method: 'email', maxAlerts: '2 per week' },
            { user: ' frank@example.org ', method: 'email', maxAlerts: '1 per day' },
          ],
        },
      ],
    );
    expect(recipients).toEqual([
      { address: 'frank@example.org', key: 'frank@example.org', maxAlerts: '1 per day', groups: ['ops'] },
    ]);
    expect(skipped).toEqual([
      { user: 'not-an-address', reason: 'not an e-mail address' },
      { user: 'dave@example.org', reason: 'contact method "fax" is not supported (email, sms)' },
      {
        user: 'erin@example.org',
        reason: 'maxAlerts "2 per week" is not one of no max, 1 per hour, 1 per day',
      },
      { user: 'gone', reason: 'contact group "gone" does not exist' },
    ]);
  });

  it('does not list as skipped an address that another entry mails', () => {
    const { recipients, skipped } = resolveRecipients(
      ['a', 'b'],
      [
        { group: 'a', users: [{ user: 'gina@example.org', method: 'email', maxAlerts: 'often' }] },
        { group: 'b', users: [{ user: 'Gina@example.org', method: 'email' }] },
      ],
    );
    expect(recipients.map((recipient) => recipient.address)).toEqual(['Gina@example.org']);
    expect(skipped).toEqual([]);
  });

  it('copes with a group without members', () => {
    expect(resolveRecipients(['empty'], [{ group: 'empty' }])).toEqual({ recipients: [], skipped: [] });
  });
});

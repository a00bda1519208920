import { RerunPermissions } from './rerun-permissions';

describe('RerunPermissions', () => {
  const permissions = new RerunPermissions();
  const admin = { email: 'root@openhim.org', groups: ['admin'], isAdmin: true };
  const operator = { email: 'op@x.org', groups: ['operators', 'lab'], isAdmin: false };

  it('lets the admin group rerun anything', () => {
    expect(permissions.canRerunChannels(admin, [{}, { txRerunAcl: [] }, { txRerunAcl: ['other'] }])).toBe(true);
  });

  it('lets a user rerun when every channel lists one of their groups', () => {
    expect(permissions.canRerunChannels(operator, [{ txRerunAcl: ['operators'] }, { txRerunAcl: ['x', 'lab'] }])).toBe(
      true,
    );
  });

  it('denies when any channel does not list one of their groups', () => {
    expect(permissions.canRerunChannels(operator, [{ txRerunAcl: ['operators'] }, { txRerunAcl: ['other'] }])).toBe(
      false,
    );
    expect(permissions.canRerunChannels(operator, [{ txRerunAcl: ['operators'] }, {}])).toBe(false);
    expect(permissions.canRerunChannels(operator, [{ txRerunAcl: null }])).toBe(false);
  });

  it('matches group names exactly', () => {
    expect(permissions.canRerunChannels(operator, [{ txRerunAcl: ['Operators'] }])).toBe(false);
    expect(permissions.canRerunChannels({ ...operator, groups: [] }, [{ txRerunAcl: ['operators'] }])).toBe(false);
  });

  it('allows a task whose transactions have no channel to check (unknown tids fail later)', () => {
    expect(permissions.canRerunChannels(operator, [])).toBe(true);
  });
});

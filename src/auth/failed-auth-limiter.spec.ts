import { loadConfig } from '../config/app-config';
import { FAILED_AUTH_WINDOW_MS, FailedAuthLimiter } from './failed-auth-limiter';

describe('FailedAuthLimiter', () => {
  let limiter: FailedAuthLimiter;

  beforeEach(() => jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') }));
  afterEach(() => {
    limiter.onApplicationShutdown();
    jest.useRealTimers();
  });

  it('blocks an IP for a minute once it exceeds the limit, then lets it try again', async () => {
    limiter = new FailedAuthLimiter(loadConfig({ AUTH_FAILURE_LIMIT: '2' }));
    expect(await limiter.recordFailure('10.1.1.1')).toBe(0);
    expect(await limiter.recordFailure('10.1.1.1')).toBe(0);
    expect(limiter.blockedFor('10.1.1.1')).toBe(0);
    expect(await limiter.recordFailure('10.1.1.1')).toBe(60);
    expect(limiter.blockedFor('10.1.1.1')).toBe(60);
    expect(limiter.blockedFor('10.1.1.2')).toBe(0);

    jest.advanceTimersByTime(FAILED_AUTH_WINDOW_MS - 1000);
    expect(limiter.blockedFor('10.1.1.1')).toBe(1);
    jest.advanceTimersByTime(1000);
    expect(limiter.blockedFor('10.1.1.1')).toBe(0);
    expect(await limiter.recordFailure('10.1.1.1')).toBe(0);
  });

  it('forgets failures older than the window', async () => {
    limiter = new FailedAuthLimiter(loadConfig({ AUTH_FAILURE_LIMIT: '2' }));
    await limiter.recordFailure('10.1.1.1');
    await limiter.recordFailure('10.1.1.1');
    jest.advanceTimersByTime(FAILED_AUTH_WINDOW_MS);
    expect(await limiter.recordFailure('10.1.1.1')).toBe(0);
  });

  it('counts an IPv6 /64 as one client', async () => {
    limiter = new FailedAuthLimiter(loadConfig({ AUTH_FAILURE_LIMIT: '1' }));
    await limiter.recordFailure('2001:db8:1:2::1');
    expect(await limiter.recordFailure('2001:db8:1:2::ffff')).toBeGreaterThan(0);
    expect(limiter.blockedFor('2001:db8:1:3::1')).toBe(0);
  });

  it('never blocks when the limit is 0', async () => {
    limiter = new FailedAuthLimiter(loadConfig({ AUTH_FAILURE_LIMIT: '0' }));
    for (let i = 0; i < 100; i++) expect(await limiter.recordFailure('10.1.1.1')).toBe(0);
    expect(limiter.blockedFor('10.1.1.1')).toBe(0);
  });
});

import { ConfigError, loadConfig } from '../../src/config/app-config';

const SECRET = 'sixteen-chars-ok';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('notification settings', () => {
  it('have defaults: no webhooks, no default groups, retried for 24 h from 1 s, 10 s per request', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      WEBHOOK_URLS: [],
      WEBHOOK_SECRET: '',
      NOTIFY_GROUPS: [],
      NOTIFY_RETRY_MS: 86400000,
      NOTIFY_RETRY_DELAY_MS: 1000,
      NOTIFY_TIMEOUT_MS: 10000,
      NOTIFY_CONCURRENCY: 20,
    });
  });

  it('read WEBHOOK_URLS comma-separated (kept as written) and NOTIFY_GROUPS with their case', () => {
    const config = loadConfig({
      WEBHOOK_URLS: ' https://hooks.example.org/openhim?token=x , http://10.0.0.5:8080/hook ',
      WEBHOOK_SECRET: SECRET,
      NOTIFY_GROUPS: 'Ops, on-call',
    });
    expect(config.WEBHOOK_URLS).toEqual(['https://hooks.example.org/openhim?token=x', 'http://10.0.0.5:8080/hook']);
    expect(config.NOTIFY_GROUPS).toEqual(['Ops', 'on-call']);
  });

  it.each([
    'hooks.example.org/openhim',
    'ftp://hooks.example.org/',
    'https://',
    'http://exa mple.org/',
    'https://[bad/',
  ])('refuse a WEBHOOK_URLS entry that is not an http(s) URL: %s', (url) => {
    const found = problems({ WEBHOOK_URLS: `https://ok.example.org/hook,${url}`, WEBHOOK_SECRET: SECRET });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^WEBHOOK_URLS must list http\(s\) URLs, comma-separated: ".+" is not one/);
  });

  it('require WEBHOOK_SECRET, of at least 16 characters, with WEBHOOK_URLS, and never print it', () => {
    const missing = problems({ WEBHOOK_URLS: 'https://hooks.example.org/openhim' });
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(/^WEBHOOK_SECRET must be set, to at least 16 characters, when WEBHOOK_URLS is set/);
    const short = problems({ WEBHOOK_URLS: 'https://hooks.example.org/openhim', WEBHOOK_SECRET: 'short-secret' });
    expect(short).toHaveLength(1);
    expect(short[0]).toMatch(/^WEBHOOK_SECRET must be set, to at least 16 characters/);
    expect(short[0]).not.toContain('short-secret');
    expect(problems({ WEBHOOK_URLS: 'https://hooks.example.org/openhim', WEBHOOK_SECRET: SECRET })).toEqual([]);
    // Without webhooks the secret is not used.
    expect(problems({ WEBHOOK_SECRET: 'short' })).toEqual([]);
  });

  it('refuse retry and timeout values out of range, naming the setting', () => {
    const found = problems({
      NOTIFY_RETRY_MS: '-1',
      NOTIFY_RETRY_DELAY_MS: '5',
      NOTIFY_TIMEOUT_MS: 'soon',
      NOTIFY_CONCURRENCY: '0',
    });
    expect(found.map((problem) => problem.split(' ')[0]).sort()).toEqual(
      ['NOTIFY_CONCURRENCY', 'NOTIFY_RETRY_DELAY_MS', 'NOTIFY_RETRY_MS', 'NOTIFY_TIMEOUT_MS'].sort(),
    );
  });
});

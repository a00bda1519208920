import { distEntry, runNode } from '../support/processes';

/** The one fatal line a refused start prints (stdout is a pipe: JSON lines). */
function fatalLine(output: string): { level: string; msg: string } {
  const lines = output
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as { level: string; msg: string });
  expect(lines).toHaveLength(1);
  expect(lines[0].level).toBe('fatal');
  return lines[0];
}

describe('notification settings at start', () => {
  it.each(['main.js', 'main.worker.js', 'main.api.js'])(
    '%s: WEBHOOK_URLS without WEBHOOK_SECRET stops the start with one line naming the setting',
    async (entry) => {
      const service = runNode(distEntry(entry), [], {
        WEBHOOK_URLS: 'https://hooks.example.org/openhim',
        API_PORT: '0',
      });
      expect(await service.exited).toBe(1);
      expect(fatalLine(service.output()).msg).toMatch(
        /^Invalid configuration: WEBHOOK_SECRET must be set, to at least 16 characters, when WEBHOOK_URLS is set: it signs every webhook .*Correct these environment variables and start again\.$/,
      );
    },
  );

  it('a WEBHOOK_URLS entry that is not an http(s) URL, and a short secret (never printed), are named too', async () => {
    const service = runNode(distEntry('main.js'), [], {
      WEBHOOK_URLS: 'hooks.example.org/openhim',
      WEBHOOK_SECRET: 'too-short',
      API_PORT: '0',
    });
    expect(await service.exited).toBe(1);
    const { msg } = fatalLine(service.output());
    expect(msg).toMatch(
      /WEBHOOK_URLS must list http\(s\) URLs, comma-separated: "hooks\.example\.org\/openhim" is not one/,
    );
    expect(msg).toMatch(/; WEBHOOK_SECRET must be set, to at least 16 characters, when WEBHOOK_URLS is set/);
    expect(msg).not.toContain('too-short');
  });
});

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// `npm test` is quiet: what the code under test logs shows only for a failed test (or with
// TEST_LOGS=1). Checked on a fixture suite with a passing and a failing test, in a jest of its own.
const root = join(__dirname, '..', '..');

function runFixture(env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const { jest } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { jest: Record<string, unknown> };
  const config = { ...jest, rootDir: root, roots: ['<rootDir>/test/fixtures/quiet'], testRegex: '\\.fixture\\.ts$' };
  const child = spawn(
    process.execPath,
    [require.resolve('jest/bin/jest'), '--config', JSON.stringify(config), '--ci', '--colors=false'],
    { cwd: root, env: { ...process.env, TEST_LOGS: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

describe('test output (the jest environment in test/support/quiet-environment.ts)', () => {
  it("holds the code's log lines, and prints those of a failed test under its name", async () => {
    const { code, output } = await runFixture();
    expect(code).toBe(1);
    expect(output).toMatch(/── logs of the failed test "a suite whose code logs › fails" ──\n/);
    const logs = output.slice(output.indexOf('── logs of'));
    expect(logs).toContain('"msg":"logged-by-the-failing-test"');
    expect(output).not.toContain('logged-by-the-passing-test');
    // Lines of the hooks before the first test go with it (it passed: not shown).
    expect(output).not.toContain('logged-in-before-all');
    // What a test prints itself (a measured figure) is not a log line.
    expect(output).toContain('a measured figure: 42');
  }, 60000);

  it('prints every line as it is written with TEST_LOGS=1', async () => {
    const { output } = await runFixture({ TEST_LOGS: '1' });
    expect(output).toContain('logged-in-before-all');
    expect(output).toContain('logged-by-the-passing-test');
    expect(output).toContain('logged-by-the-failing-test');
    expect(output).not.toContain('── logs of');
  }, 60000);
});

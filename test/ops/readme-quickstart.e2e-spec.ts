import { rm } from 'node:fs/promises';
import { ROOT_EMAIL, ROOT_PASSWORD } from '../support/openhim-auth';
import { runBashClient, writeTempFile } from '../support/openhim-clients';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';
import { bash, readmeExample } from '../support/readme-blocks';

const README_URL = 'https://localhost:8080';
const SPACED_BODY = '{"tids": ["5bb777777bbb66cc5d4444ee"], "batchSize": 2}';

/** The Quickstart's requests, one command per entry (continuation lines joined, comment lines dropped). */
async function quickstartCommands(): Promise<string[]> {
  return (await readmeExample('quickstart-requests')).commands;
}

/**
 * The README's Quickstart requests, run as an operator pastes them (the URL pointed at this test's
 * API, `<id>` replaced by the id the POST printed): Basic with `curl -u`, a JSON body with spaces, and
 * the per-item error of a transaction that does not exist.
 */
describe('README Quickstart requests', () => {
  let env: TestEnvironment;
  let baseUrl: string;

  beforeAll(async () => {
    env = await TestEnvironment.start();
    ({ baseUrl } = await env.startApi({ AUTH_FAILURE_LIMIT: '0' }, { withWorker: true }));
  });
  afterAll(() => env?.stop());

  it('answer as the README says, the curl -u ones included', async () => {
    const commands = await quickstartCommands();
    expect(commands).toHaveLength(4);
    const run = async (command: string, id = '') => {
      const result = await bash(command.replaceAll(README_URL, baseUrl).replaceAll('<id>', id));
      // curl prints its progress meter on stderr when stdout is not a terminal.
      expect({ command, code: result.code, stderr: result.code ? result.stderr : '' }).toEqual({
        command,
        code: 0,
        stderr: '',
      });
      return result.stdout;
    };

    const [health, apiDocs, create, errors] = commands;
    expect(JSON.parse(await run(health))).toEqual({ status: 'ok', mongo: 'up', redis: 'up' });
    expect(JSON.parse(await run(apiDocs))).toMatchObject({ openapi: expect.any(String) });

    expect(create).toContain('curl -k -u root@openhim.org:openhim-password');
    expect(create).toContain(SPACED_BODY);
    const created = await run(create);
    expect(created).toMatch(/^User root@openhim\.org created task with id [0-9a-f]{24}$/);
    const id = created.slice(-24);

    // The task runs at once (nothing to send): its one item fails, as in OpenHIM.
    const items = await waitFor(
      'the task item with an error',
      async () => {
        const task = JSON.parse(await run(errors, id)) as { transactions: unknown[] };
        return task.transactions.length > 0 ? task.transactions : undefined;
      },
      { intervalMs: 250 },
    );
    expect(items).toEqual([
      expect.objectContaining({
        tid: '5bb777777bbb66cc5d4444ee',
        tstatus: 'Failed',
        error: 'Transaction 5bb777777bbb66cc5d4444ee could not be found',
      }),
    ]);
  });

  it('the documented bash client breaks on a JSON body with spaces, and works with it from a file (as the README says)', async () => {
    const tasks = env.db.collection('tasks');
    const before = await tasks.countDocuments();
    // As its docs write the header: without a space (with one, the header is split too).
    const args = [`${baseUrl}/tasks`, '-H', 'Content-Type:application/json'];
    const spaced = await runBashClient(ROOT_EMAIL, ROOT_PASSWORD, [...args, '-d', SPACED_BODY]);
    expect(spaced.status).not.toBe(201);
    expect(await tasks.countDocuments()).toBe(before);

    const file = await writeTempFile(SPACED_BODY);
    try {
      const fromFile = await runBashClient(ROOT_EMAIL, ROOT_PASSWORD, [...args, '-d', `@${file}`]);
      expect(fromFile.status).toBe(201);
    } finally {
      await rm(file, { force: true });
    }
    expect(await tasks.countDocuments()).toBe(before + 1);
  });
});

import { findFreePort } from '../../src/common/net/free-port';
import { distEntry, mongoWireCli, runNode, RunningProcess, stopProcess } from '../support/processes';
import { waitFor } from '../support/wait';
import { bash, readmeBlock } from '../support/readme-blocks';

/**
 * Every key OpenHIM core 8.5 reads under `mongo`, `api` and `rerun` that the README's override may
 * set: its `config/default.json` at tag v8.5.0 (core reads `conf`, then `config/<NODE_ENV>.json`,
 * then that file: `src/config/config.js`).
 */
const CORE_85_KEYS = [
  'mongo.url',
  'mongo.atnaUrl',
  'api.port',
  'api.sessionKey',
  'api.protocol',
  'rerun.host',
  'rerun.httpPort',
  'rerun.processor.enabled',
  'rerun.processor.pollPeriodMillis',
];

/** The README's one-host block, as text. */
const oneHostBlock = () => readmeBlock('core8-one-host');

/** Its commands, one per entry (continuation lines joined; comments and heredoc bodies dropped). */
function commands(block: string): string[] {
  return block
    .replace(/<<'EOF'\n[\s\S]*?\nEOF\n/g, "<<'EOF'\n")
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** `NAME=value` (bare, or in single quotes) words at the start of a command line. */
function assignments(line: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [, name, quoted, bare] of line.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=(?:'([^']*)'|(\S+))/g)) {
    env[name] = quoted ?? bare;
  }
  return env;
}

function flatKeys(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => flatKeys(child, prefix ? `${prefix}.${key}` : key));
}

/**
 * README "Next to OpenHIM core 8", on one host: core's override file is what core 8.5 reads (its
 * poller off, its API left on 8080, the shared database, session key and rerun port), and the
 * service's part runs as written (ports swapped for free ones): the embedded database, the service
 * with the block's environment line on the block's port, then the block's curl checks.
 */
describe('README: next to OpenHIM core 8 on one host', () => {
  let block: string;
  let lines: string[];
  let core: Record<string, any>;
  let corePath: string;
  let serviceLine: string;
  let serviceEnv: Record<string, string>;

  beforeAll(async () => {
    block = await oneHostBlock();
    lines = commands(block);
    const heredoc = /cat > (\S+) <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(block);
    if (!heredoc) throw new Error('the block writes no core override file');
    core = JSON.parse(heredoc[2]) as Record<string, any>;
    corePath = heredoc[1];
    serviceLine = lines.find((line) => /^MONGODB_URI=.* npm start &$/.test(line)) ?? '';
    serviceEnv = assignments(serviceLine);
  });

  it("gives core 8.5 an override it reads, agreeing with the service's settings", () => {
    const override = core;
    expect(flatKeys(override).filter((key) => !CORE_85_KEYS.includes(key))).toEqual([]);
    expect(override.rerun.processor.enabled).toBe(false);
    expect(override.api.port).toBe(8080); // where the console points
    // Core reads the file named by `conf` (src/config/config.js at v8.5.0).
    expect(lines).toContainEqual(expect.stringContaining(`conf=${corePath} npm start`));

    expect(Object.keys(serviceEnv).sort()).toEqual(
      ['API_PORT', 'CORS_ORIGINS', 'MONGODB_URI', 'OPENHIM_SESSION_KEY', 'RERUN_HOST', 'RERUN_HTTP_PORT'].sort(),
    );
    expect(serviceEnv.MONGODB_URI).toBe(override.mongo.url);
    expect(override.mongo.atnaUrl).toBe(override.mongo.url);
    expect(serviceEnv.OPENHIM_SESSION_KEY).toBe(override.api.sessionKey);
    expect(serviceEnv.RERUN_HOST).toBe(override.rerun.host);
    expect(Number(serviceEnv.RERUN_HTTP_PORT)).toBe(override.rerun.httpPort);
    expect(Number(serviceEnv.API_PORT)).not.toBe(override.api.port);
    const mongoServer = lines.find((line) => line.startsWith('npm run mongo-server -- ')) ?? '';
    expect(mongoServer).toContain(`--port ${new URL(override.mongo.url).port} `);
  });

  describe("the service's part, run", () => {
    let database: RunningProcess | undefined;
    let service: RunningProcess | undefined;
    /** The block's ports (database, API, core's rerun port) and the free ones used instead. */
    const ports: Array<[string, string]> = [];
    const swapped = (text: string) =>
      ports.reduce((out, [from, to]) => out.replace(new RegExp(`\\b${from}\\b`, 'g'), to), text);

    beforeAll(async () => {
      const stated = [new URL(serviceEnv.MONGODB_URI).port, serviceEnv.API_PORT, serviceEnv.RERUN_HTTP_PORT];
      for (const port of stated) ports.push([port, String(await findFreePort())]);

      const mongoServer = swapped(lines.find((line) => line.startsWith('npm run mongo-server -- ')) ?? '');
      const args = mongoServer
        .replace(/^npm run mongo-server -- /, '')
        .replace(/\s*&$/, '')
        .split(/\s+/);
      database = runNode(mongoWireCli(), args);
      await database.waitForOutput(/MongoDB-compatible server listening at/);

      service = runNode(distEntry('main.js'), [], assignments(swapped(serviceLine)));
      await service.waitForOutput(/listening at https:\/\/localhost/, 25000);
    });
    afterAll(async () => {
      await stopProcess(service);
      await stopProcess(database);
    });

    it('is healthy on the stated port and takes a task from curl -u', async () => {
      const checks = lines.filter((line) => line.startsWith('curl '));
      expect(checks).toHaveLength(2);
      const [health, create] = checks.map(swapped);
      expect(health).not.toBe(checks[0]);

      const answer = await bash(`${health} -s -o /dev/null -w '%{http_code}'`);
      expect(answer.stdout).toBe('200');
      expect(JSON.parse((await bash(health)).stdout)).toEqual({ status: 'ok', mongo: 'up', redis: 'up' });

      expect(create).toContain('curl -k -u root@openhim.org:openhim-password');
      const created = await bash(create);
      expect({ code: created.code, stdout: created.stdout }).toEqual({
        code: 0,
        stdout: expect.stringMatching(/^User root@openhim\.org created task with id [0-9a-f]{24}$/),
      });
    });

    it("answers the console's origin (CORS_ORIGINS) with CORS and credentials", async () => {
      const url = swapped(`https://localhost:${serviceEnv.API_PORT}/tasks`);
      const preflight = await waitFor('the preflight answer', async () => {
        const result = await bash(
          `curl -k -s -o /dev/null -D - -X OPTIONS '${url}' -H 'Origin: ${serviceEnv.CORS_ORIGINS}' ` +
            `-H 'Access-Control-Request-Method: POST'`,
        );
        return result.stdout || undefined;
      });
      expect(preflight.toLowerCase()).toContain(
        `access-control-allow-origin: ${serviceEnv.CORS_ORIGINS.toLowerCase()}`,
      );
      expect(preflight.toLowerCase()).toContain('access-control-allow-credentials: true');
    });
  });
});

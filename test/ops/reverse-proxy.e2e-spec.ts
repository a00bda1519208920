import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { loadTls } from '../../src/bootstrap/tls';
import { findFreePort } from '../../src/common/net/free-port';
import { loadConfig } from '../../src/config/app-config';
import { ROOT_EMAIL, ROOT_PASSWORD, tokenHeaders } from '../support/openhim-auth';
import { CORE_DEFAULT_SESSION_KEY, coreSessionCookie, insertCoreSession } from '../support/openhim8';
import { TestEnvironment } from '../support/test-environment';
import { waitFor } from '../support/wait';

const ROOT_SALT = 'd9bcb40e-ae65-478f-962e-5e5e5e7d0a01';
const CONSOLE = 'https://console.example.org';

/** The nginx block of the README, as an operator copies it. */
async function readmeNginxBlock(): Promise<string> {
  const readme = await readFile(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.split('<!-- nginx-example:start -->')[1]?.split('<!-- nginx-example:end -->')[0];
  const block = section ? /```nginx\n([\s\S]*?)```/.exec(section)?.[1] : undefined;
  if (!block) throw new Error('README.md has no nginx example between its nginx-example markers');
  return block;
}

/**
 * The README's reverse-proxy layout for OpenHIM 8, run for real: nginx with the README's server
 * block (addresses and certificate paths replaced, nothing else) in front of this service and a
 * stand-in for OpenHIM core that records what reaches it.
 */
describe('reverse proxy in front of core and this service (README nginx example)', () => {
  let env: TestEnvironment;
  let dir: string;
  let nginx: ChildProcess;
  let nginxLog = '';
  let proxyUrl: string;
  let core: https.Server;
  const coreSaw: string[] = [];

  beforeAll(async () => {
    env = await TestEnvironment.start();
    const { baseUrl } = await env.startApi({
      OPENHIM_SESSION_KEY: CORE_DEFAULT_SESSION_KEY,
      CORS_ORIGINS: CONSOLE,
      TRUST_PROXY: '1',
      AUTH_FAILURE_LIMIT: '0',
    });
    const tls = await loadTls(loadConfig({}));
    core = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      coreSaw.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ core: true }));
    });
    core.listen(0, '127.0.0.1');
    await once(core, 'listening');

    dir = await mkdtemp(join(tmpdir(), 'openhim-proxy-'));
    // nginx workers may run as another user: they must read the certificate and write the temp dirs.
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'proxy.crt'), tls.cert);
    await writeFile(join(dir, 'proxy.key'), tls.key, { mode: 0o644 });
    for (const temp of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      await mkdir(join(dir, temp));
      await chmod(join(dir, temp), 0o777);
    }
    const port = await findFreePort();
    const server = (await readmeNginxBlock())
      .replace('listen 8080 ssl;', `listen 127.0.0.1:${port} ssl;`)
      .replace('https://rerun-api:8080', baseUrl)
      .replace('https://openhim-core:8080', `https://127.0.0.1:${(core.address() as AddressInfo).port}`)
      .replace('/etc/nginx/certs/openhim.crt', join(dir, 'proxy.crt'))
      .replace('/etc/nginx/certs/openhim.key', join(dir, 'proxy.key'));
    const temps = ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
      .map((temp) => `${temp === 'body' ? 'client_body' : temp}_temp_path ${join(dir, temp)};`)
      .join('\n');
    await writeFile(
      join(dir, 'nginx.conf'),
      `daemon off;\npid ${join(dir, 'nginx.pid')};\nerror_log stderr warn;\nevents {}\n` +
        `http {\naccess_log off;\n${temps}\n${server}\n}\n`,
    );
    nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stderr?.on('data', (chunk: Buffer) => (nginxLog += chunk.toString()));
    nginx.once('error', (error) => (nginxLog += `\ncould not start nginx (is it installed?): ${error.message}`));
    proxyUrl = `https://127.0.0.1:${port}`;
    await waitFor(
      `nginx listening on ${port}`,
      async () => {
        if (nginx.exitCode !== null || nginx.signalCode !== null) throw new Error(`nginx exited:\n${nginxLog}`);
        return (await request(proxyUrl).get('/heartbeat')).status === 200;
      },
      15000,
    );
  });

  afterAll(async () => {
    nginx?.kill('SIGTERM');
    if (nginx && nginx.exitCode === null) await once(nginx, 'exit');
    core?.close();
    await env?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const lastAtCore = () => coreSaw[coreSaw.length - 1];

  it('sends /tasks, /tasks/* and /bulkrerun here, with query strings and bodies', async () => {
    const before = coreSaw.length;
    const list = await request(proxyUrl)
      .get('/tasks?filterPage=0&filterLimit=10&filters={}')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .expect(200);
    expect(Array.isArray(list.body)).toBe(true);
    await request(proxyUrl)
      .get('/tasks/abc')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .expect(400, 'Invalid task id "abc": expected a 24-character hex id');
    const dryRun = await request(proxyUrl)
      .post('/bulkrerun')
      .set(tokenHeaders(ROOT_EMAIL, ROOT_PASSWORD, ROOT_SALT))
      .send({ filters: '{}', dryRun: true })
      .expect(200);
    expect(dryRun.body).toEqual({ dryRun: true, count: 0, tasks: [] });
    expect(coreSaw.length).toBe(before);
  });

  it.each([
    ['POST', '/authenticate/local'],
    ['GET', '/me'],
    ['GET', '/logout'],
    ['GET', '/transactions?filterLimit=20'],
    ['GET', '/channels'],
    ['GET', '/tasksummary'],
    ['GET', '/bulkreruns'],
  ])('sends %s %s to core', async (method, path) => {
    const response = await request(proxyUrl)[method === 'GET' ? 'get' : 'post'](path).expect(200);
    expect(response.body).toEqual({ core: true });
    expect(lastAtCore()).toBe(`${method} ${path}`);
  });

  it("carries the console's session cookie here: changes from the console's origin pass, from another site not", async () => {
    const cookie = coreSessionCookie(await insertCoreSession(env.db, ROOT_EMAIL));
    const sample = { tids: ['5bb777777bbb66cc5d4444ee'], paused: true };
    await request(proxyUrl).post('/tasks').set({ Cookie: cookie, Origin: CONSOLE }).send(sample).expect(201);
    await request(proxyUrl)
      .post('/tasks')
      .set({ Cookie: cookie, Origin: 'https://evil.example' })
      .send(sample)
      .expect(403);
    const preflight = await request(proxyUrl)
      .options('/tasks')
      .set({ Origin: CONSOLE, 'Access-Control-Request-Method': 'PUT' })
      .expect(204);
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
  });
});

import { spawn } from 'node:child_process';
import { AddressInfo, createServer } from 'node:net';
import * as path from 'node:path';
import { MongoClient } from 'mongodb';
import { parseArgs, runCli } from '../src/cli';

/** Runs the CLI's `main` from the TypeScript sources in a child process (a tiny transpile-only hook). */
function spawnCli(args: string[]) {
  const ts = require.resolve('typescript');
  const cli = path.join(__dirname, '..', 'src', 'cli.ts');
  const script = `
    const ts = require(${JSON.stringify(ts)});
    const fs = require('fs');
    require.extensions['.ts'] = (m, filename) => {
      const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
        fileName: filename,
      });
      m._compile(out.outputText, filename);
    };
    require(${JSON.stringify(cli)}).main(${JSON.stringify(args)});
  `;
  const child = spawn(process.execPath, ['-e', script], {
    cwd: path.resolve(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (output.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output.stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output, exited };
}

describe('mongo-wire: CLI', () => {
  it('parses --port and --host', () => {
    expect(parseArgs(['--port', '1234'])).toEqual({ host: '127.0.0.1', port: 1234 });
    expect(parseArgs(['--port=0', '--host', '0.0.0.0'])).toEqual({ host: '0.0.0.0', port: 0 });
    expect(() => parseArgs(['--port', 'x'])).toThrow(/invalid port/);
    expect(() => parseArgs(['--nope'])).toThrow(/unknown argument/);
  });

  it('runCli starts a server and prints exactly one ready line', async () => {
    const lines: string[] = [];
    const running = await runCli(['--port', '0'], (l) => lines.push(l));
    try {
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(`MongoDB-compatible server listening at mongodb://127.0.0.1:${running.server.port}`);
      const client = new MongoClient(`mongodb://127.0.0.1:${running.server.port}/cli?directConnection=true`);
      try {
        await client.db().collection('c').insertOne({ a: 1 });
        expect(await client.db().collection('c').countDocuments()).toBe(1);
      } finally {
        await client.close();
      }
    } finally {
      await running.stop();
    }
  });

  it('runs as a process and exits 0 on SIGTERM', async () => {
    const { child, output, exited } = spawnCli(['--port', '0']);
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', () => {
        if (output.stdout.includes('\n')) resolve(output.stdout.split('\n')[0]);
      });
      child.on('exit', () => reject(new Error(`cli exited early: ${output.stderr}`)));
    });
    const m = /^MongoDB-compatible server listening at (mongodb:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    expect(m).not.toBeNull();
    const client = new MongoClient(`${m![1]}/x?directConnection=true`);
    try {
      expect((await client.db().command({ ping: 1 })).ok).toBe(1);
    } finally {
      await client.close();
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output.stdout.trim().split('\n')).toHaveLength(1);
  }, 30_000);

  it('--help prints the usage on stdout and exits 0', async () => {
    const { output, exited } = spawnCli(['--help']);
    expect(await exited).toBe(0);
    expect(output.stdout).toContain('usage: npm run mongo-server -- [--port <n>]');
    expect(output.stdout).toContain('--dbpath <dir>');
    expect(output.stderr).toBe('');
  }, 30_000);

  it('a bad argument: the problem and the usage on stderr, exit 2', async () => {
    const { output, exited } = spawnCli(['--port', 'x']);
    expect(await exited).toBe(2);
    expect(output.stderr).toMatch(/^mongo-wire: invalid port: x\nusage: /);
    expect(output.stdout).toBe('');
  }, 30_000);

  it('a port in use: one line naming the port and what to do, exit 1', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const { output, exited } = spawnCli(['--port', String(port)]);
      expect(await exited).toBe(1);
      expect(output.stderr).toBe(
        `mongo-wire: cannot listen on 127.0.0.1:${port}: port ${port} is already in use by another process. ` +
          'Stop that process, or choose another --port (0 = any free port).\n',
      );
    } finally {
      taken.close();
    }
  }, 30_000);

  it('parses --help before anything else is checked', () => {
    expect(parseArgs(['--help'])).toMatchObject({ help: true });
    expect(parseArgs(['--port', '1', '--help', '--nope'])).toMatchObject({ help: true });
  });
});

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { MongoClient } from 'mongodb';
import { parseArgs, runCli } from './cli';

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
    // Load the TypeScript sources in a child process with a tiny transpile-only hook.
    const ts = require.resolve('typescript');
    const cli = path.join(__dirname, 'cli.ts');
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
      require(${JSON.stringify(cli)}).main(['--port', '0']);
    `;
    const child = spawn(process.execPath, ['-e', script], {
      cwd: path.resolve(__dirname, '../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
      });
      child.on('exit', () => reject(new Error(`cli exited early: ${stderr}`)));
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
    expect(stdout.trim().split('\n')).toHaveLength(1);
  }, 30_000);
});

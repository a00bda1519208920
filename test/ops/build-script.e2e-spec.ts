import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// scripts/build.js, on a small project of its own: `npm start` builds only when an input changed.
const repo = join(__dirname, '..', '..');

describe('scripts/build.js --if-changed (what npm start, start:api, start:worker, mongo-server and npm test run first)', () => {
  let project: string;

  const write = (path: string, text: string) => {
    mkdirSync(join(project, path, '..'), { recursive: true });
    writeFileSync(join(project, path), text);
  };
  const build = (...args: string[]) => {
    const run = spawnSync(process.execPath, [join(project, 'scripts', 'build.js'), ...args], {
      cwd: project,
      encoding: 'utf8',
    });
    return { status: run.status, output: `${run.stdout}${run.stderr}`, built: /building \(tsc\)/.test(run.stderr) };
  };
  const mtime = (path: string) => statSync(join(project, 'dist', path)).mtimeMs;

  beforeAll(() => {
    project = mkdtempSync(join(tmpdir(), 'build-script-'));
    mkdirSync(join(project, 'scripts'));
    copyFileSync(join(repo, 'scripts', 'build.js'), join(project, 'scripts', 'build.js'));
    symlinkSync(join(repo, 'node_modules'), join(project, 'node_modules'));
    write(
      'tsconfig.json',
      JSON.stringify({ compilerOptions: { module: 'commonjs', target: 'ES2022', strict: true, types: [] } }),
    );
    write(
      'tsconfig.build.json',
      JSON.stringify({
        extends: './tsconfig.json',
        compilerOptions: { rootDir: './src', outDir: './dist' },
        include: ['src/**/*.ts'],
      }),
    );
    write('package-lock.json', '{}');
    for (const entry of ['main', 'main.api', 'main.worker'])
      write(`src/${entry}.ts`, `export const entry = '${entry}';\n`);
    // A workspace package (as packages/mongo-wire): built first, to its own dist/.
    write('packages/mongo-wire/package.json', JSON.stringify({ name: 'mongo-wire-fixture', main: 'dist/index.js' }));
    write(
      'packages/mongo-wire/tsconfig.build.json',
      JSON.stringify({
        compilerOptions: {
          module: 'commonjs',
          target: 'ES2022',
          types: [],
          declaration: true,
          rootDir: './src',
          outDir: './dist',
        },
        include: ['src/**/*.ts'],
        exclude: ['**/*.spec.ts'],
      }),
    );
    for (const entry of ['index', 'cli'])
      write(`packages/mongo-wire/src/${entry}.ts`, `export const entry = '${entry}';\n`);
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it('builds a fresh clone', () => {
    const first = build('--if-changed');
    expect(first).toMatchObject({ status: 0, built: true });
    expect(existsSync(join(project, 'dist', 'main.js'))).toBe(true);
    expect(existsSync(join(project, 'packages', 'mongo-wire', 'dist', 'cli.js'))).toBe(true);
    expect(existsSync(join(project, 'packages', 'mongo-wire', 'dist', 'index.d.ts'))).toBe(true);
  });

  it('does nothing when no input changed', () => {
    const before = mtime('main.js');
    expect(build('--if-changed')).toEqual({ status: 0, output: '', built: false });
    expect(mtime('main.js')).toBe(before);
  });

  it('rebuilds after a source is edited, added or deleted', () => {
    write('src/main.ts', "export const entry = 'edited';\n");
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(readFileSync(join(project, 'dist', 'main.js'), 'utf8')).toContain("'edited'");

    write('src/extra.ts', 'export const extra = 1;\n');
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(existsSync(join(project, 'dist', 'extra.js'))).toBe(true);

    rmSync(join(project, 'src', 'extra.ts'));
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(build('--if-changed')).toMatchObject({ status: 0, built: false });
  });

  it("rebuilds after a workspace package's source, package.json or compiler settings change", () => {
    write('packages/mongo-wire/src/index.ts', "export const entry = 'package edited';\n");
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(readFileSync(join(project, 'packages', 'mongo-wire', 'dist', 'index.js'), 'utf8')).toContain(
      'package edited',
    );
    expect(build('--if-changed')).toMatchObject({ status: 0, built: false });

    write('packages/mongo-wire/src/extra.ts', 'export const extra = 2;\n');
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(existsSync(join(project, 'packages', 'mongo-wire', 'dist', 'extra.js'))).toBe(true);

    // Specs are no input: editing one builds nothing.
    write('packages/mongo-wire/src/extra.spec.ts', 'export const spec = 1;\n');
    expect(build('--if-changed')).toMatchObject({ status: 0, built: false });

    for (const file of ['package.json', 'tsconfig.build.json']) {
      write(`packages/mongo-wire/${file}`, readFileSync(join(project, 'packages', 'mongo-wire', file), 'utf8') + '\n');
      expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    }
    expect(build('--if-changed')).toMatchObject({ status: 0, built: false });
  });

  it('rebuilds after the dependencies or the compiler settings change', () => {
    write('package-lock.json', '{"lockfileVersion": 3}');
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    write('tsconfig.build.json', readFileSync(join(project, 'tsconfig.build.json'), 'utf8') + '\n');
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(build('--if-changed')).toMatchObject({ status: 0, built: false });
  });

  it('builds an entry point that went missing from dist', () => {
    rmSync(join(project, 'dist', 'main.api.js'));
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(existsSync(join(project, 'dist', 'main.api.js'))).toBe(true);

    rmSync(join(project, 'packages', 'mongo-wire', 'dist', 'cli.js'));
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
    expect(existsSync(join(project, 'packages', 'mongo-wire', 'dist', 'cli.js'))).toBe(true);
  });

  it('fails on a type error in a workspace package, before building the service', () => {
    write('packages/mongo-wire/src/broken.ts', 'export const n: number = "not a number";\n');
    const failed = build('--if-changed');
    expect(failed.status).not.toBe(0);
    expect(failed.output).toMatch(/packages\/mongo-wire\/src\/broken\.ts.*error TS2322/);
    rmSync(join(project, 'packages', 'mongo-wire', 'src', 'broken.ts'));
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
  });

  it('fails on a type error, and tries again next time', () => {
    write('src/broken.ts', 'export const n: number = "not a number";\n');
    const failed = build('--if-changed');
    expect(failed.status).not.toBe(0);
    expect(failed.output).toMatch(/error TS2322/);
    expect(failed.output).toMatch(/Build failed \(tsc exited with \d+\): fix the errors above/);
    expect(build('--if-changed').built).toBe(true);
    rmSync(join(project, 'src', 'broken.ts'));
    expect(build('--if-changed')).toMatchObject({ status: 0, built: true });
  });

  it('always builds without --if-changed (npm run build)', () => {
    expect(build().status).toBe(0);
    expect(build('--if-changed').built).toBe(false);
  });
});

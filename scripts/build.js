#!/usr/bin/env node
// Builds the workspace packages (packages/*/dist) and then the service (dist/) with tsc,
// incrementally.
//
//   node scripts/build.js               build (what `npm run build` does)
//   node scripts/build.js --if-changed  build only when an input changed since the last build
//
// Packages first: the service imports them by package name, through node_modules, from their
// built dist/ (tsconfig.build.json resolves their declarations there). A package is a directory
// under packages/ with a tsconfig.build.json (packages/mongo-wire: the embedded MongoDB-compatible
// server).
//
// Inputs are src/**/*.ts and packages/*/src/**/*.ts (without specs), tsconfig.json,
// tsconfig.build.json, package-lock.json, and each package's package.json and tsconfig*.json;
// their names, sizes and modification times are fingerprinted into dist/.build-inputs after a
// successful build, so `npm start` skips tsc (about 15 s) when nothing changed, and rebuilds after
// any edit, new or deleted file, checkout or dependency change.
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { join, relative } = require('node:path');

const root = join(__dirname, '..');
const dist = join(root, 'dist');
const stampFile = join(dist, '.build-inputs');
const buildInfo = join(dist, '.tsbuildinfo');
const packagesDir = join(root, 'packages');
const SERVICE_ENTRY_POINTS = ['main.js', 'main.api.js', 'main.worker.js'];
/** What each package must have in its dist/ (its `main` and its command line, when present). */
const PACKAGE_ENTRY_POINTS = ['index.js', 'cli.js'];

/** The workspace packages that build with tsc, by name (sorted: a stable build order). */
function packages() {
  if (!existsSync(packagesDir)) return [];
  return readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(packagesDir, entry.name, 'tsconfig.build.json')))
    .map((entry) => entry.name)
    .sort();
}

function sources(dir, found = []) {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) sources(path, found);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) found.push(path);
  }
  return found;
}

/** One hash over every input's path, size and modification time. */
function fingerprint() {
  const inputs = [
    ...sources(join(root, 'src')),
    ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((name) => join(root, name)),
  ];
  for (const name of packages()) {
    const dir = join(packagesDir, name);
    inputs.push(...sources(join(dir, 'src')));
    inputs.push(...['package.json', 'tsconfig.json', 'tsconfig.build.json'].map((file) => join(dir, file)));
  }
  inputs.sort();
  const hash = createHash('sha256');
  for (const path of inputs) {
    const stat = existsSync(path) ? statSync(path) : undefined;
    hash.update(`${relative(root, path)}\0${stat ? `${stat.size}:${stat.mtimeMs}` : 'missing'}\n`);
  }
  return hash.digest('hex');
}

/** A package's entry points that its sources have (src/cli.ts → dist/cli.js) but its dist lacks. */
function packageMissing(name) {
  const dir = join(packagesDir, name);
  return PACKAGE_ENTRY_POINTS.some(
    (entry) => existsSync(join(dir, 'src', entry.replace(/\.js$/, '.ts'))) && !existsSync(join(dir, 'dist', entry)),
  );
}

const serviceMissing = () => SERVICE_ENTRY_POINTS.some((entry) => !existsSync(join(dist, entry)));
const entryPointsMissing = () => serviceMissing() || packages().some(packageMissing);

function upToDate(current) {
  if (!existsSync(stampFile) || entryPointsMissing()) return false;
  return readFileSync(stampFile, 'utf8').trim() === current;
}

function tsc(project, tsBuildInfoFile) {
  const compiler = require.resolve('typescript/bin/tsc');
  const args = [compiler, '-p', project, '--incremental', '--tsBuildInfoFile', tsBuildInfoFile];
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`Build failed (tsc exited with ${result.status ?? result.signal}): fix the errors above.\n`);
    process.exit(result.status || 1);
  }
}

function build() {
  const before = fingerprint();
  const started = Date.now();
  if (process.argv.includes('--if-changed'))
    process.stderr.write('Sources changed since the last build: building (tsc)...\n');
  // Until this build succeeds, dist matches no inputs.
  rmSync(stampFile, { force: true });
  // tsc's incremental state does not notice deleted outputs: without an entry point, build everything.
  for (const name of packages()) {
    const dir = join(packagesDir, name);
    const info = join(dir, 'dist', '.tsbuildinfo');
    if (packageMissing(name)) rmSync(info, { force: true });
    tsc(join('packages', name, 'tsconfig.build.json'), info);
  }
  if (serviceMissing()) rmSync(buildInfo, { force: true });
  tsc('tsconfig.build.json', buildInfo);
  // Inputs edited while tsc ran are built next time: the fingerprint is the one taken before.
  writeFileSync(stampFile, `${before}\n`);
  if (process.argv.includes('--if-changed'))
    process.stderr.write(`Built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

if (process.argv.includes('--if-changed') && upToDate(fingerprint())) process.exit(0);
build();

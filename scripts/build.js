#!/usr/bin/env node
// Builds dist/ with tsc (tsconfig.build.json), incrementally.
//
//   node scripts/build.js               build (what `npm run build` does)
//   node scripts/build.js --if-changed  build only when an input changed since the last build
//
// Inputs are src/**/*.ts (without specs), tsconfig.json, tsconfig.build.json and package-lock.json;
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
const ENTRY_POINTS = ['main.js', 'main.api.js', 'main.worker.js', 'mongo-wire/cli.js'];

function sources(dir, found = []) {
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
  ].sort();
  const hash = createHash('sha256');
  for (const path of inputs) {
    const stat = existsSync(path) ? statSync(path) : undefined;
    hash.update(`${relative(root, path)}\0${stat ? `${stat.size}:${stat.mtimeMs}` : 'missing'}\n`);
  }
  return hash.digest('hex');
}

const entryPointsMissing = () => ENTRY_POINTS.some((entry) => !existsSync(join(dist, entry)));

function upToDate(current) {
  if (!existsSync(stampFile) || entryPointsMissing()) return false;
  return readFileSync(stampFile, 'utf8').trim() === current;
}

function build() {
  const before = fingerprint();
  const started = Date.now();
  if (process.argv.includes('--if-changed'))
    process.stderr.write('Sources changed since the last build: building (tsc)...\n');
  // Until this build succeeds, dist matches no inputs.
  rmSync(stampFile, { force: true });
  // tsc's incremental state does not notice deleted outputs: without an entry point, build everything.
  if (entryPointsMissing()) rmSync(buildInfo, { force: true });
  const tsc = require.resolve('typescript/bin/tsc');
  const args = [tsc, '-p', 'tsconfig.build.json', '--incremental', '--tsBuildInfoFile', buildInfo];
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`Build failed (tsc exited with ${result.status ?? result.signal}): fix the errors above.\n`);
    process.exit(result.status || 1);
  }
  // Inputs edited while tsc ran are built next time: the fingerprint is the one taken before.
  writeFileSync(stampFile, `${before}\n`);
  if (process.argv.includes('--if-changed'))
    process.stderr.write(`Built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

if (process.argv.includes('--if-changed') && upToDate(fingerprint())) process.exit(0);
build();

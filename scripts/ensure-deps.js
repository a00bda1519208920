#!/usr/bin/env node
// Lets `npm start` and `npm test` work on a fresh clone: installs the locked dependencies when
// node_modules is missing or older than package-lock.json, or a workspace package (packages/*) is
// not linked into it.
const { existsSync, readdirSync, readFileSync, statSync } = require('node:fs');
const { execSync } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');

/** node_modules/<name> of every workspace package: `npm ci` links them there. */
function workspaceLinks() {
  const dir = join(root, 'packages');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => join(dir, name, 'package.json'))
    .filter((file) => existsSync(file))
    .map((file) => join(root, 'node_modules', JSON.parse(readFileSync(file, 'utf8')).name));
}

const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs;
if (stale || workspaceLinks().some((link) => !existsSync(link))) {
  process.stderr.write('Installing dependencies (npm ci)...\n');
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}

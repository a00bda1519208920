/**
 * Preload for profiling a spawned process (`--cpu-prof` is not allowed in NODE_OPTIONS):
 *   BENCH_WORKER_NODE_OPTIONS="--require $PWD/bench/cpu-profile.cjs" CPU_PROFILE_DIR=/tmp/prof npm run bench
 * writes <CPU_PROFILE_DIR>/<pid>.cpuprofile (open it in Chrome DevTools) when the process exits.
 */
/* global require, process */
/* eslint-disable @typescript-eslint/no-require-imports */
const { Session } = require('node:inspector');
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.CPU_PROFILE_DIR || '/tmp';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: Number(process.env.CPU_PROFILE_INTERVAL_US || 1000) });
session.post('Profiler.start');
process.on('exit', () => {
  // A session on the main thread answers synchronously, so this still runs inside 'exit'.
  session.post('Profiler.stop', (error, result) => {
    if (error) return;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
  });
});

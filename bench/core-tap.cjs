/**
 * Preload for OpenHIM core in `npm run bench:openhim-core` (its cluster worker inherits it):
 * counts the TCP connections each listening port of the process accepted, and writes them as JSON
 * (`{"<port>": count}`) to CORE_TAP_FILE every 200 ms while they change. The bench reads the
 * count of core's rerun port before and after a run: connections opened per rerun, i.e. whether
 * the sender reuses its keep-alive connections.
 */
/* global require, process, setInterval */
/* eslint-disable @typescript-eslint/no-require-imports */
const net = require('node:net');
const { writeFileSync } = require('node:fs');

const file = process.env.CORE_TAP_FILE;
if (file) {
  const counts = {};
  let changed = false;
  const emit = net.Server.prototype.emit;
  net.Server.prototype.emit = function (event, ...args) {
    if (event === 'connection') {
      const port = this.address()?.port;
      if (port !== undefined) {
        counts[port] = (counts[port] ?? 0) + 1;
        changed = true;
      }
    }
    return emit.call(this, event, ...args);
  };
  setInterval(() => {
    if (!changed) return;
    changed = false;
    writeFileSync(`${file}.${process.pid}`, JSON.stringify(counts));
  }, 200).unref();
}

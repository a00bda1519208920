/**
 * Preload for the standalone MongoDB-compatible server in `npm run bench:openhim-core`:
 *   NODE_OPTIONS="--require $PWD/bench/mongo-tap.cjs" node packages/mongo-wire/dist/cli.js --port 0
 * Accounts for every command the server runs, per client application (the driver's `appName`,
 * else "driver <version>"; core 4.0.5's drivers send no `appName`), command and collection: how
 * many, the server's time running them (each command runs synchronously to completion: `ns` is
 * wall time, which a busy machine inflates when it preempts the server mid-command; `cpuUs` is the
 * process's CPU time over the command, getrusage), documents examined, collection scans (no index
 * used) and reply bytes.
 * The command `{benchTapStats: 1, reset: true}` answers with the figures so far (and resets them);
 * it is not counted itself. Costs two hrtime reads and a map update per command.
 */
/* global require, process, __dirname */
/* eslint-disable @typescript-eslint/no-require-imports */
const { join } = require('node:path');
const { BSON } = require('bson');
const { Dispatcher } = require(join(__dirname, '..', 'packages', 'mongo-wire', 'dist', 'commands.js'));

const appOf = new Map(); // connection id -> application
let figures = new Map(); // "app|command|collection" -> { count, ns, cpuUs, examined, scans, replyBytes }
const original = Dispatcher.prototype.run;

Dispatcher.prototype.run = function run(body, ctx) {
  const name = Object.keys(body)[0] ?? '';
  const lower = name.toLowerCase();
  if (lower === 'benchtapstats') {
    const out = [...figures.entries()].map(([key, f]) => {
      const [app, command, collection] = key.split('|');
      return { app, command, collection, ...f };
    });
    if (body.reset) figures = new Map();
    return BSON.serialize({ figures: out, ok: 1 });
  }
  if ((lower === 'hello' || lower === 'ismaster') && body.client && !appOf.has(ctx.conn.id)) {
    const client = body.client;
    const app = client.application?.name ?? `driver ${client.driver?.version ?? '?'}`;
    appOf.set(ctx.conn.id, String(app));
  }
  const stats = this.stats;
  const examined = stats.docsExamined;
  const scans = stats.collectionScans;
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const reply = original.call(this, body, ctx);
  const ns = Number(process.hrtime.bigint() - started);
  const used = process.cpuUsage(cpu);
  const target = lower === 'getmore' ? body.collection : body[name];
  const collection = typeof target === 'string' ? target : '';
  const key = `${appOf.get(ctx.conn.id) ?? 'unknown'}|${lower}|${collection}`;
  let entry = figures.get(key);
  if (!entry) figures.set(key, (entry = { count: 0, ns: 0, cpuUs: 0, examined: 0, scans: 0, replyBytes: 0 }));
  entry.count++;
  entry.ns += ns;
  entry.cpuUs += used.user + used.system;
  entry.examined += stats.docsExamined - examined;
  entry.scans += stats.collectionScans - scans;
  entry.replyBytes += reply.length;
  return reply;
};

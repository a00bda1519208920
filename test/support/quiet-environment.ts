import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';
import { Writable } from 'node:stream';

/**
 * The test environment of every suite (package.json, jest.testEnvironment): node's, with the
 * application's log lines kept out of the test output. What the code under test logs (the JSON
 * lines of the process logger, Nest's console lines) is held per test and printed only when that
 * test (or a hook) fails, under a header naming it; everything else a test writes (measured
 * figures) goes through. `TEST_LOGS=1` prints every log line as it is written instead.
 * `TEST_HANDLES=1` names, after each test file, what it left open (servers, sockets, child
 * processes, timers): what keeps a jest worker from exiting.
 */
const SHOW_LOGS = process.env.TEST_LOGS === '1';
const REPORT_HANDLES = process.env.TEST_HANDLES === '1';
/** The most kept per test; older lines are dropped first (a long suite logging at debug). */
const KEEP_BYTES = 2 * 1024 * 1024;
/** A log line: pino's JSON, or Nest's console logger (for code that runs before pino is set up). */
// eslint-disable-next-line no-control-regex -- Nest colours its lines (ESC [ n m)
const LOG_LINE = /^(\{"level":|(\x1b\[\d+m)?\[Nest\] \d+ )/;

export default class QuietEnvironment extends TestEnvironment {
  private held: string[] = [];
  private heldBytes = 0;
  private dropped = 0;
  private readonly testPath: string;
  private handlesBefore = new Set<unknown>();
  private resourcesBefore: string[] = [];

  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    this.testPath = context.testPath;
    if (SHOW_LOGS) return;
    const testProcess = this.global.process;
    for (const name of ['stdout', 'stderr'] as const) {
      const real = process[name];
      Object.defineProperty(testProcess, name, {
        configurable: true,
        enumerable: true,
        value: this.sieve((text) => real.write(text)),
      });
    }
  }

  async setup(): Promise<void> {
    if (REPORT_HANDLES) {
      this.handlesBefore = new Set(activeHandles());
      this.resourcesBefore = process.getActiveResourcesInfo();
    }
    await super.setup();
  }

  async teardown(): Promise<void> {
    await super.teardown();
    if (REPORT_HANDLES) await this.reportHandles();
  }

  /** What this file left open, a second after it ended. */
  private async reportHandles(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const left = activeHandles().filter((handle) => !this.handlesBefore.has(handle));
    const counts = (names: string[]) =>
      names.reduce<Record<string, number>>((all, n) => ({ ...all, [n]: (all[n] ?? 0) + 1 }), {});
    const before = counts(this.resourcesBefore);
    const now = counts(process.getActiveResourcesInfo());
    const grown = Object.keys(now)
      .filter((name) => now[name] > (before[name] ?? 0))
      .map((name) => `${name} +${now[name] - (before[name] ?? 0)}`);
    if (!left.length && !grown.length) return;
    process.stderr.write(`\n── ${this.testPath} left open: ${[...left.map(describeHandle), ...grown].join('; ')} ──\n`);
  }

  /** A stream for the test's process.stdout/stderr: whole log lines are held, the rest passes through. */
  private sieve(pass: (text: string) => void): Writable {
    let partial = '';
    const stream = new Writable({
      decodeStrings: false,
      write: (chunk: string | Buffer, _encoding, done) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        let passed = '';
        for (const line of lines) {
          if (LOG_LINE.test(line)) this.hold(line);
          else passed += `${line}\n`;
        }
        if (passed) pass(passed);
        done();
      },
    });
    // The code under test asks (pino's format, colours): this is not a terminal.
    return Object.assign(stream, { isTTY: false });
  }

  private hold(line: string): void {
    this.held.push(line);
    this.heldBytes += line.length + 1;
    while (this.heldBytes > KEEP_BYTES && this.held.length > 1) {
      this.heldBytes -= this.held.shift()!.length + 1;
      this.dropped++;
    }
  }

  private release(header: string): void {
    if (!this.held.length) return;
    const skipped = this.dropped ? `(${this.dropped} earlier lines dropped)\n` : '';
    process.stderr.write(`\n── logs of ${header} ──\n${skipped}${this.held.join('\n')}\n── end of logs ──\n`);
  }

  private clear(): void {
    this.held = [];
    this.heldBytes = 0;
    this.dropped = 0;
  }

  handleTestEvent(event: Circus.Event): void {
    if (SHOW_LOGS) return;
    switch (event.name) {
      case 'test_done':
        // Lines from the hooks before it (beforeAll, beforeEach) count as the test's.
        if (event.test.errors.length) this.release(`the failed test "${testName(event.test)}"`);
        this.clear();
        break;
      case 'hook_failure':
        this.release(`the failed ${event.hook.type} hook${event.test ? ` of "${testName(event.test)}"` : ''}`);
        this.clear();
        break;
      default:
    }
  }
}

function testName(test: Circus.TestEntry): string {
  const names: string[] = [];
  for (let block: Circus.TestEntry | Circus.DescribeBlock | undefined = test; block; block = block.parent) {
    if (block.name !== 'ROOT_DESCRIBE_BLOCK') names.unshift(block.name);
  }
  return names.join(' › ');
}

function activeHandles(): object[] {
  return (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
}

function describeHandle(handle: object): string {
  const h = handle as Record<string, unknown> & { address?: () => unknown };
  const name = handle.constructor.name;
  if (typeof h.spawnfile === 'string') return `${name} ${h.spawnfile} (pid ${String(h.pid)})`;
  if (typeof h.remotePort === 'number') return `${name} to ${String(h.remoteAddress)}:${h.remotePort}`;
  if (name === 'Server' && typeof h.address === 'function') return `${name} on ${JSON.stringify(h.address())}`;
  return name;
}

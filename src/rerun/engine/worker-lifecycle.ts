import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** This worker process: its name in leases, and whether it is shutting down. */
@Injectable()
export class WorkerLifecycle {
  /** Written into leases; tells an operator which process holds a slot. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private stoppingFlag = false;
  private readonly aborter = new AbortController();

  constructor() {
    // Every in-flight send listens to it (up to WORKER_CONCURRENCY at once).
    setMaxListeners(0, this.aborter.signal);
  }

  /** Lanes start no new item once this is set. */
  get stopping(): boolean {
    return this.stoppingFlag;
  }

  /** Aborted when the shutdown grace period is over: in-flight sends are cut. */
  get signal(): AbortSignal {
    return this.aborter.signal;
  }

  /** Waits `ms`, cut short when this worker begins stopping; false then. */
  async waitUnlessStopping(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    while (!this.stoppingFlag && Date.now() < until) await sleep(Math.min(250, until - Date.now()));
    return !this.stoppingFlag;
  }

  stop(): void {
    this.stoppingFlag = true;
  }

  abortInFlight(): void {
    this.aborter.abort();
  }
}

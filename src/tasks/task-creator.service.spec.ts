import { Logger } from '@nestjs/common';
import { Types } from 'mongoose';
import type { RerunPermissions } from '../auth/rerun-permissions';
import type { RerunScheduler } from '../rerun/rerun-scheduler.service';
import { loadConfig } from '../config/app-config';
import { TaskCreator, TaskSpec } from './task-creator.service';
import type { AutoRetriesRepository } from '../database/repositories/auto-retries.repository';
import type { ChannelsRepository } from '../database/repositories/channels.repository';
import type { TaskItemsRepository } from '../database/repositories/task-items.repository';
import type { TasksRepository } from '../database/repositories/tasks.repository';
import type { TransactionsRepository } from '../database/repositories/transactions.repository';
import type { RerunHoldsRepository } from '../database/repositories/rerun-holds.repository';

/**
 * OpenHIM's side effects of creating tasks (their transactions leave auto-retry) are written in
 * rounds: tasks created while a round is in flight share the next one. Fake repositories record
 * the writes; a gate holds a round in flight.
 */
describe('TaskCreator side effects under a burst of tasks', () => {
  let rounds: string[][];
  let removed: string[];
  let gate: { open: () => void; wait: Promise<void> } | undefined;
  /** The round (counted from 1) whose write fails. */
  let failingRound: number | undefined;

  const hex = (ids: readonly Types.ObjectId[]) => ids.map((id) => id.toHexString());
  const transactions = {
    disableAutoRetry: jest.fn(async (ids: readonly Types.ObjectId[]) => {
      rounds.push(hex(ids));
      const round = rounds.length;
      await gate?.wait;
      if (round === failingRound) throw new Error('connection reset');
    }),
  };
  const autoRetries = {
    removeTransactions: jest.fn(async (ids: readonly Types.ObjectId[]) => {
      removed.push(...hex(ids));
    }),
  };
  const tasks = {
    newId: () => new Types.ObjectId(),
    insertTask: async () => undefined,
    delete: async () => true,
  };
  const items = { insertItems: async () => undefined, deleteForTask: async () => undefined };
  const queue = { schedule: async () => undefined };
  const creator = new TaskCreator(
    tasks as unknown as TasksRepository,
    items as unknown as TaskItemsRepository,
    transactions as unknown as TransactionsRepository,
    {} as ChannelsRepository,
    autoRetries as unknown as AutoRetriesRepository,
    queue as unknown as RerunScheduler,
    {} as RerunPermissions,
    loadConfig({}),
    { holdFor: async () => null, recent: async () => [] } as unknown as RerunHoldsRepository,
  );
  const spec = (tids: string[]): TaskSpec => ({
    tids,
    user: 'root@openhim.org',
    batchSize: 1,
    paused: false,
    pauseAfterFailures: 20,
  });
  const tid = () => new Types.ObjectId().toHexString();
  const holdRounds = () => {
    let open!: () => void;
    gate = { wait: new Promise<void>((resolve) => (open = resolve)), open: () => open() };
  };

  beforeEach(() => {
    rounds = [];
    removed = [];
    gate = undefined;
    failingRound = undefined;
  });

  beforeAll(() => jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined));
  afterAll(() => jest.restoreAllMocks());

  it('splits a burst of large tasks into rounds of at most 100 000 ids (one $in stays small)', async () => {
    holdRounds();
    await creator.store(spec([tid()]));
    const large = Array.from({ length: 3 }, () => Array.from({ length: 60000 }, tid));
    await Promise.all(large.map((tids) => creator.store(spec(tids))));
    gate!.open();
    await creator.settled();
    expect(rounds.map((round) => round.length)).toEqual([1, 60000, 60000, 60000]);
    expect(removed).toHaveLength(180001);
  });

  it('takes every task out of auto-retry, tasks created meanwhile in one shared round', async () => {
    holdRounds();
    const first = [tid()];
    await creator.store(spec(first));
    const later = Array.from({ length: 5 }, () => [tid(), tid()]);
    await Promise.all(later.map((tids) => creator.store(spec(tids))));
    expect(rounds).toEqual([first]); // the later tasks wait for the round in flight
    gate!.open();
    await creator.settled();

    expect(rounds).toEqual([first, later.flat()]);
    expect(removed.sort()).toEqual([...first, ...later.flat()].sort());
  });

  it('settled() resolves only after every round, including one started while waiting', async () => {
    holdRounds();
    await creator.store(spec([tid()]));
    let done = false;
    const settling = creator.settled().then(() => (done = true));
    const late = [tid()];
    await creator.store(spec(late));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    gate!.open();
    await settling;
    expect(rounds.at(-1)).toEqual(late);
  });

  it('a failed round is logged for each of its tasks and does not stop the next one', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    holdRounds();
    failingRound = 2;
    const a = await creator.store(spec([tid()]));
    const [b, c] = await Promise.all([creator.store(spec([tid()])), creator.store(spec([tid()]))]);
    gate!.open();
    await creator.settled();
    const d = await creator.store(spec([tid()]));
    await creator.settled();

    const logged = errors.mock.calls.map(([message]) => String(message));
    expect(logged).toEqual([
      `Task ${b}: could not take its transactions out of auto-retry: connection reset`,
      `Task ${c}: could not take its transactions out of auto-retry: connection reset`,
    ]);
    expect(rounds).toHaveLength(3);
    expect(logged.join()).not.toContain(a);
    expect(logged.join()).not.toContain(d);
    errors.mockRestore();
  });
});

import { Types } from 'mongoose';
import { Slot } from './slot';
import { bounded, within } from '../../database/driver/bounded';
import type { EngineItem, TaskItemsForEngine } from '../../database/repositories/task-items.repository';
import type { TasksForEngine } from '../../database/repositories/tasks.repository';
import type { OriginalTransaction, TransactionsForEngine } from '../../database/repositories/transactions.repository';

/** What a lane gets from the gate: the seq it took and the item, null when the item was already final. */
export interface Started {
  seq: number;
  item: EngineItem | null;
}

interface Waiter {
  slot: Slot;
  resolve: (started: Started | null) => void;
  reject: (error: unknown) => void;
}

interface TaskStarts {
  taskId: Types.ObjectId;
  total: number;
  /** The task's `startAt` (written at creation, never changed). */
  startAt: Date | undefined;
  waiting: Waiter[];
  /** Gates on the wire, at most MAX_GATES. */
  gating: number;
  /** A gate is about to take the waiting lanes (next turn of the event loop). */
  scheduled: boolean;
  /** Items at and after the cursor, read in windows (`_id` and `tid` never change). */
  ahead: Map<number, EngineItem>;
  aheadEnd: number;
  reading?: Promise<void>;
  /** Transactions of the items ahead, read in windows while this worker takes most seqs and bodies are small. */
  originals: OriginalsWindow[];
  /** Seen a body over SMALL_BODY, or most of a window taken by other workers: read per batch from then on. */
  originalsPerBatch: boolean;
  /** Some original was read (any way): windows start only after a first read showed small bodies. */
  originalsRead: boolean;
  usedAt: number;
}

interface OriginalsWindow {
  from: number;
  to: number;
  /** The seqs whose originals this window reads (those with an item known when it was read). */
  seqs: Set<number>;
  /** How many of them this worker claimed (the others went to other workers). */
  taken: number;
  read: Promise<Map<string, OriginalTransaction>>;
}

/** Items read ahead of the cursor per task (small documents: bounded memory per task in a worker). */
const READ_AHEAD = 128;
/**
 * The transactions of the items ahead read in one query per this many seqs (instead of one query
 * per batch of lanes, ~4 items in the bench: a quarter of a MongoDB command per rerun), while this
 * worker takes most of them and their bodies are small; held until claimed, so at most a few
 * windows of small documents per task.
 */
const ORIGINALS_WINDOW = 32;
/** A request body longer than this (characters) stops windowed reads of the task's originals. */
const SMALL_BODY = 64 * 1024;
/** A task no lane of this worker asked about for this long is forgotten. */
const IDLE_MS = 30000;
/**
 * Gates of one task on the wire at once. With one, a lane whose rerun is answered while a gate is
 * on the wire waits for that gate's answer before its own is sent: measured through OpenHIM core at
 * batchSize 10, a quarter of the time between an answer and the lane's next send. With two, it goes
 * at once; lanes answered meanwhile still join one batch.
 */
const MAX_GATES = 2;

/**
 * Gates and claims for the lanes of one task in this worker that want their next item at the same
 * time: one update of the task document and one bulk claim instead of one of each per lane, with
 * the items and their transactions read ahead in windows instead of once per item (per-item round
 * trips to MongoDB were what bounded a worker's throughput and CPU). Each lane still holds its own
 * lease (renewed by its slot's timer, not by the gate) and gets its own seq; the update checks every
 * lease and moves the cursor by the number of lanes, so the single gate's invariants hold (at most
 * one rerun per slot, seqs handed out in order, claimed before sent). When the batched update does not apply (a lease lost, the task paused, fewer
 * items left than lanes) each lane is gated on its own, which tells it why.
 *
 * The gate and the claim of a batch each settle within `boundMs` (a third of the lease): a lane is
 * never held by an answer that does not come. Past the bound, the batch's lanes get an error (what
 * a lost answer from MongoDB gives them) and the next batch is gated at once. What the late write
 * did, if it ever applies, is what a worker dying at that point leaves: a gate that moved the cursor
 * leaves Queued items below it (handled when the task finishes), a claim leaves the items Processing
 * under leases that expire (each lane's slot stays dirty), so reconciliation takes them over.
 */
export class StartBatcher {
  private readonly tasks = new Map<string, TaskStarts>();
  private idleSweep?: NodeJS.Timeout;

  constructor(
    private readonly taskRepo: TasksForEngine,
    private readonly items: TaskItemsForEngine,
    private readonly transactions: TransactionsForEngine,
    private readonly boundMs: number,
  ) {}

  /**
   * The next item for the slot's lane: null when the gate is closed for it. `startAt`: the task's,
   * as the lane read it.
   */
  next(slot: Slot, total: number, startAt: Date | undefined): Promise<Started | null> {
    let task = this.tasks.get(slot.taskKey);
    if (!task) {
      task = {
        taskId: slot.taskId,
        total,
        startAt,
        waiting: [],
        gating: 0,
        scheduled: false,
        ahead: new Map(),
        aheadEnd: 0,
        originals: [],
        originalsPerBatch: false,
        originalsRead: false,
        usedAt: Date.now(),
      };
      this.tasks.set(slot.taskKey, task);
      this.idleSweep ??= setInterval(() => this.forgetIdle(), IDLE_MS).unref();
    }
    const state = task;
    state.usedAt = Date.now();
    const started = new Promise<Started | null>((resolve, reject) => state.waiting.push({ slot, resolve, reject }));
    this.gateSoon(state);
    return started;
  }

  /** Lanes answered in the same turn of the event loop (or while MAX_GATES are on the wire) join one batch. */
  private gateSoon(task: TaskStarts): void {
    if (task.scheduled || task.gating >= MAX_GATES || !task.waiting.length) return;
    task.scheduled = true;
    setImmediate(() => {
      task.scheduled = false;
      void this.gate(task);
    });
  }

  private async gate(task: TaskStarts): Promise<void> {
    const batch = task.waiting.splice(0);
    if (!batch.length) return;
    task.gating++;
    let seqs: Array<number | null>;
    try {
      seqs = await bounded(this.boundMs, `the gate of task ${task.taskId.toHexString()}`, ({ signal }) =>
        this.gateBatch(task, batch, signal),
      );
    } catch (error) {
      task.gating--;
      this.gateSoon(task);
      for (const waiter of batch) waiter.reject(error);
      return;
    }
    // The next batch may gate while this one claims.
    task.gating--;
    this.gateSoon(task);
    await this.claim(task, batch, seqs);
  }

  /** `signal`: aborted once the lanes gave up on this gate (no further write is started for them). */
  private async gateBatch(task: TaskStarts, batch: Waiter[], signal: AbortSignal): Promise<Array<number | null>> {
    const taskId = task.taskId;
    const first =
      batch.length > 1
        ? await this.taskRepo.gateMany(
            taskId,
            batch.map((waiter) => waiter.slot.leaseId),
            task.total,
            task.startAt,
          )
        : null;
    signal.throwIfAborted();
    return first === null
      ? Promise.all(
          batch.map((waiter) => this.taskRepo.gate(taskId, waiter.slot.leaseId, task.total, null, task.startAt)),
        )
      : batch.map((_, index) => first + index);
  }

  private async claim(task: TaskStarts, batch: Waiter[], seqs: Array<number | null>): Promise<void> {
    const taken = batch.flatMap((waiter, index) => {
      const seq = seqs[index];
      if (seq === null) {
        waiter.resolve(null);
        return [];
      }
      // Until the claim is known: a claim written without its answer leaves the slot to expire, so
      // the next holder reconciles the item.
      waiter.slot.dirty = true;
      return [{ waiter, seq }];
    });
    if (!taken.length) return;
    try {
      // Past the bound the slots stay dirty: whatever the claim did is reconciled after they expire.
      const { claimed, originals } = await bounded(
        this.boundMs,
        `the claim of items ${taken.map(({ seq }) => seq).join(', ')} of task ${task.taskId.toHexString()}`,
        ({ signal }) => this.claimItems(task, taken, signal),
      );
      for (const { waiter, seq } of taken) {
        const item = claimed.get(seq) ?? null;
        if (item && originals) {
          this.transactions.primeOriginal(
            item.tid,
            originals.then((found) => found.get(item.tid) ?? null),
          );
        }
        if (!item) waiter.slot.dirty = false;
        waiter.resolve({ seq, item });
      }
    } catch (error) {
      for (const { waiter } of taken) waiter.reject(error);
    }
  }

  /** `signal`: aborted once the lanes gave up on this claim (it is then not written). */
  private async claimItems(
    task: TaskStarts,
    taken: Array<{ waiter: Waiter; seq: number }>,
    signal: AbortSignal,
  ): Promise<{ claimed: Map<number, EngineItem>; originals?: Promise<Map<string, OriginalTransaction>> }> {
    const known = await this.readAhead(
      task,
      taken.map(({ seq }) => seq),
    ).catch(() => new Map<number, EngineItem>());
    signal.throwIfAborted();
    // The originals are read while the claim is written (in one query, not one per item); only
    // claimed items use them.
    const originals = known.size ? this.originalsOf(task, known) : undefined;
    originals?.catch(() => undefined);
    const claimed = await this.items.claimMany(
      task.taskId,
      taken.map(({ waiter, seq }) => ({ seq, leaseId: waiter.slot.leaseId })),
      new Date(),
      known,
    );
    return { claimed, originals };
  }

  /** The window entries for `seqs` (taken out of it), reading the window when needed and ahead of time. */
  private async readAhead(task: TaskStarts, seqs: number[]): Promise<Map<number, EngineItem>> {
    const lowest = Math.min(...seqs);
    const highest = Math.max(...seqs);
    // Passed: another worker took them (with a margin: a batch gated earlier may still be claiming its own).
    for (const seq of task.ahead.keys()) if (seq < lowest - READ_AHEAD) task.ahead.delete(seq);
    const missing = () => seqs.filter((seq) => !task.ahead.has(seq));
    if (missing().length && task.reading) await task.reading.catch(() => undefined);
    if (missing().length) await this.readWindow(task, Math.min(...missing()));
    if (!task.reading && task.aheadEnd - highest < READ_AHEAD / 2 && task.aheadEnd < task.total) {
      this.readWindow(task, Math.max(task.aheadEnd, highest + 1)).catch(() => undefined);
    }
    const found = new Map<number, EngineItem>();
    for (const seq of seqs) {
      const ahead = task.ahead.get(seq);
      if (ahead) found.set(seq, ahead);
      task.ahead.delete(seq);
    }
    return found;
  }

  /**
   * The transactions of a batch's items. Read per batch (each original read by the worker that
   * claims it) until a first read showed small bodies; then in windows of ORIGINALS_WINDOW seqs
   * ahead of the cursor, from the items read ahead, as long as this worker claims most of each
   * window (with several workers on a task, each would read every original) and no body is large
   * (a window holds its documents until they are claimed).
   */
  private originalsOf(task: TaskStarts, known: Map<number, EngineItem>): Promise<Map<string, OriginalTransaction>> {
    const seqs = [...known.keys()];
    const lowest = Math.min(...seqs);
    // Windows the cursor passed (with a margin: a batch gated earlier may still be claiming its own).
    task.originals = task.originals.filter((window) => {
      if (window.to > lowest - ORIGINALS_WINDOW) return true;
      if (window.taken * 2 < window.seqs.size) task.originalsPerBatch = true;
      return false;
    });
    if (task.originalsPerBatch || !task.originalsRead) return this.readOriginals(task, [...known.values()]);
    const reads: Array<Promise<Map<string, OriginalTransaction>>> = [];
    const missing: EngineItem[] = [];
    for (const [seq, item] of known) {
      const window = task.originals.find((candidate) => candidate.seqs.has(seq));
      if (window) {
        window.taken++;
        if (!reads.includes(window.read)) reads.push(window.read);
      } else missing.push(item);
    }
    if (missing.length) reads.push(this.originalsWindow(task, missing).read);
    // The next window, once half of the last one is behind the batch.
    const last = task.originals[task.originals.length - 1];
    if (last && Math.max(...seqs) >= last.to - ORIGINALS_WINDOW / 2) this.originalsWindow(task, []);
    const tids = [...known.values()].map((item) => item.tid);
    return Promise.all(reads).then((windows) => {
      const found = new Map<string, OriginalTransaction>();
      for (const tid of tids) {
        for (const window of windows) {
          const original = window.get(tid);
          if (!original) continue;
          found.set(tid, original);
          window.delete(tid); // claimed once: not held any longer
          break;
        }
      }
      return found;
    });
  }

  /** One read for `items` (claimed now) and the items read ahead that follow, up to ORIGINALS_WINDOW seqs. */
  private originalsWindow(task: TaskStarts, items: EngineItem[]): OriginalsWindow {
    const last = task.originals[task.originals.length - 1];
    const from = items.length ? Math.min(...items.map((item) => item.seq)) : (last?.to ?? task.aheadEnd);
    const to = Math.max(from + ORIGINALS_WINDOW, ...items.map((item) => item.seq + 1));
    const inWindow = [...items];
    for (let seq = from; seq < to; seq++) {
      const ahead = task.ahead.get(seq);
      if (ahead && !task.originals.some((window) => window.seqs.has(seq))) inWindow.push(ahead);
    }
    const window: OriginalsWindow = {
      from,
      to,
      seqs: new Set(inWindow.map((item) => item.seq)),
      taken: items.length,
      read: inWindow.length ? this.readOriginals(task, inWindow) : Promise.resolve(new Map()),
    };
    window.read.catch(() => undefined);
    // Kept ordered by `from` (a window for missing seqs may start below the last one).
    task.originals.push(window);
    task.originals.sort((a, b) => a.from - b.from);
    return window;
  }

  /** Reads the items' originals, noting whether their bodies are small enough for windowed reads. */
  private readOriginals(task: TaskStarts, items: EngineItem[]): Promise<Map<string, OriginalTransaction>> {
    const read = this.transactions.readOriginals(items.map((item) => item.tid));
    return read.then((found) => {
      for (const original of found.values()) {
        const body = original.request?.body;
        if (typeof body === 'string' && body.length > SMALL_BODY) task.originalsPerBatch = true;
      }
      if (found.size) task.originalsRead = true;
      return found;
    });
  }

  private readWindow(task: TaskStarts, from: number): Promise<void> {
    const to = Math.min(task.total, from + READ_AHEAD);
    const reading = (async () => {
      if (to <= from) return;
      const seqs = Array.from({ length: to - from }, (_, index) => from + index);
      // Bounded: every later claim of the task may wait for this read.
      const found = await within(
        this.boundMs,
        `the read of items ${from}-${to - 1} of task ${task.taskId.toHexString()}`,
        this.items.bySeq(task.taskId, seqs),
      );
      for (const item of found) task.ahead.set(item.seq, item);
      task.aheadEnd = Math.max(task.aheadEnd, to);
    })();
    task.reading = reading;
    reading
      .finally(() => {
        if (task.reading === reading) task.reading = undefined;
      })
      .catch(() => undefined);
    return reading;
  }

  private forgetIdle(): void {
    const before = Date.now() - IDLE_MS;
    for (const [key, task] of this.tasks)
      if (task.usedAt < before && !task.gating && !task.scheduled) this.tasks.delete(key);
    if (!this.tasks.size) {
      clearInterval(this.idleSweep);
      this.idleSweep = undefined;
    }
  }
}

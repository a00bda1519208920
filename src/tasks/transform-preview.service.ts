import { Inject, Injectable } from '@nestjs/common';
import { cannotRerunError, notFoundError } from '../rerun/outcome';
import { buildHttpRerun, type HttpRerunRequest } from '../rerun/sending/rerun-request';
import type { ItemEdit, TransformSpec } from '../rerun/transform/request-transform';
import { transformRerun } from '../rerun/transform/transformed-rerun';
import { ChannelsRepository, type RerunChannel } from '../database/repositories/channels.repository';
import {
  type OriginalTransaction,
  TransactionsForApi,
  TransactionsRepository,
} from '../database/repositories/transactions.repository';
import type { StoredEdit } from './task-transforms';

/** One request of a preview (`before` / `after`). */
export interface PreviewRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: string;
}

export interface PreviewSample {
  tid: string;
  /** Null: the transaction does not exist. */
  before: PreviewRequest | null;
  /** Null: the request would not be sent (`error` says why). */
  after: PreviewRequest | null;
  error?: string;
}

/** What a dry run with a preview answers (POST /tasks; POST /bulkrerun adds it to its plan). */
export interface TransformPreview {
  matched: number;
  applies: number;
  unchanged: number;
  fails: number;
  samples: PreviewSample[];
}

export interface PreviewOptions {
  transform?: TransformSpec;
  /** By tid (lower case). */
  edits?: ReadonlyMap<string, StoredEdit>;
  /** Samples shown: the first `limit` transactions. */
  limit: number;
}

/** Transactions read at once: the most request bodies a preview holds, besides its samples. */
export const PREVIEW_BATCH = 100;
/** The rerun's `taskID` header, which a preview (creating no task) leaves out of what it shows. */
const TASK_ID_HEADER = 'taskID';
/** Its value meanwhile (a transform can neither set nor remove it). */
const PREVIEW_TASK_ID = '000000000000000000000000';

/** The transactions API reads, and the engine's read of the originals (the same documents the run reads). */
type PreviewReads = Pick<TransactionsForApi, 'idsOldestFirst' | 'readOriginals'>;

/**
 * The preview of `dryRun` ("Fix, then rerun"): every transaction of the would-be task, read in
 * batches of PREVIEW_BATCH, made into the request the worker would send (`buildHttpRerun`, or the
 * body of a tcp/tls channel) and passed through the worker's own transform step (`transformRerun`):
 * so the counts are what the run then does, and an item that would fail says it with the error its
 * item would record (a missing transaction: "Transaction <tid> could not be found"). Only the counts
 * and the first `limit` samples are kept: the memory held is a batch and the samples.
 */
@Injectable()
export class TransformPreviewer {
  constructor(
    @Inject(TransactionsRepository) private readonly transactions: PreviewReads,
    private readonly channels: ChannelsRepository,
  ) {}

  /** The transactions of `tids` (distinct, lower case), in their order. */
  async ofTids(tids: readonly string[], options: PreviewOptions): Promise<TransformPreview> {
    const tally = new Tally(options.limit);
    for (let start = 0; start < tids.length; start += PREVIEW_BATCH) {
      await this.addBatch(tally, tids.slice(start, start + PREVIEW_BATCH), options);
    }
    return tally.result();
  }

  /** The transactions matching `query` (at most `max`), oldest request first, as POST /bulkrerun takes them. */
  async ofQuery(query: Record<string, unknown>, max: number, options: PreviewOptions): Promise<TransformPreview> {
    const tally = new Tally(options.limit);
    for await (const ids of this.transactions.idsOldestFirst(query, PREVIEW_BATCH, max)) {
      await this.addBatch(
        tally,
        ids.map((id) => id.toHexString()),
        options,
      );
    }
    return tally.result();
  }

  private async addBatch(tally: Tally, tids: string[], options: PreviewOptions): Promise<void> {
    const originals = await this.transactions.readOriginals(tids);
    for (const tid of tids) {
      const original = originals.get(tid) ?? null;
      const channel = original ? await this.channels.rerunChannel(original.channelID) : null;
      const edit = options.edits?.get(tid);
      tally.add(previewOne(tid, original, channel, options.transform, edit ? { tid, ...edit } : undefined));
    }
  }
}

type Outcome = { kind: 'applies' | 'unchanged' | 'fails'; sample: PreviewSample };

/** One transaction, as the worker's ItemRunner takes it (src/rerun/engine/item-runner.service.ts). */
function previewOne(
  tid: string,
  original: OriginalTransaction | null,
  channel: RerunChannel | null,
  transform: TransformSpec | undefined,
  edit: ItemEdit | undefined,
): Outcome {
  if (!original) return { kind: 'fails', sample: { tid, before: null, after: null, error: notFoundError(tid) } };
  const tcp = channel?.type === 'tcp' || channel?.type === 'tls';
  const body = original.request?.body ?? '';
  const http = tcp ? undefined : buildHttpRerun(original, PREVIEW_TASK_ID);
  const before = http ? httpRequest(http) : tcpRequest(channel!, body);
  const fails = (error: string): Outcome => ({ kind: 'fails', sample: { tid, before, after: null, error } });
  if (original.canRerun === false) return fails(cannotRerunError(tid));
  if (tcp && (!channel!.tcpHost || !channel!.tcpPort)) {
    return fails(`Transaction ${tid} cannot be rerun as its ${channel!.type} channel has no tcpHost/tcpPort`);
  }
  if (!transform && !edit) return { kind: 'unchanged', sample: { tid, before, after: before } };
  const transformed = transformRerun(transform, edit, tid, http ? { http } : { tcpBody: body });
  if (!transformed.ok) return fails(transformed.error);
  const after = transformed.http ? httpRequest(transformed.http) : tcpRequest(channel!, transformed.tcpBody ?? '');
  return { kind: sameRequest(before, after) ? 'unchanged' : 'applies', sample: { tid, before, after } };
}

/** As sent, less `taskID` (no task is created) and `content-length` (computed from the body sent). */
function httpRequest(http: HttpRerunRequest): PreviewRequest {
  const headers = Object.fromEntries(
    Object.entries(http.headers).filter(([name]) => name !== TASK_ID_HEADER && name.toLowerCase() !== 'content-length'),
  );
  return {
    method: http.method,
    path: http.path,
    headers,
    ...(http.body ? { body: http.body.toString('utf8') } : {}),
  };
}

/** A tcp/tls channel's rerun: its body, sent to the channel's address. */
function tcpRequest(channel: RerunChannel, body: string): PreviewRequest {
  return { method: 'TCP', path: `${channel.tcpHost ?? ''}:${channel.tcpPort ?? ''}`, headers: {}, body };
}

function sameRequest(a: PreviewRequest, b: PreviewRequest): boolean {
  return a.method === b.method && a.path === b.path && a.body === b.body && sameHeaders(a.headers, b.headers);
}

function sameHeaders(a: PreviewRequest['headers'], b: PreviewRequest['headers']): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every(
    (name) => Object.prototype.hasOwnProperty.call(b, name) && JSON.stringify(a[name]) === JSON.stringify(b[name]),
  );
}

/** The counts over every transaction, and the first `limit` samples. */
class Tally {
  private readonly counts = { applies: 0, unchanged: 0, fails: 0 };
  private readonly samples: PreviewSample[] = [];

  constructor(private readonly limit: number) {}

  add({ kind, sample }: Outcome): void {
    this.counts[kind]++;
    if (this.samples.length < this.limit) this.samples.push(sample);
  }

  result(): TransformPreview {
    const { applies, unchanged, fails } = this.counts;
    return { matched: applies + unchanged + fails, applies, unchanged, fails, samples: this.samples };
  }
}

import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import type { Response } from 'express';
import { JSON_CHUNK_SIZE, jsonArray, JsonFragments, jsonObjectWithArray, sendJson } from './json-stream';

async function text(fragments: JsonFragments): Promise<string> {
  let out = '';
  for await (const fragment of fragments) out += fragment;
  return out;
}

async function* batches<T>(...lists: T[][]): AsyncGenerator<T[]> {
  for (const list of lists) yield list;
}

/** Enough of an Express response to watch what is written, with a socket buffer that fills up. */
class FakeResponse extends EventEmitter {
  statusCode = 0;
  contentType?: string;
  sent?: string;
  writes: string[] = [];
  ended?: string;
  destroyed = false;
  writableEnded = false;
  destroyError?: Error;
  /** write() answers false (buffer full) for these write numbers. */
  full = new Set<number>();
  status(code: number) {
    this.statusCode = code;
    return this;
  }
  type(type: string) {
    this.contentType = type;
    return this;
  }
  send(body: string) {
    this.sent = body;
    return this;
  }
  write(chunk: string) {
    this.writes.push(chunk);
    return !this.full.has(this.writes.length);
  }
  end(chunk: string) {
    this.ended = chunk;
    this.writableEnded = true;
  }
  destroy(error?: Error) {
    this.destroyed = true;
    this.destroyError = error;
  }
}

const logger = new Logger('test');
beforeAll(() => Logger.overrideLogger(false));

describe('JSON fragments', () => {
  const value = {
    _id: 'abc',
    created: new Date('2024-05-01T10:00:00Z'),
    transactions: [{ tid: 'a', n: 1 }, { tid: 'b' }, { tid: 'c', error: 'x"y' }],
    totalFilteredTransactions: 3,
  };

  it('gives exactly what JSON.stringify gives, in the same key order', async () => {
    const { transactions, totalFilteredTransactions, ...head } = value;
    const body = jsonObjectWithArray(
      head,
      'transactions',
      jsonArray(batches(transactions.slice(0, 2), [], transactions.slice(2)), (item) => item),
      { totalFilteredTransactions },
    );
    expect(await text(body)).toBe(JSON.stringify(value));
    expect(await text(jsonArray(batches(), (item) => item))).toBe('[]');
    expect(await text(jsonArray([[1, 2], [3]], (n: number) => ({ n })))).toBe('[{"n":1},{"n":2},{"n":3}]');
    expect(
      await text(
        jsonObjectWithArray(
          {},
          'a',
          jsonArray([], (x) => x),
          {},
        ),
      ),
    ).toBe('{"a":[]}');
  });
});

describe('sendJson', () => {
  /** `count` numbers in driver-sized batches of 1000. */
  const big = (count: number) =>
    jsonArray(
      Array.from({ length: count / 1000 }, (_, batch) => Array.from({ length: 1000 }, (__, n) => batch * 1000 + n)),
      (n) => ({ n }),
    );

  it('sends a small body at once through res.send (as res.json does)', async () => {
    const res = new FakeResponse();
    await sendJson(
      res as unknown as Response,
      jsonArray([[1, 2]], (n) => n),
      logger,
      'test',
    );
    expect(res).toMatchObject({ statusCode: 200, contentType: 'json', sent: '[1,2]', writes: [] });
  });

  it('streams a large body in chunks and waits for drain when the socket is full', async () => {
    const res = new FakeResponse();
    res.full.add(1);
    const sending = sendJson(res as unknown as Response, big(50_000), logger, 'test');
    // Stuck after the first write until the socket drains.
    await new Promise((resolve) => setImmediate(resolve));
    expect(res.writes).toHaveLength(1);
    expect(res.ended).toBeUndefined();
    res.emit('drain');
    await sending;
    expect(res.sent).toBeUndefined();
    expect(res.writes.length).toBeGreaterThan(1);
    for (const chunk of res.writes) expect(chunk.length).toBeLessThan(2 * JSON_CHUNK_SIZE);
    const body = JSON.parse(res.writes.join('') + res.ended);
    expect(body).toHaveLength(50_000);
    expect(body[49_999]).toEqual({ n: 49_999 });
  });

  it('throws what fails before the first byte (the exception filter answers it)', async () => {
    const res = new FakeResponse();
    async function* failing(): JsonFragments {
      yield '[';
      throw new Error('cursor died');
    }
    await expect(sendJson(res as unknown as Response, failing(), logger, 'test')).rejects.toThrow('cursor died');
    expect(res.writes).toEqual([]);
    expect(res.destroyed).toBe(false);
  });

  it('destroys the connection when it fails after the first byte, and closes the source', async () => {
    const res = new FakeResponse();
    let closed = false;
    async function* failing(): JsonFragments {
      try {
        yield 'x'.repeat(JSON_CHUNK_SIZE);
        throw new Error('cursor died');
      } finally {
        closed = true;
      }
    }
    await sendJson(res as unknown as Response, failing(), logger, 'test');
    expect(res.writes).toHaveLength(1);
    expect(res.destroyed).toBe(true);
    expect(res.destroyError?.message).toBe('cursor died');
    expect(res.ended).toBeUndefined();
    expect(closed).toBe(true);
  });

  it('stops reading when the client goes away while it waits for drain', async () => {
    const res = new FakeResponse();
    res.full.add(1);
    let closed = false;
    async function* endless(): JsonFragments {
      try {
        for (;;) yield 'x'.repeat(JSON_CHUNK_SIZE);
      } finally {
        closed = true;
      }
    }
    const sending = sendJson(res as unknown as Response, endless(), logger, 'test');
    await new Promise((resolve) => setImmediate(resolve));
    res.emit('close');
    await sending;
    expect(res.writes).toHaveLength(1);
    expect(res.destroyed).toBe(true);
    expect(res.destroyError).toBeUndefined();
    expect(closed).toBe(true);
  });
});

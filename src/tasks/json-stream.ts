import type { Logger } from '@nestjs/common';
import type { Response } from 'express';

/**
 * JSON bodies of any size, written as they are read from the database: the body is a sequence of
 * already serialized fragments, so at most one driver batch and one chunk are in memory at a time.
 */
export type JsonFragments = AsyncIterable<string>;

/** Bytes (UTF-16 code units) gathered before one `res.write`. */
export const JSON_CHUNK_SIZE = 64 * 1024;

/** `[e0,e1,...]` from batches of entries, each shown through `view`. */
export async function* jsonArray<T>(
  batches: AsyncIterable<readonly T[]> | Iterable<readonly T[]>,
  view: (entry: T) => unknown,
): JsonFragments {
  yield '[';
  let first = true;
  for await (const batch of batches) {
    let text = '';
    for (const entry of batch) {
      text += (first ? '' : ',') + JSON.stringify(view(entry));
      first = false;
    }
    if (text) yield text;
  }
  yield ']';
}

/**
 * `{...head, [field]: <array>, ...tail}` with the same key order and values as
 * `JSON.stringify({...head, [field]: array, ...tail})`.
 */
export async function* jsonObjectWithArray(
  head: Record<string, unknown>,
  field: string,
  array: JsonFragments,
  tail: Record<string, unknown>,
): JsonFragments {
  const open = JSON.stringify(head).slice(0, -1);
  yield `${open}${open === '{' ? '' : ','}${JSON.stringify(field)}:`;
  yield* array;
  const close = JSON.stringify(tail).slice(1);
  yield close === '}' ? close : `,${close}`;
}

/** The client went away while we waited to write. */
class ClientGone extends Error {}

/**
 * Sends `fragments` as a 200 `application/json` answer. A body that fits in one chunk goes out
 * through `res.send`, exactly as `res.json` would send it (Content-Length, ETag); a larger one is
 * written chunk by chunk, waiting for 'drain' whenever the socket's buffer is full.
 *
 * Until the first byte is written, errors are thrown (the global exception filter answers them);
 * afterwards the status is sent, so a failure can only cut the connection: it is logged and the
 * response destroyed, so the client sees an incomplete body, never a truncated one that looks whole.
 */
export async function sendJson(res: Response, fragments: JsonFragments, logger: Logger, what: string): Promise<void> {
  let buffer = '';
  let started = false;
  try {
    for await (const fragment of fragments) {
      buffer += fragment;
      if (buffer.length < JSON_CHUNK_SIZE) continue;
      if (!started) {
        res.status(200).type('json');
        started = true;
      }
      await write(res, buffer);
      buffer = '';
    }
  } catch (error) {
    if (!started) throw error;
    if (error instanceof ClientGone) {
      logger.debug(`${what}: the client closed the connection before the end of the answer`);
    } else {
      logger.error(`${what}: failed after the answer started; connection closed: ${(error as Error).message}`);
    }
    res.destroy(error instanceof ClientGone ? undefined : (error as Error));
    return;
  }
  if (!started) {
    res.status(200).type('json').send(buffer);
    return;
  }
  if (res.destroyed) return;
  res.end(buffer);
}

async function write(res: Response, chunk: string): Promise<void> {
  if (res.destroyed || res.writableEnded) throw new ClientGone();
  if (res.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = () => {
      cleanup();
      resolve();
    };
    const gone = () => {
      cleanup();
      reject(new ClientGone());
    };
    const cleanup = () => {
      res.off('drain', done);
      res.off('close', gone);
      res.off('error', gone);
    };
    res.on('drain', done);
    res.on('close', gone);
    res.on('error', gone);
  });
}

/**
 * MongoDB wire protocol framing: OP_MSG (2013), legacy OP_QUERY (2004) and OP_REPLY (1).
 */
import { BSON } from 'bson';
import { fail } from './errors';
import { Doc, normalizeInPlace, RawAnn } from './values';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

export const MSG_CHECKSUM_PRESENT = 1;
export const MSG_MORE_TO_COME = 2;

export const MAX_BSON_SIZE = 16 * 1024 * 1024;
export const MAX_MESSAGE_SIZE = 48_000_000;

const DESERIALIZE_OPTIONS = { promoteValues: false, promoteBuffers: false, bsonRegExp: false } as const;

export interface Header {
  length: number;
  requestId: number;
  responseTo: number;
  opCode: number;
}

export function readHeader(msg: Buffer): Header {
  return {
    length: msg.readInt32LE(0),
    requestId: msg.readInt32LE(4),
    responseTo: msg.readInt32LE(8),
    opCode: msg.readInt32LE(12),
  };
}

export interface Command {
  body: Doc;
  /** Typed-number annotations collected while normalising the body (paths from the body root). */
  anns: RawAnn[];
  /** Database from `$db` (OP_MSG) or the namespace (OP_QUERY). */
  db: string;
  moreToCome: boolean;
}

function decodeDoc(buf: Buffer, offset: number): { doc: Doc; size: number } {
  if (offset + 4 > buf.length) fail(2, 'Truncated BSON document in message');
  const size = buf.readInt32LE(offset);
  if (size < 5 || offset + size > buf.length) fail(2, 'Invalid BSON document size in message');
  return { doc: BSON.deserialize(buf.subarray(offset, offset + size), DESERIALIZE_OPTIONS) as Doc, size };
}

function finish(body: Doc, db: string | undefined, moreToCome: boolean): Command {
  const anns: RawAnn[] = [];
  normalizeInPlace(body, [], anns);
  const d = typeof body.$db === 'string' ? body.$db : db;
  return { body, anns, db: d ?? 'admin', moreToCome };
}

export function parseOpMsg(msg: Buffer): Command {
  const flags = msg.readUInt32LE(16);
  let end = msg.length;
  if (flags & MSG_CHECKSUM_PRESENT) end -= 4;
  let off = 20;
  let body: Doc | null = null;
  const sequences: [string, Doc[]][] = [];
  while (off < end) {
    const kind = msg[off++];
    if (kind === 0) {
      const { doc, size } = decodeDoc(msg, off);
      body = doc;
      off += size;
    } else if (kind === 1) {
      const size = msg.readInt32LE(off);
      const secEnd = off + size;
      let p = off + 4;
      const idEnd = msg.indexOf(0, p);
      if (idEnd < 0 || idEnd >= secEnd) fail(2, 'Invalid OP_MSG document sequence');
      const id = msg.toString('utf8', p, idEnd);
      p = idEnd + 1;
      const docs: Doc[] = [];
      while (p < secEnd) {
        const { doc, size: ds } = decodeDoc(msg, p);
        docs.push(doc);
        p += ds;
      }
      sequences.push([id, docs]);
      off = secEnd;
    } else fail(2, `Unknown OP_MSG section kind ${kind}`);
  }
  if (!body) fail(2, 'OP_MSG without a body section');
  for (const [id, docs] of sequences) {
    const prev = body[id];
    body[id] = Array.isArray(prev) ? [...prev, ...docs] : docs;
  }
  return finish(body, undefined, (flags & MSG_MORE_TO_COME) !== 0);
}

export function parseOpQuery(msg: Buffer): Command {
  const nsEnd = msg.indexOf(0, 20);
  if (nsEnd < 0) fail(2, 'Invalid OP_QUERY');
  const ns = msg.toString('utf8', 20, nsEnd);
  const off = nsEnd + 1 + 8; // numberToSkip, numberToReturn
  let { doc } = decodeDoc(msg, off);
  const first = Object.keys(doc)[0];
  if ((first === '$query' || first === 'query') && doc[first] && typeof doc[first] === 'object')
    doc = doc[first] as Doc;
  const dot = ns.indexOf('.');
  const db = dot >= 0 ? ns.slice(0, dot) : ns;
  const coll = dot >= 0 ? ns.slice(dot + 1) : '';
  if (coll !== '$cmd') fail(2, `Legacy OP_QUERY is only supported on <db>.$cmd (got ${ns})`);
  return finish(doc, db, false);
}

let nextRequestId = 1;

export function encodeOpMsg(responseTo: number, doc: Uint8Array): Buffer {
  const len = 21 + doc.length;
  const b = Buffer.allocUnsafe(len);
  b.writeInt32LE(len, 0);
  b.writeInt32LE(nextRequestId++ & 0x7fffffff, 4);
  b.writeInt32LE(responseTo, 8);
  b.writeInt32LE(OP_MSG, 12);
  b.writeUInt32LE(0, 16);
  b[20] = 0;
  b.set(doc, 21);
  return b;
}

export function encodeOpReply(responseTo: number, doc: Uint8Array, flags = 0): Buffer {
  const len = 36 + doc.length;
  const b = Buffer.allocUnsafe(len);
  b.writeInt32LE(len, 0);
  b.writeInt32LE(nextRequestId++ & 0x7fffffff, 4);
  b.writeInt32LE(responseTo, 8);
  b.writeInt32LE(OP_REPLY, 12);
  b.writeInt32LE(flags, 16);
  b.writeBigInt64LE(0n, 20);
  b.writeInt32LE(0, 28);
  b.writeInt32LE(1, 32);
  b.set(doc, 36);
  return b;
}

/**
 * `{cursor: {<batchField>: [...docs], id: Long, ns}, ok: 1}` assembled from already serialized
 * documents (each document is serialized exactly once).
 */
export function encodeCursorReply(
  batchField: 'firstBatch' | 'nextBatch',
  docs: Uint8Array[],
  id: number,
  ns: string,
): Uint8Array {
  let arrayLen = 5;
  for (let i = 0; i < docs.length; i++) arrayLen += 2 + String(i).length + docs[i].length;
  const nsBytes = Buffer.from(ns, 'utf8');
  const cursorLen = 4 + (2 + batchField.length + arrayLen) + (1 + 3 + 8) + (1 + 3 + 4 + nsBytes.length + 1) + 1;
  const total = 4 + (1 + 7 + cursorLen) + (1 + 3 + 8) + 1;
  const b = Buffer.allocUnsafe(total);
  let o = 0;
  b.writeInt32LE(total, o);
  o += 4;
  b[o++] = 0x03;
  o += b.write('cursor', o, 'latin1');
  b[o++] = 0;
  b.writeInt32LE(cursorLen, o);
  o += 4;
  b[o++] = 0x04;
  o += b.write(batchField, o, 'latin1');
  b[o++] = 0;
  b.writeInt32LE(arrayLen, o);
  o += 4;
  for (let i = 0; i < docs.length; i++) {
    b[o++] = 0x03;
    o += b.write(String(i), o, 'latin1');
    b[o++] = 0;
    b.set(docs[i], o);
    o += docs[i].length;
  }
  b[o++] = 0;
  b[o++] = 0x12;
  o += b.write('id', o, 'latin1');
  b[o++] = 0;
  b.writeBigInt64LE(BigInt(id), o);
  o += 8;
  b[o++] = 0x02;
  o += b.write('ns', o, 'latin1');
  b[o++] = 0;
  b.writeInt32LE(nsBytes.length + 1, o);
  o += 4;
  b.set(nsBytes, o);
  o += nsBytes.length;
  b[o++] = 0;
  b[o++] = 0; // end of cursor
  b[o++] = 0x01;
  o += b.write('ok', o, 'latin1');
  b[o++] = 0;
  b.writeDoubleLE(1, o);
  o += 8;
  b[o++] = 0; // end of reply
  if (o !== total) throw new Error(`cursor reply size mismatch ${o} != ${total}`);
  return b;
}

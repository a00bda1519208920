/**
 * On-disk snapshots of a Storage (the standalone server's `--dbpath`).
 *
 * Layout (mongodump-like inside one generation directory):
 *
 *   DIR/snapshot.json                       manifest: which generation is current, files, counts, SHA-256s
 *   DIR/snapshot-<n>/<db>/<coll>.bson       the documents, concatenated BSON, in natural order
 *   DIR/snapshot-<n>/<db>/<coll>.metadata.json  { indexes, collectionName, type, options, uuid } (canonical EJSON)
 *
 * A save writes a complete new generation under `snapshot-<n>.tmp`, fsyncs it, renames it to
 * `snapshot-<n>`, then replaces the manifest through `snapshot.json.tmp` + rename. Only the manifest
 * rename makes the new generation current, so a crash at any point leaves the previous snapshot
 * loadable; leftovers (`*.tmp`, unreferenced generations) are ignored on load and removed by the
 * next save.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BSON, EJSON } from 'bson';
import { Storage } from './engine';
import { annMapOf, Doc, isPlainObject, normalizeInPlace, RawAnn, typedView } from './values';

export const MANIFEST = 'snapshot.json';
const FORMAT = 'mongo-wire-snapshot';
const VERSION = 1;
const GENERATION_DIR = /^snapshot-(\d+)(\.tmp)?$/;
const SERIALIZE_OPTIONS = { checkKeys: false, ignoreUndefined: false } as const;
// As the wire decoder: keep Int32 / Double / Long distinguishable, Binary as Binary.
const DESERIALIZE_OPTIONS = { promoteValues: false, promoteBuffers: false, bsonRegExp: false } as const;

interface ManifestCollection {
  name: string;
  bson: string;
  metadata: string;
  documents: number;
  bsonSha256: string;
  metadataSha256: string;
}

interface ManifestDatabase {
  name: string;
  dir: string;
  collections: ManifestCollection[];
}

interface Manifest {
  format: string;
  version: number;
  generation: number;
  dir: string;
  savedAt: string;
  databases: ManifestDatabase[];
}

/** A point-in-time copy of the data, serialized (taken synchronously, so it is consistent). */
export interface CapturedSnapshot {
  databases: {
    name: string;
    collections: { name: string; bson: Buffer; documents: number; metadata: string }[];
  }[];
}

export interface SnapshotSummary {
  databases: number;
  collections: number;
  documents: number;
  /** The generation directory written or read. */
  dir: string;
}

export class SnapshotError extends Error {}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A file name for a database / collection name: unambiguous, no path separators, never `.` / `..`. */
export function fileName(name: string): string {
  const s = encodeURIComponent(name).replace(/[!'()*~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return s.replace(/^\./, '%2E');
}

export function captureSnapshot(storage: Storage): CapturedSnapshot {
  const databases: CapturedSnapshot['databases'] = [];
  for (const [dbName, colls] of storage.dbs) {
    const collections: CapturedSnapshot['databases'][number]['collections'] = [];
    for (const [name, coll] of colls) {
      const parts: Uint8Array[] = [];
      for (const rec of coll.docs.values()) parts.push(BSON.serialize(typedView(rec.doc, rec.ann), SERIALIZE_OPTIONS));
      const metadata = EJSON.stringify(
        {
          indexes: coll.indexSpecs(),
          uuid: coll.uuid.toHexString(false),
          collectionName: name,
          type: 'collection',
          options: coll.options,
        },
        { relaxed: false },
      );
      collections.push({ name, bson: Buffer.concat(parts), documents: parts.length, metadata });
    }
    databases.push({ name: dbName, collections });
  }
  return { databases };
}

async function writeDurably(file: string, data: Buffer | string): Promise<void> {
  const fh = await fs.promises.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function readManifest(dir: string): Manifest | null {
  const file = path.join(dir, MANIFEST);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SnapshotError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch (e) {
    throw new SnapshotError(`${file} is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(m) || m.format !== FORMAT || m.version !== VERSION)
    throw new SnapshotError(`${file} is not a ${FORMAT} version ${VERSION} manifest`);
  if (!Number.isInteger(m.generation) || typeof m.dir !== 'string' || !Array.isArray(m.databases))
    throw new SnapshotError(`${file} is malformed`);
  return m;
}

/** Remove leftovers of interrupted saves and superseded generations (only names this module writes). */
async function removeStale(dir: string, keep: string | null): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (n === keep) continue;
    if (GENERATION_DIR.test(n) || n === MANIFEST + '.tmp')
      await fs.promises.rm(path.join(dir, n), { recursive: true, force: true });
  }
}

/** Write `captured` as the new current snapshot of `dir` (created if missing). */
export async function writeSnapshot(dir: string, captured: CapturedSnapshot): Promise<SnapshotSummary> {
  await fs.promises.mkdir(dir, { recursive: true });
  const previous = readManifest(dir);
  let generation = (previous?.generation ?? 0) + 1;
  for (const n of await fs.promises.readdir(dir)) {
    const m = GENERATION_DIR.exec(n);
    if (m) generation = Math.max(generation, Number(m[1]) + 1);
  }
  const genDir = `snapshot-${generation}`;
  const tmp = path.join(dir, genDir + '.tmp');
  await fs.promises.rm(tmp, { recursive: true, force: true });
  await fs.promises.mkdir(tmp);
  const manifest: Manifest = {
    format: FORMAT,
    version: VERSION,
    generation,
    dir: genDir,
    savedAt: new Date().toISOString(),
    databases: [],
  };
  let documents = 0;
  let collections = 0;
  for (const db of captured.databases) {
    const dbDir = fileName(db.name);
    await fs.promises.mkdir(path.join(tmp, dbDir));
    const entry: ManifestDatabase = { name: db.name, dir: dbDir, collections: [] };
    for (const c of db.collections) {
      const base = fileName(c.name);
      await writeDurably(path.join(tmp, dbDir, base + '.bson'), c.bson);
      await writeDurably(path.join(tmp, dbDir, base + '.metadata.json'), c.metadata);
      entry.collections.push({
        name: c.name,
        bson: base + '.bson',
        metadata: base + '.metadata.json',
        documents: c.documents,
        bsonSha256: sha256(c.bson),
        metadataSha256: sha256(c.metadata),
      });
      documents += c.documents;
      collections++;
    }
    await syncDir(path.join(tmp, dbDir));
    manifest.databases.push(entry);
  }
  await syncDir(tmp);
  await fs.promises.rename(tmp, path.join(dir, genDir));
  const manifestTmp = path.join(dir, MANIFEST + '.tmp');
  await writeDurably(manifestTmp, JSON.stringify(manifest, null, 2) + '\n');
  await fs.promises.rename(manifestTmp, path.join(dir, MANIFEST));
  await syncDir(dir);
  await removeStale(dir, genDir);
  return { databases: captured.databases.length, collections, documents, dir: path.join(dir, genDir) };
}

function readVerified(file: string, sha: string): Buffer {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (e) {
    throw new SnapshotError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (sha256(data) !== sha) throw new SnapshotError(`${file} is corrupt (SHA-256 differs from the manifest)`);
  return data;
}

/**
 * Load the current snapshot of `dir` into `storage` (which should be empty). Returns null when
 * `dir` holds no snapshot; throws a SnapshotError naming the file when one exists but is unreadable.
 */
export function loadSnapshot(dir: string, storage: Storage): SnapshotSummary | null {
  const manifest = readManifest(dir);
  if (!manifest) return null;
  const root = path.join(dir, manifest.dir);
  let documents = 0;
  let collections = 0;
  for (const db of manifest.databases) {
    for (const c of db.collections) {
      const bsonFile = path.join(root, db.dir, c.bson);
      const metaFile = path.join(root, db.dir, c.metadata);
      let meta: Doc;
      try {
        meta = EJSON.parse(readVerified(metaFile, c.metadataSha256).toString('utf8'), { relaxed: false }) as Doc;
      } catch (e) {
        if (e instanceof SnapshotError) throw e;
        throw new SnapshotError(`${metaFile}: ${(e as Error).message}`);
      }
      normalizeInPlace(meta, [], null);
      const coll = storage.ensure(db.name, c.name, isPlainObject(meta.options) ? meta.options : {});
      try {
        for (const spec of Array.isArray(meta.indexes) ? meta.indexes : [])
          if (isPlainObject(spec) && spec.name !== '_id_') coll.createIndex(spec);
      } catch (e) {
        throw new SnapshotError(`${metaFile}: cannot create index: ${(e as Error).message}`);
      }
      const data = readVerified(bsonFile, c.bsonSha256);
      let n = 0;
      try {
        for (let off = 0; off < data.length; n++) {
          const size = off + 4 <= data.length ? data.readInt32LE(off) : -1;
          if (size < 5 || off + size > data.length) throw new Error(`truncated document at byte ${off}`);
          const doc = BSON.deserialize(data.subarray(off, off + size), DESERIALIZE_OPTIONS) as Doc;
          const anns: RawAnn[] = [];
          normalizeInPlace(doc, [], anns);
          coll.insert(doc, annMapOf(anns));
          off += size;
        }
      } catch (e) {
        throw new SnapshotError(`${bsonFile}: ${(e as Error).message}`);
      }
      if (n !== c.documents)
        throw new SnapshotError(`${bsonFile}: holds ${n} documents, the manifest says ${c.documents}`);
      documents += n;
      collections++;
    }
  }
  return { databases: manifest.databases.length, collections, documents, dir: root };
}

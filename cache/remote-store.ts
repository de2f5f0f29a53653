// The shared store: blobs (and the records naming them) that every node of a cluster, and every
// teammate's checkout, can reach. LMDB must not live on a network filesystem, so each runner
// keeps its own LMDB (records, index, leases) and only exchanges content-addressed files here.
// The interface is what an S3-compatible store could implement as well: has/get/put/list by
// digest, plus records by key; the directory implementation below is the first one.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isDigest, sha256, stableStringify, type Digest } from './canonical.js';
import { checkRecord } from './record-schema.js';
import { CacheCorruption, isIndexEntry, type IndexEntry, type StageRecord } from './store.js';

export interface RemoteStore {
  /** Where it is, for messages. */
  readonly location: string;
  has(digest: Digest): Promise<boolean>;
  /**
   * The bytes, hash-checked; undefined when absent. Bytes that do not hash to their digest throw
   * CacheCorruption and are moved out of the way (so the next put can repair them): never used.
   */
  get(digest: Digest): Promise<Buffer | undefined>;
  /** Stores bytes under their sha256 (idempotent; safe beside other writers); resolves once durable. */
  put(bytes: Uint8Array, digest?: Digest): Promise<Digest>;
  /** Every blob digest held. */
  list(): AsyncIterable<Digest>;
  /** A stage record by key, schema-checked; a damaged one throws CacheCorruption. */
  getRecord(key: Digest): Promise<StageRecord | undefined>;
  /** Publishes a record (after the blobs it names): a teammate's run is then a cache hit after pull. */
  putRecord(record: StageRecord): Promise<void>;
  /**
   * Saved progress of an unfinished stage (its index entries: finetune's finished epochs), by
   * stage key, so the job that runs it next resumes instead of starting over. Blobs first.
   */
  getProgress(key: Digest): Promise<Array<[string, IndexEntry]> | undefined>;
  putProgress(key: Digest, entries: Array<[string, IndexEntry]>): Promise<void>;
}

/**
 * A folder on shared storage. Blobs live at `blobs/ab/abcdef…` (two-character fan-out, so no
 * folder grows past a few thousand entries), records at `records/ab/<key>.json`. Every file is
 * written under a unique temporary name in its final folder, fsynced, then renamed: a reader
 * sees all of a file or none of it, and concurrent writers of the same digest both write the same
 * bytes, so whichever rename lands last is as good as the first.
 */
export class DirRemoteStore implements RemoteStore {
  constructor(readonly location: string) {}

  private blobPath(digest: Digest): string {
    return join(this.location, 'blobs', digest.slice(0, 2), digest);
  }
  private recordPath(key: Digest): string {
    return join(this.location, 'records', key.slice(0, 2), `${key}.json`);
  }
  private progressPath(key: Digest): string {
    return join(this.location, 'progress', key.slice(0, 2), `${key}.json`);
  }

  async has(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.blobPath(digest))).isFile();
    } catch {
      return false;
    }
  }

  async get(digest: Digest): Promise<Buffer | undefined> {
    checkDigest(digest);
    const path = this.blobPath(digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    if (sha256(bytes) !== digest) {
      await this.quarantine(path);
      throw new CacheCorruption(
        digest,
        `blob ${digest.slice(0, 12)} in the shared store ${this.location} no longer hashes to its name (tampered or damaged); moved aside`,
      );
    }
    return bytes;
  }

  async put(bytes: Uint8Array, known?: Digest): Promise<Digest> {
    const digest = known ?? sha256(bytes);
    checkDigest(digest);
    const path = this.blobPath(digest);
    // A file of the right size is taken as present: readers check the hash, and one that fails
    // is moved aside, so a damaged file is rewritten by the next put.
    try {
      if ((await stat(path)).size === bytes.byteLength) return digest;
    } catch {
      /* absent */
    }
    await atomicWrite(path, bytes);
    return digest;
  }

  async *list(): AsyncIterable<Digest> {
    const root = join(this.location, 'blobs');
    let fans: string[];
    try {
      fans = await readdir(root);
    } catch {
      return;
    }
    for (const fan of fans.sort()) {
      let names: string[];
      try {
        names = await readdir(join(root, fan));
      } catch {
        continue;
      }
      // Temporary files of writers still at work (or killed) start with a dot.
      for (const name of names.sort()) if (isDigest(name)) yield name;
    }
  }

  async getRecord(key: Digest): Promise<StageRecord | undefined> {
    checkDigest(key);
    const path = this.recordPath(key);
    const value = await readJsonFile(path);
    if (value === ABSENT) return undefined;
    const problem =
      value === undefined
        ? 'not JSON'
        : (checkRecord(value) ??
          ((value as StageRecord).key !== key
            ? `it is filed under ${key.slice(0, 12)} but names ${(value as StageRecord).key.slice(0, 12)}`
            : undefined));
    if (problem) {
      await this.quarantine(path);
      throw new CacheCorruption(
        key,
        `record ${key.slice(0, 12)} in the shared store ${this.location} is damaged (${problem}); moved aside`,
      );
    }
    return value as StageRecord;
  }

  async putRecord(record: StageRecord): Promise<void> {
    const problem = checkRecord(record);
    if (problem) throw new Error(`refusing to publish an invalid record: ${problem}`);
    await atomicWrite(this.recordPath(record.key), Buffer.from(`${stableStringify(record)}\n`));
  }

  async getProgress(key: Digest): Promise<Array<[string, IndexEntry]> | undefined> {
    checkDigest(key);
    const path = this.progressPath(key);
    const value = await readJsonFile(path);
    if (value === ABSENT) return undefined;
    if (
      !Array.isArray(value) ||
      !value.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && isIndexEntry(e[1]))
    ) {
      await this.quarantine(path);
      throw new CacheCorruption(
        key,
        `saved progress ${key.slice(0, 12)} in the shared store ${this.location} is damaged; moved aside`,
      );
    }
    return value as Array<[string, IndexEntry]>;
  }

  async putProgress(key: Digest, entries: Array<[string, IndexEntry]>): Promise<void> {
    checkDigest(key);
    await atomicWrite(this.progressPath(key), Buffer.from(`${JSON.stringify(entries)}\n`));
  }

  /**
   * Synchronous reads and writes, for a folder on the job's own disk that mirrors the shared
   * store (cache/shared-stage-store.ts: stages read blobs synchronously). Hash-checked like get;
   * writes are renamed into place but not fsynced (the mirror dies with its job anyway).
   */
  getSync(digest: Digest): Buffer | undefined {
    checkDigest(digest);
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    if (sha256(bytes) !== digest)
      throw new CacheCorruption(
        digest,
        `blob ${digest.slice(0, 12)} in ${this.location} no longer hashes to its name (tampered or damaged)`,
      );
    return bytes;
  }

  putSync(bytes: Uint8Array, known?: Digest): Digest {
    const digest = known ?? sha256(bytes);
    checkDigest(digest);
    const path = this.blobPath(digest);
    if (this.sizeSync(digest) === bytes.byteLength) return digest;
    mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true });
    const tmp = `${path.slice(0, path.lastIndexOf('/'))}/.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
    return digest;
  }

  sizeSync(digest: Digest): number | undefined {
    try {
      return statSync(this.blobPath(digest)).size;
    } catch {
      return undefined;
    }
  }

  /** A damaged file goes to `corrupt/`, for whoever investigates, and out of every reader's way. */
  private async quarantine(path: string): Promise<void> {
    const dir = join(this.location, 'corrupt');
    await mkdir(dir, { recursive: true });
    const name = `${path.slice(path.lastIndexOf('/') + 1)}.${Date.now()}-${randomBytes(4).toString('hex')}`;
    // Another reader may have moved it already: then there is nothing left to do.
    await rename(path, join(dir, name)).catch(() => {});
  }
}

function checkDigest(d: string): void {
  if (!isDigest(d)) throw new Error(`not a sha256 digest: "${d}"`);
}

/** Unique temporary name in the target's folder, write, fsync, rename, fsync the folder. */
async function atomicWrite(path: string, bytes: Uint8Array): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf('/'));
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${hostname()}-${process.pid}-${randomBytes(6).toString('hex')}`);
  const file = await open(tmp, 'w');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } catch (e) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw e;
  }
  await file.close();
  await rename(tmp, path);
  // The rename itself is durable once the folder is synced (some filesystems do not allow it).
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } catch {
    /* EINVAL on filesystems without directory fsync */
  } finally {
    await folder.close();
  }
}

/** `--remote DIR` as a store; the one place that knows which implementation a location means. */
export function openRemote(location: string): RemoteStore {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location))
    throw new Error(`shared store "${location}": only a folder is supported so far (s3:// and others are not)`);
  return new DirRemoteStore(location);
}

const ABSENT = Symbol('absent');

/** A JSON file's value: ABSENT when there is no file, undefined when it does not parse. */
async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ABSENT;
    throw e;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

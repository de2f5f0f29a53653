// The cache behind one small interface. The only backend is LMDB (lmdb-store.ts); tests run the
// shared store suite against it, and a second backend would run the same suite.
import type { Digest } from './canonical.js';

/** What a finished stage leaves behind, stored under its key. */
export interface StageRecord {
  key: Digest;
  kind: string;
  version: number;
  /** The stage id that produced it first; informational only (ids are not part of the key). */
  stageId: string;
  /** Named outputs → blob digest. */
  outputs: Record<string, Digest>;
  /** Further blobs the outputs point to (e.g. one blob per decoded image); kept alive by gc. */
  refs: Digest[];
  metrics: Record<string, unknown>;
  startedAt: string;
  durationMs: number;
  backend: string | null;
  logTail: string[];
  /**
   * Where it ran when not in the runner's own process tree: the SLURM job, its node and GPUs
   * (shown by the report and `show`; not in the lock). Absent for local runs.
   */
  where?: { executor: 'slurm'; jobId: string; node: string; gpus: string | null };
  /** Speed figures (StageResult.timing); not in the lock. Absent in records of older podiums. */
  timing?: Record<string, number>;
}

/** Stat memo: a file whose (size, mtime, inode) are unchanged is not read again. */
export interface StatEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  hash: Digest;
}

export interface Lease {
  pid: number;
  host: string;
  since: number;
  /** Boot id and start time of the holder (process-identity.ts), so a reused PID is not mistaken for it. */
  start?: string;
  /** What the holder is doing, for messages: "stage train@lr=0.01 of p.json", "podium gc". */
  what?: string;
}

export interface RunEntry {
  id: string;
  pipeline: string;
  at: string;
  keys: Digest[];
}

export interface BlobInfo {
  size: number;
  chunks: number;
}

/**
 * One entry of the stage index, a small key → entry memo stages keep across runs (decode: image
 * bytes + params → decoded blob; finetune: recipe + epoch → checkpoint and optimizer state).
 * `blobs` are the blobs it points to: gc keeps the entry only while all of them survive, and a
 * reader must still find them (blobInfo) before trusting it. `meta` is the stage's own JSON.
 */
export interface IndexEntry {
  blobs: Digest[];
  meta: Record<string, unknown>;
}

/** Whether a value read from the index is an entry (an older podium stored strings there). */
export function isIndexEntry(value: unknown): value is IndexEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { blobs, meta } = value as Record<string, unknown>;
  return (
    Array.isArray(blobs) &&
    blobs.every((b) => typeof b === 'string' && /^[0-9a-f]{64}$/.test(b)) &&
    typeof meta === 'object' &&
    meta !== null &&
    !Array.isArray(meta)
  );
}

/** (path, size, mtimeMs, inode) of a file or folder, as seen when a run finished. */
export type StatSig = [string, number, number, number];

export interface Store {
  readonly path: string;
  /**
   * What reading found wrong (a corrupt record, treated as a miss), one line each, each once.
   * Reads never repair: the verb that opened the store prints these, and a writer fixes the
   * cause (the run that recomputes the record overwrites it; gc removes it).
   */
  readonly warnings: readonly string[];
  /** Stores bytes under their sha256 (idempotent) and resolves once durable. */
  putBlob(bytes: Uint8Array): Promise<Digest>;
  /**
   * Queues bytes for storing and returns their digest at once: for stages writing thousands of
   * blobs, where waiting for each commit would dominate. Durable after flush(); the runner
   * flushes before committing the record that names them.
   */
  queueBlob(bytes: Uint8Array, digest?: Digest): Digest;
  /**
   * The bytes, or undefined when absent. Bytes that no longer hash to their digest throw
   * CacheCorruption: a tampered or damaged blob is never used. `verify: false` skips the hash
   * for callers that only copy bytes elsewhere and check them there. A store opened with
   * `strictReads` (the one stages read through) also throws CacheCorruption for an absent blob,
   * which another process may have removed as corrupt: a miss to repair, not a crash. `optional`
   * is for the reader that probes (finetune looking for saved progress).
   */
  getBlob(digest: Digest, opts?: { verify?: boolean; optional?: boolean }): Buffer | undefined;
  /**
   * Reads blobs for the length of `fn` without allocating per blob: `fn` gets hash-checked views
   * that are valid only while it runs (copy what must outlive it), all read in one read
   * transaction that is released when `fn` returns. For reading a dataset batch by batch, in
   * memory that does not grow with the dataset. A missing or damaged blob throws CacheCorruption.
   */
  withBlobs<T>(digests: readonly Digest[], fn: (views: Uint8Array[]) => T): T;
  blobInfo(digest: Digest): BlobInfo | undefined;
  /**
   * A record, schema-checked, its outputs present. A corrupt one is a miss and a warning; it
   * stays where it is (reading never writes) until a run overwrites it or gc removes it.
   */
  getRecord(key: Digest): StageRecord | undefined;
  /** Writes the record in one transaction, refusing it if a blob it names is missing. */
  commitRecord(record: StageRecord): void;
  deleteRecord(key: Digest): void;
  hasRecord(key: Digest): boolean;
  /**
   * The stage index (IndexEntry). A value that is not an entry (a string an older podium
   * stored, or damage) reads as undefined: a miss.
   */
  getIndex(key: string): IndexEntry | undefined;
  setIndex(key: string, entry: IndexEntry): void;
  /** Every index key with its entry, undefined where the value is not an entry (gc removes those). */
  indexEntries(): Array<[string, IndexEntry | undefined]>;
  deleteIndex(key: string): void;
  getStat(path: string): StatEntry | undefined;
  setStat(path: string, entry: StatEntry): void;
  deleteStat(path: string): void;
  /** Takes the lease on a key unless a live process holds it; true when ours. */
  tryLease(key: Digest, what?: string): boolean;
  releaseLease(key: Digest): void;
  /** The live process other than this one that holds a key's lease, if any. */
  leaseHolder(key: Digest): Lease | undefined;
  /**
   * Registers a live run (or verify) for as long as it uses the cache, unless gc holds it: then
   * nothing is registered and gc's lease is returned. gc never sweeps while a run is registered,
   * so nothing a run has committed or is about to read disappears under it.
   */
  beginRun(id: string, what: string): Lease | undefined;
  /** Writes a compacted copy of the environment into an existing empty folder. */
  compactInto(dir: string): Promise<void>;
  endRun(id: string): void;
  /** Takes the cache for gc unless runs or stages hold it: then returns their leases. */
  beginGc(): Lease[];
  endGc(): void;
  addRun(run: RunEntry): void;
  runs(): RunEntry[];
  recordKeys(): Digest[];
  blobDigests(): Digest[];
  statPaths(): string[];
  deleteRun(id: string): void;
  deleteBlob(digest: Digest): number;
  /** Waits for pending writes. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** A stored blob whose bytes are missing or no longer hash to its digest. */
export class CacheCorruption extends Error {
  constructor(
    readonly digest: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The cache cannot be used where it is (read-only, not a folder, disk full): one line naming the
 * path and what to do, never a stack trace.
 */
export class CacheUnavailable extends Error {}

/**
 * The cache folder was replaced (by `gc --compact`) after this process opened it: what it has open
 * is the old copy, where nothing may be written any more. Open the cache again.
 */
export class CacheReplaced extends Error {}

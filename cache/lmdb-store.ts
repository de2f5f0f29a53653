// The LMDB backend. One environment, five named databases. LMDB gives multi-process readers and
// one writer with ACID transactions, so two `podium run`s can share a cache and a killed process
// never leaves a half-written record. Leases live in lmdb-leases.ts, LMDB's failures in words in
// lmdb-errors.ts.
import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import { sha256, type Digest } from './canonical.js';
import {
  CacheCorruption,
  isIndexEntry,
  type BlobInfo,
  type IndexEntry,
  type Lease,
  type RunEntry,
  type StageRecord,
  type StatEntry,
  type Store,
} from './store.js';
import { LmdbLeases } from './lmdb-leases.js';
import { hushLmdbCommitNoise, unavailable, writeError } from './lmdb-errors.js';
import { checkRecord } from './record-schema.js';
import { clearNoopMemos } from './noop-memos.js';

// lmdb's CommonJS build is one file; its ES module entry is many. Requiring it halves the load
// time (~40 ms against ~95 ms here), which is a third of a no-op run.
const { open } = createRequire(import.meta.url)('lmdb') as typeof import('lmdb');

/** Whether lmdb-js returned a view of its memory map (it marks those ArrayBuffers `isSharedMap`). */
const isMapped = (bytes: Uint8Array): boolean => (bytes.buffer as { isSharedMap?: boolean }).isSharedMap === true;

/**
 * The memory map's size, fixed up front on 64-bit hosts (virtual address space only: the file
 * grows with what is written). lmdb-js otherwise starts at 128 KB and remaps as the data grows,
 * inside write transactions, while the decode stage's worker threads read and write the same
 * environment and other processes (a second run, gc) grow it too; a run beside a looping
 * `gc --keep-runs 0` (which keeps the file small) failed that way: "txn has failed/finished,
 * can't commit" in decode (chaos suite). Past this size lmdb-js still grows the map.
 */
const MAP_BYTES = process.arch.endsWith('64') ? 64 * 2 ** 30 : undefined;

/** LMDB values may be large, but copying one huge buffer is slow and risky; chunk above this. */
const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

export class LmdbStore implements Store {
  private readonly env: RootDatabase;
  private readonly blobData: Database<Buffer, string>;
  private readonly blobMeta: Database<BlobInfo, string>;
  private readonly records: Database<StageRecord, string>;
  private readonly stats: Database<StatEntry, string>;
  private readonly leaseTable: LmdbLeases;
  private readonly runLog: Database<RunEntry, string>;
  /** Values are IndexEntry objects; an older podium stored strings, which read as misses. */
  private readonly index: Database<unknown, string>;
  /** Blobs queued for writing but perhaps not yet committed. */
  private readonly pendingBlobs = new Set<Digest>();
  /** Warnings about corrupt entries found while reading, each once, for the verb to print. */
  readonly warnings: string[] = [];

  constructor(
    readonly path: string,
    private readonly options: { chunkBytes?: number; strictReads?: boolean } = {},
  ) {
    hushLmdbCommitNoise();
    try {
      mkdirSync(path, { recursive: true });
      const folderIno = statSync(path).ino;
      // noSubdir false: lmdb-js would take a folder whose name has a dot for a file.
      this.env = open({ path, maxDbs: 16, noSubdir: false, ...(MAP_BYTES ? { mapSize: MAP_BYTES } : {}) });
      this.blobData = this.env.openDB({ name: 'blob-data', encoding: 'binary' });
      this.blobMeta = this.env.openDB({ name: 'blob-meta' });
      this.records = this.env.openDB({ name: 'records' });
      this.stats = this.env.openDB({ name: 'stats' });
      this.leaseTable = new LmdbLeases(this.env.openDB({ name: 'leases' }), (fn) => this.txn(fn), path, folderIno);
      this.runLog = this.env.openDB({ name: 'runs' });
      this.index = this.env.openDB({ name: 'index' });
    } catch (e) {
      throw unavailable(path, e);
    }
  }

  async putBlob(bytes: Uint8Array): Promise<Digest> {
    const digest = this.queueBlob(bytes);
    await this.flush();
    return digest;
  }

  queueBlob(bytes: Uint8Array, known?: Digest): Digest {
    const digest = known ?? sha256(bytes);
    if (this.pendingBlobs.has(digest) || this.blobMeta.doesExist(digest)) return digest;
    this.pendingBlobs.add(digest);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const chunkBytes = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const chunks = Math.max(1, Math.ceil(buf.length / chunkBytes));
    // lmdb-js batches queued writes into few transactions, in order: data before the meta that
    // marks a blob present, so a crash never leaves a meta without its data.
    if (chunks === 1) this.track(this.blobData.put(digest, buf));
    else
      for (let i = 0; i < chunks; i++)
        this.track(this.blobData.put(`${digest}#${i}`, buf.subarray(i * chunkBytes, (i + 1) * chunkBytes)));
    this.track(this.blobMeta.put(digest, { size: buf.length, chunks }));
    return digest;
  }

  getBlob(digest: Digest, opts: { verify?: boolean; optional?: boolean } = {}): Buffer | undefined {
    const info = this.blobMeta.get(digest);
    if (!info) {
      if (this.options.strictReads && !opts.optional)
        throw new CacheCorruption(digest, `blob ${digest.slice(0, 12)} is missing from the cache`);
      return undefined;
    }
    let bytes: Buffer | undefined;
    if (info.chunks === 1) bytes = this.blobData.get(digest);
    else {
      const parts: Buffer[] = [];
      for (let i = 0; i < info.chunks; i++) {
        const part = this.blobData.get(`${digest}#${i}`);
        if (!part) throw new CacheCorruption(digest, `blob ${digest.slice(0, 12)} is missing chunk ${i}`);
        parts.push(part);
      }
      bytes = Buffer.concat(parts);
    }
    if (!bytes || bytes.length !== info.size)
      throw new CacheCorruption(digest, `blob ${digest.slice(0, 12)} is truncated`);
    if (opts.verify !== false && sha256(bytes) !== digest) {
      throw new CacheCorruption(
        digest,
        `blob ${digest.slice(0, 12)} no longer hashes to its key (tampered or corrupt)`,
      );
    }
    return bytes;
  }

  /**
   * lmdb-js (3.5) hands out a view of its memory map only for values of 16 MiB or more; a smaller
   * one is copied into its single reusable buffer, overwritten by the next read. So each such
   * view is copied once more, into an arena kept for the next call (one per nesting depth): one
   * memcpy per blob and no allocation once the arena fits a batch, against getBlob's fresh
   * Buffer per blob. Every read happens in one read transaction, released (reset) before
   * returning, so between batches no old snapshot is pinned and the writer reuses its pages.
   */
  withBlobs<T>(digests: readonly Digest[], fn: (views: Uint8Array[]) => T): T {
    const arena = (this.arenas[this.blobDepth] ??= { bytes: new Uint8Array(0) });
    this.blobDepth++;
    const transaction = this.blobData.useReadTransaction();
    try {
      const found = digests.map((digest) => {
        const info = this.blobMeta.get(digest, { transaction });
        if (!info) throw new CacheCorruption(digest, `blob ${digest.slice(0, 12)} is missing from the cache`);
        return info;
      });
      const copied = found.reduce((sum, info) => sum + info.size, 0);
      if (arena.bytes.length < copied) arena.bytes = new Uint8Array(copied);
      let at = 0;
      const views = digests.map((digest, i) => {
        // Chunked (over 64 MiB): reassembled and hash-checked by getBlob, so copied.
        if (found[i]!.chunks > 1) return this.getBlob(digest)!;
        const read = this.readFast(digest, transaction);
        if (!read || read.length !== found[i]!.size)
          throw new CacheCorruption(digest, `blob ${digest.slice(0, 12)} is truncated`);
        let view = read;
        if (!isMapped(read)) {
          // lmdb-js's reusable buffer overrides `length`; set() and hashing would see all of it.
          view = arena.bytes.subarray(at, at + read.length);
          view.set(Uint8Array.prototype.subarray.call(read, 0, read.length));
          at += read.length;
        }
        if (sha256(view) !== digest)
          throw new CacheCorruption(
            digest,
            `blob ${digest.slice(0, 12)} no longer hashes to its key (tampered or corrupt)`,
          );
        return view;
      });
      return fn(views);
    } finally {
      this.blobDepth--;
      transaction.done();
      this.blobData.resetReadTxn();
    }
  }

  private readonly arenas: Array<{ bytes: Uint8Array }> = [];
  private blobDepth = 0;
  private readFast(digest: Digest, transaction: unknown): Uint8Array | undefined {
    // getBinaryFast takes the transaction option at run time; its typings omit it.
    return (this.blobData.getBinaryFast as (id: string, options: { transaction: unknown }) => Buffer | undefined).call(
      this.blobData,
      digest,
      { transaction },
    );
  }

  blobInfo(digest: Digest): BlobInfo | undefined {
    return this.blobMeta.get(digest);
  }

  getRecord(key: Digest): StageRecord | undefined {
    const raw: unknown = this.records.get(key);
    if (raw === undefined) return undefined;
    const problem = checkRecord(raw) ?? this.missingBlob(raw as StageRecord);
    if (problem) {
      // Reading never writes: the record stays for the run that recomputes it (and overwrites
      // it) or for gc. But the no-op memos vouch that it is sound, and a plain run trusting
      // them would never get to the repair: they go (files beside LMDB, not the cache itself).
      const warning = `cache record ${key.slice(0, 12)} is corrupt (${problem}); treated as missing: the next run recomputes it, podium gc removes it`;
      if (!this.warnings.includes(warning)) {
        this.warnings.push(warning);
        try {
          clearNoopMemos(this.path);
        } catch {
          /* a read-only cache: no run can trust or write memos there either */
        }
      }
      return undefined;
    }
    return raw as StageRecord;
  }

  private missingBlob(record: StageRecord): string | undefined {
    for (const d of Object.values(record.outputs))
      if (!this.blobMeta.doesExist(d)) return `output blob ${d.slice(0, 12)} missing`;
    return undefined;
  }

  commitRecord(record: StageRecord): void {
    const problem = checkRecord(record);
    if (problem) throw new Error(`refusing to write an invalid record: ${problem}`);
    this.txn(() => {
      for (const d of [...Object.values(record.outputs), ...record.refs]) {
        if (!this.blobMeta.doesExist(d))
          throw new Error(`record ${record.key.slice(0, 12)} names blob ${d.slice(0, 12)} which is not stored`);
      }
      void this.records.put(record.key, record);
    });
  }

  deleteRecord(key: Digest): void {
    this.txn(() => this.records.removeSync(key));
    clearNoopMemos(this.path);
  }
  hasRecord(key: Digest): boolean {
    return this.records.doesExist(key);
  }
  getIndex(key: string): IndexEntry | undefined {
    return this.readIndex(key);
  }
  setIndex(key: string, entry: IndexEntry): void {
    if (!isIndexEntry(entry)) throw new Error(`refusing to write an invalid index entry under ${key}`);
    this.track(this.index.put(key, { blobs: entry.blobs, meta: entry.meta }));
  }
  // Keys only, then each value on its own: one undecodable value must not end the listing.
  indexEntries(): Array<[string, IndexEntry | undefined]> {
    return [...this.index.getKeys()].map((k) => [k, this.readIndex(k)]);
  }
  /** An older podium stored strings here (not msgpack, so decoding them throws): a miss. */
  private readIndex(key: string): IndexEntry | undefined {
    let value: unknown;
    try {
      value = this.index.get(key);
    } catch {
      return undefined;
    }
    return isIndexEntry(value) ? value : undefined;
  }
  deleteIndex(key: string): void {
    this.track(this.index.remove(key));
  }

  getStat(path: string): StatEntry | undefined {
    return this.stats.get(path);
  }
  // The stat memo is an optimisation, so its writes need not be awaited one by one.
  setStat(path: string, entry: StatEntry): void {
    this.track(this.stats.put(path, entry));
  }
  deleteStat(path: string): void {
    this.track(this.stats.remove(path));
  }

  tryLease(key: Digest, what?: string): boolean {
    return this.leaseTable.tryLease(key, what);
  }
  releaseLease(key: Digest): void {
    this.leaseTable.releaseLease(key);
  }
  leaseHolder(key: Digest): Lease | undefined {
    return this.leaseTable.leaseHolder(key);
  }
  beginRun(id: string, what: string): Lease | undefined {
    return this.leaseTable.beginRun(id, what);
  }
  endRun(id: string): void {
    this.leaseTable.endRun(id);
  }
  beginGc(): Lease[] {
    return this.leaseTable.beginGc();
  }
  endGc(): void {
    this.leaseTable.endGc();
  }

  async compactInto(dir: string): Promise<void> {
    await this.env.flushed;
    await this.env.backup(dir, true);
  }

  addRun(run: RunEntry): void {
    this.txn(() => this.runLog.putSync(run.id, run));
  }
  runs(): RunEntry[] {
    return [...this.runLog.getRange()].map((e) => e.value);
  }
  deleteRun(id: string): void {
    this.txn(() => this.runLog.removeSync(id));
  }
  recordKeys(): Digest[] {
    return [...this.records.getKeys()] as Digest[];
  }
  blobDigests(): Digest[] {
    return [...this.blobMeta.getKeys()] as Digest[];
  }
  statPaths(): string[] {
    return [...this.stats.getKeys()];
  }

  deleteBlob(digest: Digest): number {
    const info = this.blobMeta.get(digest);
    if (!info) return 0;
    this.txn(() => {
      void this.blobMeta.remove(digest);
      if (info.chunks === 1) void this.blobData.remove(digest);
      else for (let i = 0; i < info.chunks; i++) void this.blobData.remove(`${digest}#${i}`);
    });
    return info.size;
  }

  async flush(): Promise<void> {
    // Settle our own writes first: after a failed commit lmdb-js never resolves env.flushed.
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
    if (this.failure) throw this.failure;
    try {
      await this.env.flushed;
    } catch (e) {
      this.failure ??= writeError(this.path, e);
    }
    if (this.failure) throw this.failure;
    this.pendingBlobs.clear();
  }

  /** Closes the environment; a write failure was already reported by flush or a transaction. */
  async close(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
    if (this.failure) {
      // After a failed commit lmdb-js's close never resolves (it waits for the lost batch), and
      // an await on it would end the process silently with exit code 0; LMDB's native state may
      // also be damaged by then (seen: a heap-corruption abort inside close). Leave it open: the
      // process is about to exit and the OS closes the file.
      return;
    }
    try {
      await this.env.flushed;
    } catch {
      /* reported by flush */
    }
    await this.env.close();
  }

  /**
   * Queued writes resolve later, in batches; a failed batch (disk full) must neither crash the
   * process as an unhandled rejection nor pass unnoticed: the first failure is kept and thrown
   * by the next flush, before any record could name what was lost.
   */
  private failure: Error | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  private track(write: Promise<unknown>): void {
    const settled = write
      .then(
        () => undefined,
        (e: unknown) => {
          // lmdb-js rejects a second promise it hangs on the error; nobody else awaits it.
          (e as { commitError?: Promise<unknown> }).commitError?.catch(() => {});
          this.failure ??= writeError(this.path, e);
        },
      )
      .finally(() => this.inflight.delete(settled));
    this.inflight.add(settled);
  }

  /** A synchronous transaction whose I/O failure becomes a CacheUnavailable in words. */
  private txn<T>(fn: () => T): T {
    try {
      return this.env.transactionSync(fn);
    } catch (e) {
      throw writeError(this.path, e);
    }
  }
}

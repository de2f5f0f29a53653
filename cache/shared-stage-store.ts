// The StageStore (stages/contract.ts) a cluster job hands its stage: blobs come from the shared
// store and go to it, with no LMDB anywhere. Stages read blobs synchronously, so a folder on the
// job's own disk mirrors what the job has read or written (hash-checked both ways); the index
// and the stat memo are the job's own (a file and memory), and travel back in its result.
// Worker processes and threads open their own handle through `opener`, on the same mirror and
// index file, so what a worker writes is seen by the job after flush().
import { appendFileSync, closeSync, openSync, readSync, statSync } from 'node:fs';
import type { IndexEntry, OwnStageStore, StoreOpener } from '../stages/contract.js';
import type { Digest } from './canonical.js';
import { compiledUrl } from './compiled-url.js';
import { hashPath, type StatMemo } from './hash-files.js';
import { DirRemoteStore, openRemote, type RemoteStore } from './remote-store.js';
import { CacheCorruption, isIndexEntry, type BlobInfo, type StatEntry } from './store.js';

/** This module's compiled URL (workers load compiled code; under vitest this file runs from source). */
const OPENER_MODULE = compiledUrl(import.meta.url);

export interface SharedStoreArgs {
  /** The shared store's location (--remote). */
  remote: string;
  /** A folder on the job's own disk holding the blobs it has read or written. */
  mirror: string;
  /** The job's index: one JSON line [key, entry] per write, appended by every handle. */
  index: string;
  /** Shared folder for files stages generate (the synthetic dataset's images), kept across jobs. */
  filesDir: string;
}

class SharedStageStore implements OwnStageStore {
  readonly filesDir: string;
  readonly opener: StoreOpener;
  private readonly mirror: DirRemoteStore;
  private readonly remote: RemoteStore;
  /** Written to the mirror, not yet to the shared store: flush() pushes them. */
  private readonly unpushed = new Set<Digest>();
  private readonly index = new Map<string, IndexEntry>();
  /** How far into the index file this handle has read (other handles append to it). */
  private indexRead = 0;
  private readonly stats = new Map<string, StatEntry>();
  private readonly statMemo: StatMemo = {
    getStat: (p) => this.stats.get(p),
    setStat: (p, e) => {
      this.stats.set(p, e);
    },
  };

  constructor(private readonly args: SharedStoreArgs) {
    this.filesDir = args.filesDir;
    this.opener = { module: OPENER_MODULE, args };
    this.mirror = new DirRemoteStore(args.mirror);
    this.remote = openRemote(args.remote);
  }

  async putBlob(bytes: Uint8Array): Promise<Digest> {
    const digest = this.mirror.putSync(bytes);
    await this.remote.put(bytes, digest);
    return digest;
  }

  queueBlob(bytes: Uint8Array, known?: Digest): Digest {
    const digest = this.mirror.putSync(bytes, known);
    this.unpushed.add(digest);
    return digest;
  }

  getBlob(digest: Digest, opts: { optional?: boolean } = {}): Buffer | undefined {
    const bytes = this.mirror.getSync(digest) ?? this.fetchSync(digest);
    if (!bytes && !opts.optional)
      throw new CacheCorruption(
        digest,
        `blob ${digest.slice(0, 12)} is missing from the shared store ${this.remote.location}`,
      );
    return bytes;
  }

  withBlobs<T>(digests: readonly Digest[], fn: (views: Uint8Array[]) => T): T {
    return fn(digests.map((d) => this.getBlob(d)!));
  }

  blobInfo(digest: Digest): BlobInfo | undefined {
    const size =
      this.mirror.sizeSync(digest) ??
      (this.remote instanceof DirRemoteStore ? this.remote.sizeSync(digest) : undefined);
    return size === undefined ? undefined : { size, chunks: 1 };
  }

  getIndex(key: string): IndexEntry | undefined {
    this.readIndex();
    return this.index.get(key);
  }

  setIndex(key: string, entry: IndexEntry): void {
    // One write per line: appends from several processes never interleave within a line.
    appendFileSync(this.args.index, `${JSON.stringify([key, entry])}\n`);
    this.index.set(key, entry);
  }

  /** Every entry written by any handle of this job, for the job's result and saved progress. */
  indexEntries(): Array<[string, IndexEntry]> {
    this.readIndex();
    return [...this.index];
  }

  hashPath(absPath: string): Digest | undefined {
    return hashPath(this.statMemo, absPath);
  }

  /** Pushes what was queued to the shared store; durable there once this resolves. */
  async flush(): Promise<void> {
    for (const d of [...this.unpushed]) {
      const bytes = this.mirror.getSync(d);
      if (!bytes)
        throw new CacheCorruption(d, `blob ${d.slice(0, 12)} vanished from the job's mirror ${this.args.mirror}`);
      await this.remote.put(bytes, d);
      this.unpushed.delete(d);
    }
  }

  async close(): Promise<void> {
    await this.flush();
  }

  /** Fetches blobs (hash-checked) into the mirror before the stage runs: its inputs, saved progress. */
  async prefetch(digests: Iterable<Digest>): Promise<void> {
    for (const d of new Set(digests)) {
      if (this.mirror.sizeSync(d) !== undefined) continue;
      const bytes = await this.remote.get(d);
      if (!bytes)
        throw new CacheCorruption(d, `blob ${d.slice(0, 12)} is missing from the shared store ${this.remote.location}`);
      this.mirror.putSync(bytes, d);
    }
  }

  /** Makes sure the shared store holds these blobs (the record's, saved progress), from the mirror. */
  async publish(digests: Iterable<Digest>): Promise<void> {
    await this.flush();
    for (const d of new Set(digests)) {
      if (await this.remote.has(d)) continue;
      const bytes = this.mirror.getSync(d);
      if (!bytes) throw new Error(`blob ${d.slice(0, 12)} is neither in the shared store nor in the job's mirror`);
      await this.remote.put(bytes, d);
    }
  }

  /** A blob the job was not handed: fetched (and checked) from a folder store; other stores are prefetched. */
  private fetchSync(digest: Digest): Buffer | undefined {
    if (!(this.remote instanceof DirRemoteStore)) return undefined;
    const bytes = this.remote.getSync(digest);
    if (bytes) this.mirror.putSync(bytes, digest);
    return bytes;
  }

  /** Takes in the lines other handles appended since the last look. */
  private readIndex(): void {
    let size: number;
    try {
      size = statSync(this.args.index).size;
    } catch {
      return;
    }
    if (size <= this.indexRead) return;
    const buf = Buffer.alloc(size - this.indexRead);
    const fd = openSync(this.args.index, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.indexRead);
    } finally {
      closeSync(fd);
    }
    // Only whole lines: a writer may be half-way through its append.
    const end = buf.lastIndexOf(0x0a) + 1;
    for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
      if (!line) continue;
      const [key, entry] = JSON.parse(line) as [string, unknown];
      if (isIndexEntry(entry)) this.index.set(key, entry);
    }
    this.indexRead += end;
  }
}

export type { SharedStageStore };

/** The opener's entry point, and the job's own way to make its store. */
export function openStageStore(args: unknown): SharedStageStore {
  const a = args as SharedStoreArgs;
  for (const k of ['remote', 'mirror', 'index', 'filesDir'] as const)
    if (typeof a?.[k] !== 'string') throw new Error(`shared-stage-store: args.${k} is missing`);
  return new SharedStageStore(a);
}

// The StageStore (stages/contract.ts) of the local LMDB cache: what a stage may do with the
// cache, and nothing of the rest of Store (records, leases, runs, gc). This module is also the
// opener that worker threads and processes load to get a handle of their own (openStageStore).
import { dirname } from 'node:path';
import type { IndexEntry, OwnStageStore, StageStore, StoreOpener } from '../stages/contract.js';
import type { Digest } from './canonical.js';
import { compiledUrl } from './compiled-url.js';
import { hashPath } from './hash-files.js';
import { LmdbStore } from './lmdb-store.js';
import { CacheCorruption, type BlobInfo, type Store } from './store.js';

/**
 * This module's compiled URL. Workers always run compiled code (they cannot load TypeScript),
 * while under vitest this module runs from source: then its twin under dist/ is named.
 */
const OPENER_MODULE = compiledUrl(import.meta.url);

/** What the opener carries: where the cache is. */
export interface LocalStoreArgs {
  path: string;
}

class LocalStageStore implements StageStore {
  readonly filesDir: string;
  readonly opener: StoreOpener;

  constructor(private readonly store: Store) {
    // Beside the cache folder, where the synthetic dataset's images have always gone: a manifest
    // names them relative to it (stages/data/manifest.ts), so moving it would change no key but
    // lose the files.
    this.filesDir = dirname(store.path);
    this.opener = { module: OPENER_MODULE, args: { path: store.path } satisfies LocalStoreArgs };
  }

  putBlob(bytes: Uint8Array): Promise<Digest> {
    return this.store.putBlob(bytes);
  }
  queueBlob(bytes: Uint8Array, digest?: Digest): Digest {
    return this.store.queueBlob(bytes, digest);
  }

  getBlob(digest: Digest, opts: { optional?: boolean } = {}): Buffer | undefined {
    // Always strict, whatever the Store was opened with: an input blob that another process
    // removed as corrupt is a miss for the runner to repair, never "undefined" to a stage.
    const bytes = this.store.getBlob(digest, { optional: true });
    if (!bytes && !opts.optional)
      throw new CacheCorruption(digest, `blob ${digest.slice(0, 12)} is missing from the cache`);
    return bytes;
  }

  // Batch reads in one LMDB read transaction, without a fresh Buffer per blob (lmdb-store.ts);
  // missing or damaged blobs throw CacheCorruption there too, whatever strictReads says.
  withBlobs<T>(digests: readonly Digest[], fn: (views: Uint8Array[]) => T): T {
    return this.store.withBlobs(digests, fn);
  }

  blobInfo(digest: Digest): BlobInfo | undefined {
    return this.store.blobInfo(digest);
  }
  getIndex(key: string): IndexEntry | undefined {
    return this.store.getIndex(key);
  }
  setIndex(key: string, entry: IndexEntry): void {
    this.store.setIndex(key, entry);
  }
  hashPath(absPath: string): Digest | undefined {
    return hashPath(this.store, absPath);
  }
  flush(): Promise<void> {
    return this.store.flush();
  }
}

/** A handle the opening thread owns: closing it closes its own LMDB environment handle. */
class OwnLocalStageStore extends LocalStageStore implements OwnStageStore {
  constructor(private readonly own: LmdbStore) {
    super(own);
  }
  close(): Promise<void> {
    return this.own.close();
  }
}

const adapters = new WeakMap<Store, StageStore>();

/** The StageStore over a Store this process has open (one per Store, so cheap to ask for again). */
export function stageStoreOf(store: Store): StageStore {
  let adapter = adapters.get(store);
  if (!adapter) adapters.set(store, (adapter = new LocalStageStore(store)));
  return adapter;
}

/** The opener's entry point: a worker thread or process opens its own handle on the cache. */
export function openStageStore(args: unknown): OwnStageStore {
  const { path } = args as LocalStoreArgs;
  if (typeof path !== 'string') throw new Error('openStageStore: args.path (the cache folder) is missing');
  return new OwnLocalStageStore(new LmdbStore(path, { strictReads: true }));
}

// What every verb starts from: the analyzed pipeline (or a usage error), the cache, the lock.
import { readLock, type LockFile } from '../cache/lockfile.js';
import { analyze, type Pipeline } from './analyze.js';
import { lockPathOf } from './lock-path.js';
import { UsageError } from './diagnostics.js';

import { LmdbStore } from '../cache/lmdb-store.js';
import { cacheDir, type CommonOptions } from './cache-path.js';

export { cacheDir, type CommonOptions };

export function openStore(opts: CommonOptions): LmdbStore {
  return new LmdbStore(cacheDir(opts));
}

export function loadPipeline(file: string | undefined, opts: CommonOptions = {}): Pipeline {
  if (!file) throw new UsageError('missing the pipeline file argument');
  const result = analyze(file, process.cwd(), opts.backend);
  if (!result.ok) throw new UsageError(`${file}: invalid pipeline (${result.errors.length} problem${result.errors.length > 1 ? 's' : ''})`, result.errors);
  return result.value;
}

export function lockOf(pipeline: Pipeline): { path: string; lock: LockFile | undefined } {
  const path = lockPathOf(pipeline.file);
  try {
    return { path, lock: readLock(path) };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

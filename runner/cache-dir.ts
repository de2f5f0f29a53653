import { LmdbStore } from '../cache/lmdb-store.js';
import { cacheDir, type CommonOptions } from './cache-path.js';

export { cacheDir, type CommonOptions };

export function openStore(opts: CommonOptions): LmdbStore {
  return new LmdbStore(cacheDir(opts));
}

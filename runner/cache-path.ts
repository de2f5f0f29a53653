// Where the cache lives. Kept apart from the store so the no-op check can find it without loading LMDB.
import { resolve } from 'node:path';

export interface CommonOptions {
  cache?: string;
  /** --backend: overrides the pipeline's `backend` for every stage that does not set its own. */
  backend?: string;
}

/** --cache, else PODIUM_CACHE, else .podium/cache under the working directory. */
export function cacheDir(opts: CommonOptions): string {
  return resolve(opts.cache ?? process.env.PODIUM_CACHE ?? '.podium/cache');
}

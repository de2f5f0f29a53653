// Reading upstream artifacts: a blob that an input's record names must be in the cache (the
// runner checked when it committed the record), so its absence is an error, not a miss.
import type { Digest } from '../../cache/canonical.js';
import type { StageStore } from '../contract.js';

export function blobOf(store: StageStore, digest: Digest): Buffer {
  const blob = store.getBlob(digest);
  if (!blob) throw new Error(`input blob ${digest.slice(0, 12)} missing from the cache`);
  return blob;
}

export function readJson<T>(store: StageStore, digest: Digest): T {
  return JSON.parse(blobOf(store, digest).toString()) as T;
}

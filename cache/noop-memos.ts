// Where no-op memos live: small JSON files in the cache folder, beside the LMDB environment, so
// that checking one needs neither LMDB nor the stage registry (see runner/noop-memo.ts). A memo
// vouches that records exist, so deleting any record (gc, a corrupt or tampered entry) clears
// them all; the next run takes the full path and writes a fresh one.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { rmSync } from 'node:fs';

export function noopMemoDir(cacheDir: string): string {
  return join(cacheDir, 'noop');
}

export function noopMemoPath(cacheDir: string, pipelinePath: string): string {
  return join(noopMemoDir(cacheDir), `${createHash('sha256').update(pipelinePath).digest('hex').slice(0, 32)}.json`);
}

export function clearNoopMemos(cacheDir: string): void {
  rmSync(noopMemoDir(cacheDir), { recursive: true, force: true });
}

// The lock file: per stage its fingerprint, key, outputs and metrics, written next to the
// pipeline with sorted keys so it diffs well and can be committed. status, diff and verify read it.
import { readFileSync } from 'node:fs';
import { stableStringify, type Digest } from './canonical.js';
import type { Fingerprint } from './fingerprint.js';
import { writeFileAtomic } from './write-atomic.js';

export interface LockStage extends Fingerprint {
  key: Digest;
  outputs: Record<string, Digest>;
  metrics: Record<string, unknown>;
}

export interface LockFile {
  pipeline: string;
  seed: number;
  stages: Record<string, LockStage>;
}

export function readLock(path: string): LockFile | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseLock(text, path);
}

export function parseLock(text: string, where: string): LockFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not a valid lock file (${(e as Error).message})`);
  }
  const v = value as Partial<LockFile> | null;
  if (!v || typeof v !== 'object' || typeof v.pipeline !== 'string' || !v.stages || typeof v.stages !== 'object') {
    throw new Error(`${where}: not a podium lock file (expected "pipeline" and "stages")`);
  }
  return v as LockFile;
}

export function writeLock(path: string, lock: LockFile): void {
  writeFileAtomic(path, `${stableStringify(lock)}\n`);
}

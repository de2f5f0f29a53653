// A stage's fingerprint is plain JSON: kind, kind version, params with defaults, the content
// digests of its inputs and deps, and the seed. Its canonical digest is the stage key. Inputs
// contribute the digest of their outputs (not their keys), so an upstream stage that re-runs and
// produces the same bytes leaves everything below it cached (early cutoff).
import { resolve } from 'node:path';
import { digestOf, type Digest } from './canonical.js';
import { hashPath, type StatMemo } from './hash-files.js';
import type { StageRecord } from './store.js';

export interface Fingerprint {
  kind: string;
  version: number;
  params: Record<string, unknown>;
  inputs: Record<string, Digest | Digest[]>;
  /** Project-relative path → content digest; null when the path does not exist. */
  deps: Record<string, Digest | null>;
  seed: number;
}

export function stageKey(fp: Fingerprint): Digest {
  return digestOf(fp);
}

/** What a downstream stage's key sees of an upstream one: the digest of its outputs. */
export function outputsDigest(outputs: StageRecord['outputs']): Digest {
  return digestOf(outputs);
}

export function hashDeps(store: StatMemo, projectDir: string, paths: string[]): Record<string, Digest | null> {
  const deps: Record<string, Digest | null> = {};
  for (const p of paths) deps[p] = hashPath(store, resolve(projectDir, p)) ?? null;
  return deps;
}

// The no-op fast path. After a complete, successful run, podium remembers the pipeline file's
// digest, the stat signature of every file the results depend on (deps and outs, folders
// included) and the stage keys. The next `podium run` that finds the same pipeline bytes, the
// same stats and every record still cached has nothing to do, and says so without analysing
// the pipeline or fingerprinting a stage: bookkeeping only. Any mismatch falls back to the full
// path, which is always correct on its own; the memo only lets it be skipped.
import { readFileSync, statSync } from 'node:fs';
import { digestOf, sha256, type Digest } from '../cache/canonical.js';
import { statTree } from '../cache/hash-files.js';
import type { NoopMemo, StatSig, Store } from '../cache/store.js';
import { stageKinds } from '../stages/registry.js';
import type { Pipeline } from './analyze.js';
import type { StageReport } from './events.js';
import type { Outcome } from './executor.js';

/** A file modified this recently may change again within the same mtime tick. */
const RACY_MS = 2000;

function podiumDigest(): string {
  return digestOf([...stageKinds.values()].map((k) => [k.name, k.version]));
}

function statSig(path: string): StatSig | undefined {
  try {
    const st = statSync(path);
    return [path, st.size, st.mtimeMs, st.ino];
  } catch { return undefined; }
}

const same = (a: StatSig | undefined, b: StatSig): boolean => !!a && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];

/** The reports of a run with nothing to do, or undefined when the full path must decide. */
export function checkNoop(store: Store, pipelinePath: string, lockPath: string): { name: string; reports: StageReport[] } | undefined {
  const memo = store.getMemo(pipelinePath);
  if (!memo || memo.podium !== podiumDigest()) return undefined;
  let text: Buffer;
  try { text = readFileSync(pipelinePath); } catch { return undefined; }
  if (sha256(text) !== memo.pipeline) return undefined;
  if (!same(statSig(lockPath), memo.lock)) return undefined;
  for (const sig of memo.files) if (!same(statSig(sig[0]), sig)) return undefined;
  for (const [, , key] of memo.stages) if (!store.hasRecord(key as Digest)) return undefined;
  return {
    name: memo.name,
    reports: memo.stages.map(([id, kind, key]) => ({ id, kind, status: 'cached', key, reason: 'fresh', durationMs: 0 })),
  };
}

/** Remembers a complete successful run; forgets the memo when it cannot be trusted. */
export function saveNoop(store: Store, pipeline: Pipeline, outcome: Outcome, lockPath: string): void {
  const lock = statSig(lockPath);
  const files: StatSig[] = [];
  try {
    for (const node of pipeline.stages) {
      const record = outcome.done.get(node.id)?.record;
      if (!record) { store.setMemo(pipeline.file, undefined); return; }
      const paths = [...(node.kind.deps?.(node.params) ?? []), ...(node.kind.files?.(node.params, record) ?? [])];
      for (const p of paths) statTree(`${pipeline.projectDir}/${p}`, files);
    }
  } catch { store.setMemo(pipeline.file, undefined); return; } // a dep is missing: nothing to remember
  const now = Date.now();
  if (!lock || [lock, ...files].some((f) => now - f[2] < RACY_MS)) { store.setMemo(pipeline.file, undefined); return; }
  store.setMemo(pipeline.file, {
    podium: podiumDigest(),
    pipeline: sha256(pipeline.source.text),
    name: pipeline.name,
    lock,
    files,
    stages: pipeline.stages.map((n) => [n.id, n.kind.name, outcome.done.get(n.id)!.record.key]),
  });
}

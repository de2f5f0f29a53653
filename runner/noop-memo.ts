// The no-op fast path. After a complete, successful run, podium remembers the pipeline file's
// digest, the stat signature of every file the results depend on (deps and outs, folders
// included) and the stage keys. The next `podium run` that finds the same pipeline bytes and the
// same stats has nothing to do, and says so without opening the cache, analysing the pipeline or
// fingerprinting a stage: bookkeeping only. Any mismatch falls back to the full path, which is
// always correct on its own; the memo only lets it be skipped. Deleting any cache record clears
// every memo (cache/noop-memos.ts), so a memo never vouches for a result that is gone.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noopMemoPath } from '../cache/noop-memos.js';
import type { Pipeline } from './analyze.js';
import type { StageReport } from './events.js';
import type { Outcome } from './executor.js';

/** (path, size, mtimeMs, inode) of a file or folder, as seen when a run finished. */
type StatSig = [string, number, number, number];

interface NoopMemo {
  /** podium's build (kinds and their versions): another build invalidates the memo. */
  build: string;
  /** sha256 of the pipeline file's bytes. */
  pipeline: string;
  /** Command-line options that change keys (--backend). */
  options: string;
  name: string;
  lock: StatSig;
  files: StatSig[];
  stages: Array<[id: string, kind: string, key: string]>;
}

/** A file modified this recently may change again within the same mtime tick. */
const RACY_MS = 2000;
const BUILD_ID = join(dirname(fileURLToPath(import.meta.url)), 'build-id.txt');

/** Written by `npm run build` (runner/build.ts); from source, computed from the registry. */
async function buildId(): Promise<string> {
  try {
    return readFileSync(BUILD_ID, 'utf8').trim();
  } catch {
    return (await import('./build-id.js')).computeBuildId();
  }
}

function statSig(path: string): StatSig | undefined {
  try {
    const st = statSync(path);
    return [path, st.size, st.mtimeMs, st.ino];
  } catch {
    return undefined;
  }
}

const same = (a: StatSig | undefined, b: StatSig): boolean => !!a && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** The reports of a run with nothing to do, or undefined when the full path must decide. */
export async function checkNoop(
  cacheDir: string,
  pipelinePath: string,
  lockPath: string,
  options: string,
): Promise<{ name: string; reports: StageReport[] } | undefined> {
  let memo: NoopMemo;
  let text: Buffer;
  try {
    memo = JSON.parse(readFileSync(noopMemoPath(cacheDir, pipelinePath), 'utf8')) as NoopMemo;
    text = readFileSync(pipelinePath);
  } catch {
    return undefined;
  }
  if (memo.build !== (await buildId()) || memo.options !== options || sha256(text) !== memo.pipeline) return undefined;
  if (!same(statSig(lockPath), memo.lock)) return undefined;
  for (const sig of memo.files) if (!same(statSig(sig[0]), sig)) return undefined;
  return {
    name: memo.name,
    reports: memo.stages.map(([id, kind, key]) => ({
      id,
      kind,
      status: 'cached',
      key,
      reason: 'fresh',
      durationMs: 0,
    })),
  };
}

/** Remembers a complete successful run, or forgets the memo when it cannot be trusted. */
export async function saveNoop(
  cacheDir: string,
  pipeline: Pipeline,
  outcome: Outcome,
  lockPath: string,
  options: string,
): Promise<void> {
  const path = noopMemoPath(cacheDir, pipeline.file);
  const forget = (): void => forgetNoop(cacheDir, pipeline.file);
  const lock = statSig(lockPath);
  const files: StatSig[] = [];
  const { statTree } = await import('../cache/hash-files.js');
  try {
    for (const node of pipeline.stages) {
      const record = outcome.done.get(node.id)?.record;
      if (!record) return forget();
      const paths = [...(node.kind.deps?.(node.params) ?? []), ...(node.kind.files?.(node.params, record) ?? [])];
      for (const p of paths) statTree(join(pipeline.projectDir, p), files);
    }
  } catch {
    return forget();
  } // a dep is missing: nothing to remember
  const now = Date.now();
  if (!lock || [lock, ...files].some((f) => now - f[2] < RACY_MS)) return forget();
  const memo: NoopMemo = {
    build: await buildId(),
    pipeline: sha256(pipeline.source.text),
    options,
    name: pipeline.name,
    lock,
    files,
    stages: pipeline.stages.map((n) => [n.id, n.kind.name, outcome.done.get(n.id)!.record.key]),
  };
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(memo));
  renameSync(tmp, path);
}

export function forgetNoop(cacheDir: string, pipelinePath: string): void {
  rmSync(noopMemoPath(cacheDir, pipelinePath), { force: true });
}

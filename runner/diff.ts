// `podium diff A [B]`: what changed between two lock files: a lock path, a git revision of A
// (`HEAD~1`), or, with no B, the pipeline's current state in the cache.
import { existsSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { execa } from 'execa';
import { parseLock, readLock, type LockFile } from '../cache/lockfile.js';
import { lockOf, loadPipeline, openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import { changedPaths } from './fingerprints.js';
import { pipelineState, stateAsLock } from './state.js';

export interface StageDiff {
  id: string;
  change: 'added' | 'removed' | 'changed';
  params: string[];
  outputs: Array<{ name: string; a: string | null; b: string | null }>;
  metrics: Array<{ name: string; a: unknown; b: unknown; delta: number | null }>;
}
export interface DiffReport {
  a: string;
  b: string;
  stages: StageDiff[];
}

export async function diff(
  aArg: string | undefined,
  bArg: string | undefined,
  opts: CommonOptions,
): Promise<DiffReport> {
  if (!aArg) throw new UsageError('missing the lock file argument: podium diff <lockA> [<lockB>|<git-rev>]');
  const a = readLockArg(aArg);
  let b: LockFile;
  let bName: string;
  if (bArg === undefined) {
    b = await currentState(aArg, opts);
    bName = 'current cache state';
  } else if (existsSync(bArg)) {
    b = readLockArg(bArg);
    bName = bArg;
  } else {
    b = await lockAtRevision(aArg, bArg);
    bName = `${aArg}@${bArg}`;
  }
  // With a git revision, the older lock is usually the one on the left.
  const [left, right, leftName, rightName] =
    bArg !== undefined && !existsSync(bArg) ? [b, a, bName, aArg] : [a, b, aArg, bName];
  return { a: leftName, b: rightName, stages: diffLocks(left, right) };
}

export function diffLocks(a: LockFile, b: LockFile): StageDiff[] {
  const ids = [...new Set([...Object.keys(a.stages), ...Object.keys(b.stages)])];
  const out: StageDiff[] = [];
  for (const id of ids) {
    const x = a.stages[id];
    const y = b.stages[id];
    const change = !x ? 'added' : !y ? 'removed' : 'changed';
    const params = x && y ? changedPaths(x.params, y.params, 'params') : [];
    const outputs = [...new Set([...Object.keys(x?.outputs ?? {}), ...Object.keys(y?.outputs ?? {})])]
      .filter((n) => x?.outputs[n] !== y?.outputs[n])
      .map((name) => ({ name, a: x?.outputs[name] ?? null, b: y?.outputs[name] ?? null }));
    const metrics = [...new Set([...Object.keys(x?.metrics ?? {}), ...Object.keys(y?.metrics ?? {})])]
      .filter((n) => JSON.stringify(x?.metrics[n]) !== JSON.stringify(y?.metrics[n]))
      .map((name) => {
        const [ma, mb] = [x?.metrics[name], y?.metrics[name]];
        return {
          name,
          a: ma ?? null,
          b: mb ?? null,
          delta: typeof ma === 'number' && typeof mb === 'number' ? mb - ma : null,
        };
      });
    if (change !== 'changed' || params.length || outputs.length || metrics.length || x?.key !== y?.key)
      out.push({ id, change, params, outputs, metrics });
  }
  return out;
}

export function readLockArg(path: string): LockFile {
  try {
    const lock = readLock(path);
    if (!lock) throw new Error(`${path}: no such lock file`);
    return lock;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function lockAtRevision(lockPath: string, rev: string): Promise<LockFile> {
  const dir = dirname(lockPath);
  const top = await execa('git', ['rev-parse', '--show-toplevel'], { cwd: dir, reject: false });
  if (top.failed)
    throw new UsageError(
      `"${rev}" is neither a lock file nor usable as a git revision (${dir} is not in a git repository)`,
    );
  const rel = relative(top.stdout.trim(), join(dir, basename(lockPath)));
  const shown = await execa('git', ['show', `${rev}:${rel}`], { cwd: dir, reject: false });
  if (shown.failed)
    throw new UsageError(
      `"${rev}" is neither a lock file nor a git revision holding ${rel}: ${shown.stderr.split('\n')[0]}`,
    );
  try {
    return parseLock(shown.stdout, `${rel}@${rev}`);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function currentState(lockPath: string, opts: CommonOptions): Promise<LockFile> {
  const pipelineFile = lockPath.replace(/\.lock\.json$/i, '.json');
  if (pipelineFile === lockPath || !existsSync(pipelineFile))
    throw new UsageError(
      `${lockPath}: no pipeline file ${pipelineFile} beside it to compare against; give a second lock file or a git revision`,
    );
  const pipeline = loadPipeline(pipelineFile, opts);
  const { lock } = lockOf(pipeline);
  const store = openStore(opts, pipeline.projectDir, 'read');
  try {
    return stateAsLock(pipeline, pipelineState(pipeline, store, lock));
  } finally {
    await store.close();
  }
}

export function formatDiff(r: DiffReport): string {
  if (!r.stages.length) return `${r.a} and ${r.b}: no differences`;
  const lines = [`--- ${r.a}`, `+++ ${r.b}`];
  for (const s of r.stages) {
    lines.push(`${s.change === 'added' ? '+' : s.change === 'removed' ? '-' : '~'} ${s.id}`);
    for (const p of s.params) lines.push(`    ${p}`);
    for (const o of s.outputs)
      lines.push(`    output ${o.name}: ${o.a?.slice(0, 12) ?? '(none)'} → ${o.b?.slice(0, 12) ?? '(none)'}`);
    for (const m of s.metrics)
      lines.push(
        `    metric ${m.name}: ${JSON.stringify(m.a)} → ${JSON.stringify(m.b)}${m.delta !== null ? ` (${m.delta >= 0 ? '+' : ''}${Number(m.delta.toPrecision(6))})` : ''}`,
      );
  }
  return lines.join('\n');
}

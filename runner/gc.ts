// `podium gc`: drop records and blobs that neither a lock file in the project nor one of the
// last N runs references; forget stat-memo entries of files that are gone.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../cache/canonical.js';
import { readLock } from '../cache/lockfile.js';
import { CacheUnavailable } from '../cache/store.js';
import type { LmdbStore } from '../cache/lmdb-store.js';
import { openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';

export interface GcReport { lockFiles: string[]; keptRecords: number; removedRecords: number; removedBlobs: number; bytesFreed: number; removedRuns: number }

const DEFAULT_KEEP_RUNS = 10;
const SKIP_DIRS = new Set(['node_modules', '.git', '.podium', 'dist']);

/** Lock files anywhere in the project (not inside dependencies or the cache). */
export function findLockFiles(dir: string, depth = 4): string[] {
  if (depth < 0) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && !SKIP_DIRS.has(e.name)) out.push(...findLockFiles(join(dir, e.name), depth - 1));
    else if (e.isFile() && e.name.endsWith('.lock.json')) out.push(join(dir, e.name));
  }
  return out;
}

export async function gc(opts: CommonOptions & { keepRuns?: number }): Promise<GcReport> {
  const keepRuns = opts.keepRuns ?? DEFAULT_KEEP_RUNS;
  if (!Number.isInteger(keepRuns) || keepRuns < 0) throw new UsageError(`--keep-runs must be a non-negative integer, got ${opts.keepRuns}`);
  const store = openStore(opts);
  try {
    // gc and runs exclude each other: a run's records are in no lock file until it ends, and a
    // running stage's blobs in no record yet, so sweeping beside a run would lose its work.
    // One line per process: a run holds its own registration and a lease per running stage.
    const busy = store.beginGc().filter((l, i, all) => all.findIndex((o) => o.host === l.host && o.pid === l.pid) === i);
    if (busy.length) {
      const first = busy[0]!;
      const who = `${first.what ?? 'a podium process'} (pid ${first.pid}, since ${new Date(first.since).toISOString()})`;
      throw new CacheUnavailable(`the cache is in use by ${who}${busy.length > 1 ? ` and ${busy.length - 1} more` : ''}; nothing was removed, run gc when it has finished`);
    }
    try {
      return sweep(store, keepRuns);
    } finally {
      store.endGc();
    }
  } finally {
    await store.close();
  }
}

function sweep(store: LmdbStore, keepRuns: number): GcReport {
  const lockFiles = findLockFiles(process.cwd());
  const keep = new Set<Digest>();
  for (const f of lockFiles) {
    try { for (const s of Object.values(readLock(f)?.stages ?? {})) keep.add(s.key); } catch { /* not a podium lock: ignore */ }
  }
  const runs = store.runs().sort((a, b) => a.id.localeCompare(b.id));
  const removedRuns = runs.slice(0, Math.max(0, runs.length - keepRuns));
  for (const r of runs.slice(removedRuns.length)) for (const k of r.keys) keep.add(k);
  for (const r of removedRuns) store.deleteRun(r.id);

  const live = new Set<Digest>();
  let removedRecords = 0;
  for (const key of store.recordKeys()) {
    const rec = keep.has(key) ? store.getRecord(key) : undefined;
    if (!rec) { store.deleteRecord(key); removedRecords++; continue; }
    for (const d of [...Object.values(rec.outputs), ...rec.refs]) live.add(d);
  }
  let bytesFreed = 0;
  let removedBlobs = 0;
  for (const d of store.blobDigests()) {
    if (live.has(d)) continue;
    bytesFreed += store.deleteBlob(d);
    removedBlobs++;
  }
  for (const p of store.statPaths()) if (!existsSync(p)) store.deleteStat(p);
  for (const [key, value] of store.indexEntries()) if (!live.has(value.split(' ')[0] as Digest)) store.deleteIndex(key);
  return { lockFiles, keptRecords: store.recordKeys().length, removedRecords, removedBlobs, bytesFreed, removedRuns: removedRuns.length };
}

export function formatGc(r: GcReport): string {
  return `gc: kept ${r.keptRecords} records (${r.lockFiles.length} lock files, recent runs); removed ${r.removedRecords} records and ${r.removedBlobs} blobs, ${r.bytesFreed} bytes freed`;
}

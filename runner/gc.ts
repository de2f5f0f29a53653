// `podium gc`: drop records and blobs that neither a lock file in the project nor one of the
// last N runs references; forget stat-memo entries of files that are gone. `--dry-run` only
// says what it would keep and remove.
//
// Space: LMDB reuses freed pages for later writes, but its file never shrinks. gc reports both
// what it freed inside the file and the file's size, so the two are not confused.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../cache/canonical.js';
import { readLock } from '../cache/lockfile.js';
import { CacheUnavailable } from '../cache/store.js';
import { LmdbStore } from '../cache/lmdb-store.js';
import { projectRoot } from './cache-path.js';
import { openStore, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';

export interface GcReport {
  dryRun: boolean;
  lockFiles: string[];
  keptRecords: number;
  removedRecords: number;
  removedBlobs: number;
  /** Blob bytes dropped (or that would be): space LMDB reuses for later writes. */
  bytesFreed: number;
  removedRuns: number;
  /** Size of the cache's data file on disk; unchanged by gc (LMDB files do not shrink). */
  fileBytes: number;
  /** Stage ids (from lock files) of the records kept, and keys of the records removed. */
  kept: string[];
  removed: string[];
  /** With --compact: the data file's size before and after. */
  compacted?: { before: number; after: number };
}

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

export async function gc(
  opts: CommonOptions & { keepRuns?: number; dryRun?: boolean; compact?: boolean },
): Promise<GcReport> {
  const keepRuns = opts.keepRuns ?? DEFAULT_KEEP_RUNS;
  if (!Number.isInteger(keepRuns) || keepRuns < 0)
    throw new UsageError(`--keep-runs must be a non-negative integer, got ${opts.keepRuns}`);
  // gc works for the project the working directory is in, wherever in it podium is called.
  const root = projectRoot(process.cwd());
  const store = openStore(opts, root);
  let closed = false;
  try {
    // gc and runs exclude each other: a run's records are in no lock file until it ends, and a
    // running stage's blobs in no record yet, so sweeping beside a run would lose its work.
    // One line per process: a run holds its own registration and a lease per running stage.
    const busy = store
      .beginGc()
      .filter((l, i, all) => all.findIndex((o) => o.host === l.host && o.pid === l.pid) === i);
    if (busy.length) {
      const first = busy[0]!;
      const who = `${first.what ?? 'a podium process'} (pid ${first.pid}, since ${new Date(first.since).toISOString()})`;
      throw new CacheUnavailable(
        `the cache is in use by ${who}${busy.length > 1 ? ` and ${busy.length - 1} more` : ''}; nothing was removed, run gc when it has finished`,
      );
    }
    let report: GcReport;
    try {
      report = sweep(store, keepRuns, root, !!opts.dryRun);
      // The sweep's index and stat removals are queued writes (records and blobs go in their
      // own transactions). They must be committed before the lease goes: a run that registers
      // once it is free would otherwise read entries that a late batch then removes under it.
      await store.flush();
      if (opts.compact && !opts.dryRun) {
        report.compacted = await compact(store);
        closed = true;
      }
    } finally {
      if (!closed) store.endGc();
    }
    return report;
  } finally {
    if (!closed) await store.close();
  }
}

/**
 * LMDB never shrinks its file; a compacted copy does. The copy is written into a new folder beside
 * the cache, which then takes the cache's place by rename, with its own lock file: a process that
 * still has the old folder open (a status, a run waiting for this gc) keeps a consistent old pair
 * of files, and a run notices the swap before it writes (LmdbStore.beginRun) and opens the cache
 * again. Replacing data.mdb alone under an open environment would pair it with a stale lock file.
 */
async function compact(store: LmdbStore): Promise<{ before: number; after: number }> {
  const dir = store.path;
  const size = (d: string): number => {
    try {
      return statSync(join(d, 'data.mdb')).size;
    } catch {
      return 0;
    }
  };
  const before = size(dir);
  const fresh = `${dir}-compact-${process.pid}`;
  const old = `${dir}-old-${process.pid}`;
  rmSync(fresh, { recursive: true, force: true });
  mkdirSync(fresh);
  try {
    await store.compactInto(fresh);
  } catch (e) {
    rmSync(fresh, { recursive: true, force: true });
    throw e;
  }
  // The copy holds this gc's lease: drop it there, so runs waiting for gc go on in the new folder.
  const copy = new LmdbStore(fresh);
  copy.endGc();
  await copy.close();
  store.endGc();
  await store.close();
  renameSync(dir, old);
  renameSync(fresh, dir);
  rmSync(old, { recursive: true, force: true });
  return { before, after: size(dir) };
}

function sweep(store: LmdbStore, keepRuns: number, root: string, dryRun: boolean): GcReport {
  const lockFiles = findLockFiles(root);
  const keep = new Map<Digest, string>();
  for (const f of lockFiles) {
    try {
      for (const [id, s] of Object.entries(readLock(f)?.stages ?? {})) keep.set(s.key, id);
    } catch {
      /* not a podium lock: ignore */
    }
  }
  const runs = store.runs().sort((a, b) => a.id.localeCompare(b.id));
  const removedRuns = runs.slice(0, Math.max(0, runs.length - keepRuns));
  for (const r of runs.slice(removedRuns.length))
    for (const k of r.keys) if (!keep.has(k)) keep.set(k, `(a recent run of ${r.pipeline})`);
  if (!dryRun) for (const r of removedRuns) store.deleteRun(r.id);

  const live = new Set<Digest>();
  const kept: string[] = [];
  const removed: string[] = [];
  for (const key of store.recordKeys()) {
    const rec = keep.has(key) ? store.getRecord(key) : undefined;
    if (!rec) {
      removed.push(key);
      if (!dryRun) store.deleteRecord(key);
      continue;
    }
    kept.push(keep.get(key)!);
    for (const d of [...Object.values(rec.outputs), ...rec.refs]) live.add(d);
  }
  let bytesFreed = 0;
  let removedBlobs = 0;
  for (const d of store.blobDigests()) {
    if (live.has(d)) continue;
    bytesFreed += dryRun ? (store.blobInfo(d)?.size ?? 0) : store.deleteBlob(d);
    removedBlobs++;
  }
  if (!dryRun) {
    for (const p of store.statPaths()) if (!existsSync(p)) store.deleteStat(p);
    // An entry lives while every blob it names does (finetune's names weights and optimizer
    // state); one that is not an entry (an older podium's string) is dropped.
    for (const [key, entry] of store.indexEntries())
      if (!entry || !entry.blobs.every((d) => live.has(d))) store.deleteIndex(key);
  }
  let fileBytes = 0;
  try {
    fileBytes = statSync(join(store.path, 'data.mdb')).size;
  } catch {
    /* a scratch or odd cache */
  }
  return {
    dryRun,
    lockFiles,
    keptRecords: kept.length,
    removedRecords: removed.length,
    removedBlobs,
    bytesFreed,
    removedRuns: removedRuns.length,
    fileBytes,
    kept: kept.sort(),
    removed: removed.sort(),
  };
}

const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

export function formatGc(r: GcReport): string {
  const lines: string[] = [];
  if (r.dryRun) {
    lines.push(
      `gc --dry-run: would keep ${r.keptRecords} records (${r.lockFiles.length} lock files, recent runs) and remove ${r.removedRecords} records and ${r.removedBlobs} blobs (${mb(r.bytesFreed)})`,
    );
    for (const id of r.kept) lines.push(`  keep    ${id}`);
    for (const key of r.removed) lines.push(`  remove  record ${key.slice(0, 12)}`);
    return lines.join('\n');
  }
  lines.push(
    `gc: kept ${r.keptRecords} records (${r.lockFiles.length} lock files, recent runs); removed ${r.removedRecords} records and ${r.removedBlobs} blobs`,
  );
  if (r.compacted)
    lines.push(`  compacted: the cache file went from ${mb(r.compacted.before)} to ${mb(r.compacted.after)} on disk`);
  else
    lines.push(
      `  ${mb(r.bytesFreed)} freed inside the cache file, which LMDB reuses for later writes; the file stays ${mb(r.fileBytes)} on disk (podium gc --compact shrinks it)`,
    );
  return lines.join('\n');
}

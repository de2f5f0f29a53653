// Content hashes of files and folders on disk, through the stat memo: a file whose size, mtime
// and inode are unchanged is not read again, so a no-op run over a large data folder only stats.
import { readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import { digestOf, sha256, type Digest } from './canonical.js';
import type { StatSig, Store } from './store.js';

/** The stat memo hashing needs: a Store's, or a job's own (runner/slurm). */
export type StatMemo = Pick<Store, 'getStat' | 'setStat'>;

/** A file modified this recently may change again within the same mtime tick: don't memoise it. */
const RACY_MS = 2000;

export function hashFile(store: StatMemo, absPath: string, st: Stats = statSync(absPath)): Digest {
  const memo = store.getStat(absPath);
  if (memo && memo.size === st.size && memo.mtimeMs === st.mtimeMs && memo.ino === st.ino) return memo.hash;
  const hash = sha256(readFileSync(absPath));
  if (Date.now() - st.mtimeMs > RACY_MS)
    store.setStat(absPath, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, hash });
  return hash;
}

/** Stat signatures of a path and, for a folder, of everything under it (folders included: adding or removing an entry changes its folder's mtime). */
export function statTree(absPath: string, out: StatSig[] = []): StatSig[] {
  const st = statSync(absPath);
  out.push([absPath, st.size, st.mtimeMs, st.ino]);
  if (st.isDirectory())
    for (const name of readdirSync(absPath).sort()) if (!SKIP_DIRS.has(name)) statTree(join(absPath, name), out);
  return out;
}

/** Folders never part of a dep: podium's own cache, version control, installed packages. */
const SKIP_DIRS = new Set(['.podium', '.git', 'node_modules']);

/** Every regular file under a folder (or the file itself), as sorted paths relative to root. */
export function listFiles(absPath: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIP_DIRS.has(entry.name)) walk(p);
      } else if (entry.isFile()) out.push(p);
    }
  };
  walk(absPath);
  return out.map((p) => relative(absPath, p)).sort();
}

/**
 * The digest of a path: a file's bytes, or for a folder the digest of its sorted
 * (relative path, file digest) pairs. Undefined when the path does not exist.
 */
export function hashPath(store: StatMemo, absPath: string): Digest | undefined {
  let st: Stats;
  try {
    st = statSync(absPath);
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return hashFile(store, absPath, st);
  return digestOf(listFiles(absPath).map((rel) => [rel, hashFile(store, join(absPath, rel))]));
}

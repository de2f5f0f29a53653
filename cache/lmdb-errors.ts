// LMDB's failures in words: opening a cache that cannot be used (read-only, a file in the way,
// a full disk), a write that failed, and the noise lmdb-js prints besides podium's one line.
import { statfsSync, statSync } from 'node:fs';
import { CacheUnavailable } from './store.js';

/**
 * When a commit fails (disk full), lmdb-js prints the raw error with console.error and rejects
 * internal promises that nobody can reach, besides the write promises podium does handle
 * (LmdbStore.track). Both would bury the one-line message podium gives: keep them quiet, once
 * per process, and let every other error through untouched.
 */
let lmdbNoiseHushed = false;
export function hushLmdbCommitNoise(): void {
  if (lmdbNoiseHushed) return;
  lmdbNoiseHushed = true;
  const fromLmdb = (e: unknown): boolean =>
    e instanceof Error &&
    /[\\/]lmdb[\\/]/.test(e.stack ?? '') &&
    (typeof (e as { code?: unknown }).code === 'number' || e.message.startsWith('Commit failed'));
  const consoleError = console.error.bind(console);
  console.error = (...args: unknown[]): void => {
    if (!(args.length === 1 && fromLmdb(args[0]))) consoleError(...args);
  };
  process.on('unhandledRejection', (e) => {
    if (!fromLmdb(e)) throw e;
  });
}

/** An error opening the environment, in words: where the cache is and what to do about it. */
export function unavailable(path: string, e: unknown): Error {
  const err = e as NodeJS.ErrnoException;
  let isDir = true;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    /* missing: mkdir failed, reported below */
  }
  if (!isDir || err.code === 'EEXIST' || err.code === 'ENOTDIR')
    return new CacheUnavailable(
      `cache ${path} is not a folder (a file is in the way); remove it or choose another with --cache DIR`,
    );
  if (
    err.code === 'EACCES' ||
    err.code === 'EROFS' ||
    err.code === 'EPERM' ||
    /setup locks|permission denied|read-only/i.test(err.message)
  ) {
    // lmdb reports errno as a number (30 is EROFS on Linux).
    const readOnly = err.code === 'EROFS' || (err.code as unknown) === 30;
    return new CacheUnavailable(
      `cache ${path} is not writable (${readOnly ? 'read-only file system' : 'permission denied'}); fix its permissions or choose another with --cache DIR`,
    );
  }
  if (err.code === 'ENOSPC' || /No space left|MDB_MAP_FULL/i.test(err.message))
    return new CacheUnavailable(
      `no space left for the cache ${path}; free disk space and run again (finished stages are kept)`,
    );
  return new CacheUnavailable(`cannot open the cache ${path}: ${err.message.split('\n')[0]}`);
}

/** LMDB reports a full disk as EIO from its memory map, or as "Commit failed"; say what it means. */
export function writeError(path: string, e: unknown): Error {
  const err = e as Error & { code?: unknown };
  if (err instanceof CacheUnavailable) return err;
  const io =
    typeof err.code === 'number' || /commit failed|input\/output|no space|MDB_|ENOSPC|EIO/i.test(err.message ?? '');
  if (!io) return err;
  let freeBytes: number | undefined;
  try {
    const fs = statfsSync(path);
    freeBytes = fs.bavail * fs.bsize;
  } catch {
    /* statfs unsupported: say less */
  }
  // A full disk shows up as EIO from the memory map, so judge by the free space itself.
  const why =
    freeBytes !== undefined && freeBytes < 1024 * 1024
      ? `no space left on its disk: ${Math.round(freeBytes / 1024)} KiB free`
      : err.message.split('\n')[0];
  return new CacheUnavailable(
    `writing to the cache ${path} failed (${why}); free disk space and run again (finished stages are kept)`,
  );
}

// What every verb starts from: the analyzed pipeline (or a usage error), the cache, the lock.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { readLock, type LockFile } from '../cache/lockfile.js';
import { analyze, type Pipeline } from './analyze.js';
import { lockPathOf } from './lock-path.js';
import { UsageError } from './diagnostics.js';

import { LmdbStore } from '../cache/lmdb-store.js';
import { CacheReplaced, type Store } from '../cache/store.js';
import type { EventSink } from './events.js';
import { watchCacheWarnings } from './cache-warnings.js';
import { cacheDir, pipelinePath, projectOfPipeline, type CommonOptions as CacheOptions } from './cache-path.js';

export { cacheDir };

export interface CommonOptions extends CacheOptions {
  /** --set STAGE.FIELD=VALUE overrides, applied to the pipeline before validation. */
  set?: string[];
}

/**
 * The project's cache. 'read' is for verbs that only look (status, show, diff, report, cat, a dry
 * run): where no cache exists yet they get an empty one in a temporary folder, removed on close,
 * so looking never creates a .podium folder. What reading it finds wrong is printed by the CLI
 * once the verb ends (cache-warnings.ts).
 */
export function openStore(
  opts: CommonOptions,
  projectDir?: string,
  mode: 'write' | 'read' = 'write',
  storeOptions: { strictReads?: boolean } = {},
): LmdbStore {
  const dir = cacheDir(opts, projectDir);
  if (mode === 'read' && !existsSync(dir)) {
    const scratch = mkdtempSync(join(tmpdir(), 'podium-empty-cache-'));
    const store = new LmdbStore(scratch);
    const close = store.close.bind(store);
    store.close = async () => {
      await close();
      rmSync(scratch, { recursive: true, force: true });
    };
    return store;
  }
  const store = new LmdbStore(dir, storeOptions);
  watchCacheWarnings(store);
  return store;
}

export function loadPipeline(file: string | undefined, opts: CommonOptions = {}): Pipeline {
  if (!file) throw new UsageError('missing the pipeline file argument');
  const path = pipelinePath(file);
  // Messages name the file as the user would type it from here.
  const result = analyze(relative(process.cwd(), path) || path, projectOfPipeline(path), opts.backend, opts.set);
  if (!result.ok)
    throw new UsageError(
      `${file}: invalid pipeline (${result.errors.length} problem${result.errors.length > 1 ? 's' : ''})`,
      result.errors,
    );
  return result.value;
}

export function lockOf(pipeline: Pipeline): { path: string; lock: LockFile | undefined } {
  const path = lockPathOf(pipeline.file);
  try {
    return { path, lock: readLock(path) };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Default wait for a stage another live podium process is computing: longer than most finetunes. */
const DEFAULT_LEASE_TIMEOUT_S = 6 * 3600;

/** --lease-timeout, else PODIUM_LEASE_TIMEOUT, in seconds. */
export function leaseTimeoutMs(opts: { leaseTimeout?: number }): number {
  const raw =
    opts.leaseTimeout ??
    (process.env.PODIUM_LEASE_TIMEOUT ? Number(process.env.PODIUM_LEASE_TIMEOUT) : DEFAULT_LEASE_TIMEOUT_S);
  if (!Number.isFinite(raw) || raw < 0)
    throw new UsageError(
      `--lease-timeout (or PODIUM_LEASE_TIMEOUT) must be a number of seconds, got ${opts.leaseTimeout ?? process.env.PODIUM_LEASE_TIMEOUT}`,
    );
  return raw * 1000;
}

/**
 * Opens the project's cache and registers a run or verify with it for its whole length, waiting
 * while gc holds it (gc is short) and opening it again if `gc --compact` replaced the folder in
 * the meantime. Undefined when interrupted while waiting (nothing is left open then).
 */
export async function openRegistered(
  opts: CommonOptions,
  projectDir: string,
  id: string,
  what: string,
  onEvent: EventSink,
  signal: AbortSignal,
): Promise<LmdbStore | undefined> {
  for (;;) {
    const store = openStore(opts, projectDir, 'write', { strictReads: true });
    try {
      if (await registerRun(store, id, what, onEvent, signal)) return store;
      await store.close();
      return undefined;
    } catch (e) {
      await store.close();
      if (!(e instanceof CacheReplaced)) throw e;
    }
  }
}

/** Registers with an open store, waiting while gc holds it. False when interrupted while waiting. */
export async function registerRun(
  store: Store,
  id: string,
  what: string,
  onEvent: EventSink,
  signal: AbortSignal,
): Promise<boolean> {
  let told = false;
  for (;;) {
    const gc = store.beginRun(id, what);
    if (!gc) return true;
    if (!told) onEvent({ type: 'warning', message: `waiting for podium gc (pid ${gc.pid}) to finish with this cache` });
    told = true;
    if (signal.aborted) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

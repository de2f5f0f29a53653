// `podium push` / `podium pull`: copy what a lock file names between the local LMDB cache and the
// shared store — every stage's record, its outputs and the blobs it refers to — so a teammate or
// CI reuses results (DVC's remotes, Bazel's remote cache). After a pull the teammate's
// `podium run` finds every record and is all cache hits.
import type { Digest } from '../cache/canonical.js';
import { openRemote, type RemoteStore } from '../cache/remote-store.js';
import type { StageRecord, Store } from '../cache/store.js';
import { lockOf, loadPipeline, openRegistered, type CommonOptions } from './context.js';
import { UsageError } from './diagnostics.js';
import type { EventSink } from './events.js';
import { remoteLocation } from './project-config.js';

export interface TransferOptions extends CommonOptions {
  remote?: string;
}

export interface TransferResult {
  direction: 'push' | 'pull';
  pipeline: string;
  remote: string;
  /** Stages whose record was copied (or already there). */
  stages: number;
  /** Blobs copied, and blobs the other side already had. */
  copied: number;
  present: number;
  bytes: number;
  /** Stages that could not be copied, and why (no local record; not in the store). */
  missing: Array<{ id: string; reason: string }>;
}

export async function transfer(
  direction: 'push' | 'pull',
  file: string | undefined,
  opts: TransferOptions,
  onEvent: EventSink,
  signal: AbortSignal,
): Promise<TransferResult> {
  const pipeline = loadPipeline(file, opts);
  const { path: lockPath, lock } = lockOf(pipeline);
  if (!lock)
    throw new UsageError(
      `${pipeline.file}: no lock file at ${lockPath}; run the pipeline first (push and pull copy what the lock names)`,
    );
  const location = remoteLocation(opts.remote, pipeline.projectDir);
  if (!location)
    throw new UsageError(
      `${direction}: no shared store named; pass --remote DIR, set PODIUM_REMOTE, or add "remote" to podium.config.json`,
    );
  const remote = openRemote(location);
  const runId = `${direction}-${new Date().toISOString()}-${process.pid}`;
  const store = await openRegistered(
    opts,
    pipeline.projectDir,
    runId,
    `podium ${direction} ${pipeline.file}`,
    onEvent,
    signal,
  );
  const result: TransferResult = {
    direction,
    pipeline: pipeline.name,
    remote: location,
    stages: 0,
    copied: 0,
    present: 0,
    bytes: 0,
    missing: [],
  };
  if (!store) return result;
  try {
    for (const [id, entry] of Object.entries(lock.stages)) {
      if (signal.aborted) break;
      if (direction === 'push') {
        const record = store.getRecord(entry.key);
        if (!record) {
          result.missing.push({
            id,
            reason: `no record ${entry.key.slice(0, 12)} in the local cache (run the pipeline first)`,
          });
          continue;
        }
        await pushRecord(store, remote, record, result);
      } else {
        const record = await remote.getRecord(entry.key);
        if (!record) {
          result.missing.push({ id, reason: `no record ${entry.key.slice(0, 12)} in ${location} (push it first)` });
          continue;
        }
        await pullRecord(store, remote, record, result);
      }
      result.stages++;
    }
    for (const w of store.warnings) onEvent({ type: 'warning', message: w });
    return result;
  } finally {
    try {
      store.endRun(runId);
    } catch {
      /* a dead registration is ignored by gc */
    }
    await store.close();
  }
}

/** Blobs first, then the record: a record in the store always finds its blobs there. */
export async function pushRecord(
  store: Store,
  remote: RemoteStore,
  record: StageRecord,
  tally?: Pick<TransferResult, 'copied' | 'present' | 'bytes'>,
): Promise<void> {
  await pushBlobs(store, remote, blobsOf(record), tally);
  await remote.putRecord(record);
}

export async function pushBlobs(
  store: Store,
  remote: RemoteStore,
  digests: Iterable<Digest>,
  tally?: Pick<TransferResult, 'copied' | 'present' | 'bytes'>,
): Promise<void> {
  for (const d of new Set(digests)) {
    if (await remote.has(d)) {
      if (tally) tally.present++;
      continue;
    }
    // Hash-checked on the way out: a damaged local blob throws CacheCorruption and is not shared.
    const bytes = store.getBlob(d);
    if (!bytes) throw new Error(`blob ${d.slice(0, 12)} is not in the local cache`);
    await remote.put(bytes, d);
    if (tally) {
      tally.copied++;
      tally.bytes += bytes.length;
    }
  }
}

/** Blobs first (hash-checked), then the record, committed in one transaction by the local cache. */
export async function pullRecord(
  store: Store,
  remote: RemoteStore,
  record: StageRecord,
  tally?: Pick<TransferResult, 'copied' | 'present' | 'bytes'>,
): Promise<void> {
  await pullBlobs(store, remote, blobsOf(record), tally);
  store.commitRecord(record);
}

export async function pullBlobs(
  store: Store,
  remote: RemoteStore,
  digests: Iterable<Digest>,
  tally?: Pick<TransferResult, 'copied' | 'present' | 'bytes'>,
): Promise<void> {
  for (const d of new Set(digests)) {
    if (store.blobInfo(d)) {
      if (tally) tally.present++;
      continue;
    }
    const bytes = await remote.get(d);
    if (!bytes) throw new Error(`blob ${d.slice(0, 12)} is missing from the shared store ${remote.location}`);
    store.queueBlob(bytes, d);
    if (tally) {
      tally.copied++;
      tally.bytes += bytes.length;
    }
  }
  await store.flush();
}

export function blobsOf(record: Pick<StageRecord, 'outputs' | 'refs'>): Digest[] {
  return [...new Set([...Object.values(record.outputs), ...record.refs])];
}

export function formatTransfer(r: TransferResult): string {
  const mib = (r.bytes / 1024 / 1024).toFixed(1);
  const lines = [
    `${r.direction === 'push' ? 'pushed' : 'pulled'} ${r.stages} stage${r.stages === 1 ? '' : 's'} of ${r.pipeline} ${r.direction === 'push' ? 'to' : 'from'} ${r.remote}: ${r.copied} blob${r.copied === 1 ? '' : 's'} copied (${mib} MiB), ${r.present} already there`,
  ];
  for (const m of r.missing) lines.push(`  ${m.id}: ${m.reason}`);
  return lines.join('\n');
}

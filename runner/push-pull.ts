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
      const record = direction === 'push' ? store.getRecord(entry.key) : await remote.getRecord(entry.key);
      if (!record) {
        const reason =
          direction === 'push'
            ? `no record ${entry.key.slice(0, 12)} in the local cache (run the pipeline first)`
            : `no record ${entry.key.slice(0, 12)} in ${location} (push it first)`;
        result.missing.push({ id, reason });
        continue;
      }
      // Blobs first, then the record: a record on either side always finds its blobs there (a
      // pulled record is committed in one transaction by the local cache).
      await copyBlobs(direction, store, remote, blobsOf(record), result);
      if (direction === 'push') await remote.putRecord(record);
      else store.commitRecord(record);
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

/** What a transfer counts of the blobs it looks at. */
type BlobTally = Pick<TransferResult, 'copied' | 'present' | 'bytes'>;

/**
 * Copies each distinct blob of `digests` that the destination (the shared store for a push, the
 * local cache for a pull) lacks, counting what was copied and what was already there. Blobs are
 * hash-checked on the way: a damaged local blob throws CacheCorruption and is not shared; a pull
 * commits what it queued before returning.
 */
export async function copyBlobs(
  direction: 'push' | 'pull',
  store: Store,
  remote: RemoteStore,
  digests: Iterable<Digest>,
  tally?: BlobTally,
): Promise<void> {
  for (const d of new Set(digests)) {
    if (direction === 'push' ? await remote.has(d) : store.blobInfo(d)) {
      if (tally) tally.present++;
      continue;
    }
    const bytes = direction === 'push' ? await pushBlob(store, remote, d) : await pullBlob(store, remote, d);
    if (tally) {
      tally.copied++;
      tally.bytes += bytes.length;
    }
  }
  if (direction === 'pull') await store.flush();
}

async function pushBlob(store: Store, remote: RemoteStore, d: Digest): Promise<Uint8Array> {
  const bytes = store.getBlob(d);
  if (!bytes) throw new Error(`blob ${d.slice(0, 12)} is not in the local cache`);
  await remote.put(bytes, d);
  return bytes;
}

async function pullBlob(store: Store, remote: RemoteStore, d: Digest): Promise<Uint8Array> {
  const bytes = await remote.get(d);
  if (!bytes) throw new Error(`blob ${d.slice(0, 12)} is missing from the shared store ${remote.location}`);
  store.queueBlob(bytes, d);
  return bytes;
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

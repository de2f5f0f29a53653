// Work already done or under way for a stage's key, found before submitting anything: a record
// another runner published to the shared store, or a job an earlier podium run submitted whose
// ticket is still in the spool (queued, running, or finished with a result to collect).
import { join } from 'node:path';
import type { Digest } from '../../cache/canonical.js';
import { CacheCorruption, type StageRecord, type Store } from '../../cache/store.js';
import { blobsOf, copyBlobs } from '../push-pull.js';
import type { StageJob } from '../stage-job.js';
import { squeue, FINISHED } from './commands.js';
import { restoreOuts } from './job-end.js';
import type { JobResult } from './job-spec.js';
import type { SlurmBackendOptions } from './options.js';
import { readJson, type JobTicket } from './spool.js';

/**
 * A record another runner published for this key (Bazel's remote cache): its blobs fetched,
 * hash-checked, so this runner commits it without a job. A damaged entry is a miss.
 */
export async function fromStore(
  o: SlurmBackendOptions,
  key: Digest,
  job: StageJob,
  store: Store,
): Promise<StageRecord | undefined> {
  try {
    const record = await o.remote.getRecord(key);
    if (record) {
      await copyBlobs('pull', store, o.remote, blobsOf(record));
      restoreOuts(job, store, record);
    }
    return record;
  } catch (e) {
    if (e instanceof CacheCorruption) {
      o.onEvent({ type: 'warning', message: `${e.message}; the stage runs again` });
      return undefined;
    }
    throw e;
  }
}

/** A ticket whose job is still queued or running ('done' when it finished with a result to collect). */
export async function adoptable(dir: string, key: Digest): Promise<JobTicket | 'done' | undefined> {
  const ticket = readJson<JobTicket>(join(dir, 'job.json'));
  if (!ticket || ticket.key !== key) return undefined;
  const result = readJson<JobResult>(join(dir, 'result.json'));
  const entry = (await squeue([ticket.jobId]))?.get(ticket.jobId);
  if (entry && !FINISHED.has(entry.state)) return ticket;
  return result?.ok && result.record.key === key ? 'done' : undefined;
}

// What a finished job comes to: its record, collected from the spool and the shared store into
// the local cache; or a stage failure saying how it ended, in the stage's words when it could
// report and in SLURM's (time limit, memory, cancelled, node lost) when it could not.
import { join } from 'node:path';
import { CacheCorruption, type StageRecord, type Store } from '../../cache/store.js';
import { stageStoreOf } from '../../cache/local-stage-store.js';
import type { SlurmSettings } from '../project-config.js';
import { blobsOf, copyBlobs } from '../push-pull.js';
import { stageFailure, type StageFailure } from '../stage-failure.js';
import type { StageJob, StageListener } from '../stage-job.js';
import type { QueueEntry } from './commands.js';
import type { JobResult } from './job-spec.js';
import type { SlurmBackendOptions } from './options.js';
import { logLines, logTail, readJson } from './spool.js';

/** A stage failure met while running a job, carried up to runStage as the outcome. */
export class JobFailed extends Error {
  constructor(readonly failure: StageFailure) {
    super(failure.message);
  }
}

/** The job's record: its blobs fetched (hash-checked) into the local cache, ready to commit. */
export async function collect(
  o: SlurmBackendOptions,
  dir: string,
  job: StageJob,
  store: Store,
  listener: StageListener,
  jobId?: string,
  node?: string,
): Promise<StageRecord> {
  const result = readJson<JobResult>(join(dir, 'result.json'));
  if (!result)
    throw new JobFailed(
      stageFailure(
        'stage',
        `slurm job ${jobId ?? '?'} completed but wrote no result (${join(dir, 'result.json')})`,
        logTail(dir, jobId),
      ),
    );
  for (const line of logLines(dir, jobId ?? result.slurmJobId ?? undefined)) listener.log(line);
  if (!result.ok) throw resultFailure(result, jobId ?? result.slurmJobId ?? '?', 'COMPLETED');
  if (result.record.key !== job.key)
    throw new JobFailed(
      stageFailure(
        'internal',
        `slurm job ${jobId} returned a record for another key (${result.record.key.slice(0, 12)})`,
      ),
    );
  await copyBlobs('pull', store, o.remote, blobsOf(result.record));
  for (const [k, v] of result.index) if (v.blobs.every((d) => store.blobInfo(d))) store.setIndex(k, v);
  const where = `slurm job ${result.slurmJobId ?? jobId} on ${node || result.host} (CUDA_VISIBLE_DEVICES=${result.cudaVisibleDevices ?? ''})`;
  const record: StageRecord = {
    ...result.record,
    logTail: [where, ...result.record.logTail].slice(-50),
    where: {
      executor: 'slurm',
      jobId: result.slurmJobId ?? jobId ?? '?',
      node: node || result.host,
      gpus: result.cudaVisibleDevices ?? null,
    },
  };
  restoreOuts(job, store, record);
  // Published for other runners sharing the store; the local commit is the executor's.
  await o.remote.putRecord(record);
  return record;
}

/** Why a job that did not complete ended, as the error runJob throws. */
export function endFailure(
  o: SlurmBackendOptions,
  dir: string,
  jobId: string,
  state: string,
  end: QueueEntry | undefined,
  settings: SlurmSettings,
): Error {
  const result = readJson<JobResult>(join(dir, 'result.json'));
  // A stage that failed by itself says why; one SLURM stopped (time limit, scancel) only saw a signal.
  if (state === 'FAILED' && result && !result.ok && result.slurmJobId === jobId)
    return resultFailure(result, jobId, state, end?.node);
  const why: Record<string, string> = {
    TIMEOUT: `exceeded its time limit${settings.time ? ` (--time=${settings.time})` : ''}`,
    OUT_OF_MEMORY: `ran out of memory${settings.mem ? ` (--mem=${settings.mem})` : ''}`,
    CANCELLED: 'was cancelled (scancel, or by an administrator)',
    NODE_FAIL: `its node failed (resubmitted ${o.config.requeueLimit ?? 2} times already)`,
    PREEMPTED: `was preempted (resubmitted ${o.config.requeueLimit ?? 2} times already)`,
    VANISHED: 'left the queue without writing a result',
    FAILED: 'exited with an error before the stage could report',
  };
  return new JobFailed(
    stageFailure(
      'stage',
      `slurm job ${jobId} ${state}${end?.node ? ` on ${end.node}` : ''}: ${why[state] ?? end?.reason ?? 'ended'}; log ${join(dir, `log-${jobId}.txt`)}`,
      logTail(dir, jobId),
    ),
  );
}

/**
 * The stage's files in the project (a command's outs), from the blobs now in the local cache:
 * the job wrote them on its node, which need not share this project folder.
 */
export function restoreOuts(job: StageJob, store: Store, record: StageRecord): void {
  job.kind.restore?.({ projectDir: job.projectDir, store: stageStoreOf(store) }, job.params, record);
}

function resultFailure(result: Extract<JobResult, { ok: false }>, jobId: string, state: string, node?: string): Error {
  if (result.corruptDigest) return new CacheCorruption(result.corruptDigest, result.failure.message);
  return new JobFailed({
    ...result.failure,
    message: `${result.failure.message} (slurm job ${jobId} ${state} on ${node || result.host})`,
  });
}

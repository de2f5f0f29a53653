// `--executor slurm`: each stage the executor decides to run becomes one sbatch job running
// `podium exec-stage` on a node. The executor is unchanged: it still decides what runs (keys,
// early cutoff), holds the lease, and commits the record; this module only replaces "run the
// stage here" with "ship its inputs to the shared store, submit, wait, fetch its outputs".
// This module is that sequence; submitting (submit.ts), finding earlier work (adopt.ts) and
// reading how a job ended (job-end.ts) are modules of their own.
//
// Dependencies stay podium's: a stage is submitted once its inputs are committed, never with
// `--dependency=afterok`. SLURM would start a dependent job whenever its upstream job succeeds,
// but whether it must run at all is known only then: an upstream stage that reproduces the same
// bytes leaves it cached (early cutoff), and its key needs the upstream outputs' digests.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from '../../cache/canonical.js';
import type { StageRecord, Store } from '../../cache/store.js';
import type { StageOutcome } from '../execute-stage.js';
import { settingsFor } from '../project-config.js';
import { stageFailure } from '../stage-failure.js';
import type { StageJob, StageListener } from '../stage-job.js';
import { adoptable, fromStore } from './adopt.js';
import { scancel, type QueueEntry } from './commands.js';
import { collect, endFailure, JobFailed } from './job-end.js';
import type { SlurmBackendOptions } from './options.js';
import { QueuePoller } from './poller.js';
import { submitJob } from './submit.js';

const REQUEUE_STATES = new Set(['NODE_FAIL', 'PREEMPTED']);

export interface SlurmBackend {
  runStage(
    job: StageJob,
    store: Store,
    signal: AbortSignal,
    listener: StageListener,
    inputBlobs: Digest[],
  ): Promise<StageOutcome>;
  /** After the run: what became of the jobs still in flight when it was interrupted. */
  afterInterrupt(): Promise<void>;
}

export function slurmBackend(o: SlurmBackendOptions): SlurmBackend {
  const poller = new QueuePoller(o.config.pollMs ?? 500);
  const inFlight = new Set<string>();

  const runStage = async (
    job: StageJob,
    store: Store,
    signal: AbortSignal,
    listener: StageListener,
    inputBlobs: Digest[],
  ): Promise<StageOutcome> => {
    try {
      return { ok: true, record: await runJob(job, store, signal, listener, inputBlobs) };
    } catch (e) {
      if (e instanceof JobFailed) return { ok: false, failure: e.failure };
      throw e;
    }
  };

  const runJob = async (
    job: StageJob,
    store: Store,
    signal: AbortSignal,
    listener: StageListener,
    inputBlobs: Digest[],
  ): Promise<StageRecord> => {
    const dir = join(o.spool, job.key);
    mkdirSync(dir, { recursive: true });
    const settings = settingsFor(o.config, {
      id: job.stageId,
      baseId: job.stageId.split('@')[0]!,
      kind: job.kind.name,
    });
    const published = job.resume ? await fromStore(o, job.key, job, store) : undefined;
    if (published) {
      listener.note(`found in the shared store (computed by another runner): no job submitted`);
      return published;
    }
    const found = await adoptable(dir, job.key);
    // A finished job's result is reused unless this run recomputes from scratch (--force, --from).
    if (found === 'done' && job.resume) return collect(o, dir, job, store, listener);
    let ticket = found === 'done' ? undefined : found;
    if (ticket)
      listener.note(
        `adopted slurm job ${ticket.jobId} (submitted ${ticket.submittedAt} by pid ${ticket.pid}), not submitting it again`,
      );
    for (let attempt = ticket?.attempt ?? 0; ; attempt++) {
      ticket ??= await submitJob(o, dir, job, store, settings, attempt, listener, inputBlobs);
      const end = await waitFor(ticket.jobId, signal, listener);
      inFlight.delete(ticket.jobId);
      const state = end?.state ?? (existsSync(join(dir, 'result.json')) ? 'COMPLETED' : 'VANISHED');
      if (REQUEUE_STATES.has(state) && attempt < (o.config.requeueLimit ?? 2)) {
        listener.note(
          `slurm job ${ticket.jobId} ended ${state} on ${end?.node || '?'}: submitting it again (${attempt + 1} of ${o.config.requeueLimit ?? 2})`,
        );
        ticket = undefined;
        continue;
      }
      if (state === 'COMPLETED') return collect(o, dir, job, store, listener, ticket.jobId, end?.node);
      throw endFailure(o, dir, ticket.jobId, state, end, settings);
    }
  };

  const waitFor = async (
    jobId: string,
    signal: AbortSignal,
    listener: StageListener,
  ): Promise<QueueEntry | undefined> => {
    inFlight.add(jobId);
    const onAbort = (): void => poller.forget(jobId);
    const ended = poller.wait(jobId, (e) => {
      if (e.state === 'RUNNING') listener.note(`slurm job ${jobId} running on ${e.node}`);
    });
    const aborted = new Promise<'aborted'>((res) => {
      if (signal.aborted) res('aborted');
      signal.addEventListener(
        'abort',
        () => {
          onAbort();
          res('aborted');
        },
        { once: true },
      );
    });
    const first = await Promise.race([ended, aborted]);
    if (first === 'aborted') throw new JobFailed(stageFailure('interrupted', 'interrupted'));
    return first;
  };

  const afterInterrupt = async (): Promise<void> => {
    const jobs = [...inFlight];
    if (!jobs.length) return;
    const cancel = typeof o.onInterrupt === 'function' ? await o.onInterrupt(jobs) : o.onInterrupt;
    if (cancel) {
      await scancel(jobs);
      o.onEvent({
        type: 'warning',
        message: `cancelled ${jobs.length} slurm job${jobs.length === 1 ? '' : 's'}: ${jobs.join(' ')}`,
      });
    } else {
      o.onEvent({
        type: 'warning',
        message: `left ${jobs.length} slurm job${jobs.length === 1 ? '' : 's'} queued or running: ${jobs.join(' ')}; \`podium run\` again adopts them (scancel ${jobs.join(' ')} cancels them)`,
      });
    }
  };

  return { runStage, afterInterrupt };
}

// Everything `podium run --executor slurm` needs before the first stage: the project config,
// the shared store, the spool, a SLURM that answers. Loaded only for that executor.
import { join } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { openRemote } from '../../cache/remote-store.js';
import type { Pipeline } from '../analyze.js';
import { UsageError } from '../diagnostics.js';
import type { EventSink } from '../events.js';
import { readProjectConfig, remoteLocation } from '../project-config.js';
import { slurmBackend, type SlurmBackend } from './backend.js';
import { slurmAvailable } from './commands.js';

export interface ClusterOptions {
  remote?: string;
  maxJobs?: number;
  set?: string[];
  backend?: string;
  /** true: cancel on Ctrl-C; false: leave the jobs running; undefined: ask when a person can answer. */
  cancelOnInterrupt?: boolean;
}

const DEFAULT_MAX_JOBS = 100;

export async function slurmSetup(
  pipeline: Pipeline,
  opts: ClusterOptions,
  onEvent: EventSink,
): Promise<{ backend: SlurmBackend; maxJobs: number }> {
  const config = readProjectConfig(pipeline.projectDir).slurm ?? {};
  const location = remoteLocation(opts.remote, pipeline.projectDir);
  if (!location)
    throw new UsageError(
      '--executor slurm needs a shared store every node can reach: pass --remote DIR, set PODIUM_REMOTE, or add "remote" to podium.config.json',
    );
  const missing = await slurmAvailable();
  if (missing) throw new UsageError(`--executor slurm: ${missing}`);
  return {
    maxJobs: opts.maxJobs ?? config.maxJobs ?? DEFAULT_MAX_JOBS,
    backend: slurmBackend({
      pipeline,
      set: opts.set ?? [],
      backend: opts.backend,
      remote: openRemote(location),
      config,
      spool: config.spool ?? join(pipeline.projectDir, '.podium', 'slurm'),
      onEvent,
      onInterrupt: opts.cancelOnInterrupt ?? (process.stdin.isTTY && process.stderr.isTTY ? askToCancel : false),
    }),
  };
}

/** Ctrl-C at a terminal: the jobs may be hours of GPU time, so ask rather than guess. */
async function askToCancel(jobs: string[]): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(
      `cancel the ${jobs.length} slurm job${jobs.length === 1 ? '' : 's'} still queued or running (${jobs.join(' ')})? [y/N] `,
    );
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

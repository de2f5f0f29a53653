// `podium run`. A plain run first asks the no-op memo whether anything changed since the last
// complete run; only when something did is the full path (analysis, executor) even loaded.
import { cacheDir, pipelinePath, projectOfPipeline } from './cache-path.js';
import type { CommonOptions } from './context.js';
import type { EventSink, StageReport } from './events.js';
import { lockPathOf } from './lock-path.js';
import { checkNoop } from './noop-memo.js';

export interface RunOptions extends CommonOptions {
  dryRun?: boolean;
  only?: string[];
  from?: string;
  force?: string[];
  jobs?: number;
  gpus?: string[];
  /** Seconds to wait for a stage another live podium process is computing (--lease-timeout). */
  leaseTimeout?: number;
  /** --executor slurm: stages run as SLURM jobs (runner/slurm), bounded by maxJobs, blobs through `remote`. */
  executor?: 'local' | 'slurm';
  maxJobs?: number;
  remote?: string;
  cancelOnInterrupt?: boolean;
}

export interface RunSummary {
  pipeline: string;
  stages: StageReport[];
  lockWritten: boolean;
  /** True when the no-op memo showed there was nothing to do, without analysing the pipeline. */
  noop: boolean;
}

/** The command-line options that change stage keys, as the no-op memo records them. */
export function keyOptions(opts: CommonOptions): string {
  // Overrides in the order given: a later --set of the same path wins, so order is meaningful.
  return JSON.stringify({ backend: opts.backend ?? null, set: opts.set ?? [] });
}

export async function runPipeline(file: string | undefined, opts: RunOptions, onEvent: EventSink, signal: AbortSignal): Promise<RunSummary> {
  const plain = !opts.dryRun && !opts.only?.length && !opts.from && !opts.force?.length;
  if (plain && file) {
    const path = pipelinePath(file);
    const noop = await checkNoop(cacheDir(opts, projectOfPipeline(path)), path, lockPathOf(path), keyOptions(opts));
    if (noop) return { pipeline: noop.name, stages: noop.reports, lockWritten: false, noop: true };
  }
  const { runFull } = await import('./run-full.js');
  return runFull(file, opts, plain, onEvent, signal);
}

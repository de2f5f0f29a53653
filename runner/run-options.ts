// What `podium run` takes and returns, apart from run.ts (the no-op path) and run-full.ts (the
// full one) so that each imports it without importing the other.
import type { CommonOptions } from './context.js';
import type { StageReport } from './events.js';

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
